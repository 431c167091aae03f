"""The canonical serialization of a session aggregate, and its SHA-256.

Every column of every row of the session is included, so a change to any locked value changes
the hash. The form is fixed: JSON with sorted keys, no insignificant whitespace, UTF-8;
timestamps as ISO 8601 UTC with a ``Z``; decimals as plain strings without trailing zeros; rows
of a part ordered by id. The same content gives the same bytes on SQLite and PostgreSQL.

The document names its format. A session signed under an older format is checked under that
format (``FORMATS``), so adding a part or a column later never breaks an existing signature.
"""
import hashlib
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal

from sqlalchemy import inspect, select

from opsmgr.checklist.models import ChecklistResponse
from opsmgr.extensions import db
from opsmgr.gates.models import FindingOverride
from opsmgr.infusion import models as infusion
from opsmgr.notes.models import AdverseEvent, SessionNote
from opsmgr.sessions.models import InfusionSession

FORMAT = "opsmgr.session/2"
#: The parts of the aggregate: (name, model, one row or many). Each has a session_id column.
PARTS = (
    ("checklist", ChecklistResponse, False),
    ("overrides", FindingOverride, True),
    ("dose_orders", infusion.DoseOrder, True),
    ("dose", infusion.DoseRecord, False),
    ("controlled_substance", infusion.ControlledSubstanceEntry, False),
    ("vitals", infusion.VitalSign, True),
    ("alerts", infusion.InChairAlert, True),
    ("infusion_events", infusion.InfusionEvent, True),
    ("discharge_assessments", infusion.DischargeAssessment, True),
    ("discharge", infusion.DischargeRecord, False),
    ("adverse_events", AdverseEvent, True),
)
#: Locked models, for the guards: every part, the note and the session row itself.
LOCKED_MODELS = tuple(model for _, model, _ in PARTS) + (SessionNote, InfusionSession)
#: Note columns written by the act of signing (or bookkeeping), so not part of what is signed.
NOTE_EXCLUDED = frozenset({"status", "version", "signed_at", "signed_by_id", "signer_name", "signer_credentials",
                           "content_hash", "signed_content"})


#: What each older format left out: parts, and columns by table. Format 1: before dose orders,
#: pending discharge assessments and the no-escort arrangement.
FORMATS = {
    "opsmgr.session/2": {"parts": frozenset(), "columns": {}},
    "opsmgr.session/1": {"parts": frozenset({"dose_orders", "discharge_assessments"}),
                         "columns": {"dose_record": {"dose_order_id"},
                                     "checklist_response": {"escort_arrangement"}}},
}


def canonical_value(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value.tzinfo else value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, dict):
        return {str(key): canonical_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical_value(item) for item in value]
    return value


def row_dict(row, exclude=frozenset()):
    """Every mapped column of a row, by column name, canonicalised."""
    mapper = inspect(row).mapper
    return {column.key: canonical_value(getattr(row, column.key)) for column in mapper.column_attrs
            if column.key not in exclude}


def load_aggregate(session_id):
    """The session row, its note and every part, read fresh from the database (one query per table)."""
    session = db.session.execute(select(InfusionSession).where(InfusionSession.id == session_id)
                                 .execution_options(populate_existing=True)).scalar_one()
    note = db.session.execute(select(SessionNote).where(SessionNote.session_id == session_id)
                              .execution_options(populate_existing=True)).scalar_one_or_none()
    parts = {}
    for name, model, many in PARTS:
        rows = db.session.execute(select(model).where(model.session_id == session_id).order_by(model.id)
                                  .execution_options(populate_existing=True)).scalars().all()
        parts[name] = rows if many else (rows[0] if rows else None)
    return session, note, parts


def serialize(session, note, parts, form=None):
    """The canonical document of one session in format ``form`` (a dict; see ``canonical_bytes``)."""
    form = form or FORMAT
    left_out = FORMATS[form]
    document = {"format": form, "session": row_dict(session),
                "note": row_dict(note, NOTE_EXCLUDED) if note is not None else None}
    for name, model, many in PARTS:
        if name in left_out["parts"]:
            continue
        value, skip = parts[name], left_out["columns"].get(model.__tablename__, frozenset())
        document[name] = [row_dict(row, skip) for row in value] if many else (row_dict(value, skip) if value else None)
    return document


def canonical_bytes(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def format_of(content):
    """The format a stored canonical text was written in."""
    return json.loads(content).get("format", FORMAT)


def aggregate_hash(session_id, form=None):
    """(canonical text, hex SHA-256) of a session as it stands in the database now."""
    data = canonical_bytes(serialize(*load_aggregate(session_id), form=form))
    return data.decode("utf-8"), sha256_hex(data)
