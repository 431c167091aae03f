"""The session's record: its canonical serialization (what a physician's signature hashes) and
load_record(), the session as it was decided, the one reader for the note page, the chair page and
the PDFs.

The canonical form: every column of every row of the session is included, so a change to any
locked value changes the hash. The checklist's PHQ-9 and GAD-7 answers, kept in the score table
since migration b5d4e0f1a2c5, are serialized as the checklist columns they were before
(``phq9_items``, ``phq9_difficulty``, ``gad7_items``), so records signed before the move verify.
JSON with sorted keys, no insignificant whitespace, UTF-8; timestamps as ISO 8601 UTC with a
``Z``; decimals as plain strings without trailing zeros; rows of a part ordered by id. The same
content gives the same bytes on SQLite and PostgreSQL. The document names its format; a session
signed under an older format is checked under that format (``FORMATS``), so adding a part or a
column later never breaks an existing signature.

load_record() reads stored rows only: the checklist's findings as they were evaluated and the
policy version they were evaluated under, each override with the finding it covered, the
physician's dose orders and the dose with their policy versions, refused discharge answers, the
discharge, the note and its addenda. Nothing is evaluated again under today's policy, so a later
policy change never rewrites what was decided. A reading marked entered in error stays in the
record with its mark (format 3 hashes it); `counted_vitals` and `counted_alerts` leave it, and the
alerts it raised, out.
"""
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from sqlalchemy import inspect, select
from sqlalchemy.orm import selectinload

from opsmgr.auth.models import StaffUser
from opsmgr.checklist.models import ChecklistResponse
from opsmgr.extensions import db
from opsmgr.gates.models import FindingOverride
from opsmgr.gates.service import finding_from_dict
from opsmgr.infusion import models as infusion
from opsmgr.notes.models import AdverseEvent, NoteAddendum, SessionNote
from opsmgr.scores.models import Score
from opsmgr.series.models import InfusionSeries
from opsmgr.sessions.models import InfusionSession

FORMAT = "opsmgr.session/3"
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
#: Locked models, for the guards: every part, the note, the session row itself, and the checklist's
#: scores (a score row with a session is that checklist's PHQ-9 or GAD-7).
LOCKED_MODELS = tuple(model for _, model, _ in PARTS) + (SessionNote, InfusionSession, Score)
#: The checklist's answers kept in its score rows, serialized as checklist columns (as before they moved).
CHECKLIST_SCALE_ANSWERS = ("phq9_items", "phq9_difficulty", "gad7_items")
#: Note columns written by the act of signing (or bookkeeping), so not part of what is signed.
NOTE_EXCLUDED = frozenset({"status", "version", "signed_at", "signed_by_id", "signer_name", "signer_credentials",
                           "content_hash", "signed_content"})


#: A reading's entered-in-error mark (format 3).
IN_ERROR_COLUMNS = frozenset({"entered_in_error_at", "entered_in_error_by_id", "entered_in_error_reason"})
#: The session's booking marks (format 3): recorded after the fact, a physician's same-day override.
BOOKING_COLUMNS = frozenset({"recorded_late_reason", "same_day_reason", "same_day_override_by_id"})
#: Session attributes worked out on load, not stored (the number by date changes when the series is rebooked).
SESSION_COMPUTED = frozenset({"number"})
#: What each older format left out: parts, and columns by table. Format 1: before dose orders,
#: pending discharge assessments and the no-escort arrangement; format 2: before readings could be
#: marked entered in error (a record signed then has no marks, and hashes as it did).
FORMATS = {
    "opsmgr.session/3": {"parts": frozenset(), "columns": {}},
    "opsmgr.session/2": {"parts": frozenset(), "columns": {"vital_sign": IN_ERROR_COLUMNS,
                                                           "infusion_session": BOOKING_COLUMNS}},
    "opsmgr.session/1": {"parts": frozenset({"dose_orders", "discharge_assessments"}),
                         "columns": {"dose_record": {"dose_order_id"},
                                     "checklist_response": {"escort_arrangement"},
                                     "vital_sign": IN_ERROR_COLUMNS,
                                     "infusion_session": BOOKING_COLUMNS}},
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
    return values_dict(column_values(row), exclude)


def column_values(row):
    """Every mapped column of a row, by column name, as loaded (None for no row)."""
    if row is None:
        return None
    return {column.key: getattr(row, column.key) for column in inspect(row).mapper.column_attrs}


def values_dict(values, exclude=frozenset()):
    """A row's plain column values ({column: value}), canonicalised."""
    return {key: canonical_value(value) for key, value in values.items() if key not in exclude}


def load_aggregate(session_id):
    """The session row, its note and every part, read fresh from the database (one query per table)."""
    visit = db.session.execute(select(InfusionSession).where(InfusionSession.id == session_id)
                                 .execution_options(populate_existing=True)).scalar_one()
    note = db.session.execute(select(SessionNote).where(SessionNote.session_id == session_id)
                              .execution_options(populate_existing=True)).scalar_one_or_none()
    parts = {}
    for name, model, many in PARTS:
        rows = db.session.execute(select(model).where(model.session_id == session_id).order_by(model.id)
                                  .execution_options(populate_existing=True)).scalars().all()
        parts[name] = rows if many else (rows[0] if rows else None)
    return visit, note, parts


def serialize(visit, note, parts, form=None):
    """The canonical document of one session in format ``form`` (a dict; see ``canonical_bytes``)."""
    plain = {name: [column_values(row) for row in parts[name]] if many else column_values(parts[name])
             for name, _model, many in PARTS}
    if parts["checklist"] is not None:
        plain["checklist"].update({name: getattr(parts["checklist"], name) for name in CHECKLIST_SCALE_ANSWERS})
    return serialize_values(column_values(visit), column_values(note), plain, form)


def serialize_values(visit, note, parts, form=None):
    """serialize() on plain column values ({column: value} per row; a list for a part of many rows, None
    for a missing row): what a bulk writer (the scale data set) hashes for rows it has not loaded. The
    checklist's values include its scale answers (CHECKLIST_SCALE_ANSWERS), as the checklist reads them."""
    form = form or FORMAT
    left_out = FORMATS[form]
    session_skip = SESSION_COMPUTED | left_out["columns"].get("infusion_session", frozenset())
    document = {"format": form, "session": values_dict(visit, session_skip),
                "note": values_dict(note, NOTE_EXCLUDED) if note is not None else None}
    for name, model, many in PARTS:
        if name in left_out["parts"]:
            continue
        value, skip = parts[name], left_out["columns"].get(model.__tablename__, frozenset())
        document[name] = [values_dict(row, skip) for row in value] if many else (
            values_dict(value, skip) if value else None)
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


@dataclass(frozen=True)
class SessionRecord:
    infusion_session: InfusionSession
    #: The checklist row, its findings as evaluated (Finding tuples) and the policy version of that evaluation.
    checklist: object
    checklist_findings: tuple
    overrides: tuple
    dose_orders: tuple
    dose: object
    controlled_substance: object
    vitals: tuple
    alerts: tuple
    infusion_events: tuple
    discharge_assessments: tuple
    discharge: object
    note: object
    adverse_events: tuple
    addenda: tuple
    #: {staff id: "Name, credentials"} for everyone the record names.
    staff: dict

    @property
    def policy_versions(self):
        """Every policy version a decision of this session was made under, in order."""
        rows = (self.checklist, *self.dose_orders, self.dose, *self.discharge_assessments, self.discharge)
        return tuple(sorted({row.policy_version for row in rows if row is not None and row.policy_version}))

    @property
    def dose_order(self):
        """The physician's order the dose was given under (None: the series dose)."""
        if self.dose is None or self.dose.dose_order_id is None:
            return None
        return next(order for order in self.dose_orders if order.id == self.dose.dose_order_id)

    def overrides_at(self, gate):
        return tuple(row for row in self.overrides if row.gate == gate)

    @property
    def counted_vitals(self):
        """The readings that count (not marked entered in error)."""
        return tuple(row for row in self.vitals if not row.is_entered_in_error)

    @property
    def vitals_in_error(self):
        return tuple(row for row in self.vitals if row.is_entered_in_error)

    @property
    def withdrawn(self):
        """{alert id: its reading} for the alerts whose reading was marked entered in error."""
        marked = {row.id: row for row in self.vitals_in_error}
        return {alert.id: marked[alert.vital_sign_id] for alert in self.alerts if alert.vital_sign_id in marked}

    @property
    def counted_alerts(self):
        withdrawn = self.withdrawn
        return tuple(alert for alert in self.alerts if alert.id not in withdrawn)


#: Columns of the record's rows that name a staff member.
STAFF_COLUMNS = ("recorded_by_id", "changed_by_id", "ordered_by_id", "assessed_by_id", "witness_id",
                 "acknowledged_by_id", "physician_id", "discharged_by_id", "updated_by_id", "signed_by_id",
                 "author_id", "entered_in_error_by_id")


def load_record(session_id):
    """The whole session as decided (a SessionRecord), read fresh from the database; None if unknown."""
    if db.session.get(InfusionSession, session_id) is None:
        return None
    visit, note, parts = load_aggregate(session_id)
    db.session.scalar(select(InfusionSession).where(InfusionSession.id == session_id).options(
        selectinload(InfusionSession.patient), selectinload(InfusionSession.chair),
        selectinload(InfusionSession.series).selectinload(InfusionSeries.protocol)))
    addenda = tuple(db.session.scalars(select(NoteAddendum).where(NoteAddendum.note_id == note.id)
                                       .order_by(NoteAddendum.id))) if note is not None else ()
    return _as_record(visit, note, parts, addenda, staff_names(_named_rows(note, parts, addenda)))


def load_records(session_ids):
    """load_record() for many sessions at once (a series summary): {session id: SessionRecord} for those
    that exist, read fresh, in the same statements whatever their number (one per table)."""
    visits = {visit.id: visit for visit in db.session.scalars(
        select(InfusionSession).where(InfusionSession.id.in_(set(session_ids)))
        .execution_options(populate_existing=True)
        .options(selectinload(InfusionSession.patient), selectinload(InfusionSession.chair),
                 selectinload(InfusionSession.series).selectinload(InfusionSeries.protocol)))}
    if not visits:
        return {}
    ids = sorted(visits)
    notes = {note.session_id: note for note in db.session.scalars(
        select(SessionNote).where(SessionNote.session_id.in_(ids)).execution_options(populate_existing=True))}
    parts = {visit_id: {} for visit_id in visits}
    for name, model, many in PARTS:
        found = {visit_id: [] for visit_id in visits}
        for row in db.session.scalars(select(model).where(model.session_id.in_(ids)).order_by(model.id)
                                      .execution_options(populate_existing=True)):
            found[row.session_id].append(row)
        for visit_id, rows in found.items():
            parts[visit_id][name] = rows if many else (rows[0] if rows else None)
    addenda = {visit_id: [] for visit_id in visits}
    if notes:
        for row in db.session.scalars(select(NoteAddendum).where(NoteAddendum.note_id.in_(
                [note.id for note in notes.values()])).order_by(NoteAddendum.id)):
            addenda[row.session_id].append(row)
    named = {visit_id: _named_rows(notes.get(visit_id), parts[visit_id], addenda[visit_id]) for visit_id in visits}
    staff = staff_names([row for rows in named.values() for row in rows])
    return {visit_id: _as_record(visit, notes.get(visit_id), parts[visit_id], tuple(addenda[visit_id]),
                                 _staff_of(named[visit_id], staff))
            for visit_id, visit in visits.items()}


def _named_rows(note, parts, addenda):
    """The rows of a session that can name a staff member."""
    return [parts["checklist"], note, parts["dose"], parts["controlled_substance"], parts["discharge"], *addenda,
            *(row for name in ("overrides", "dose_orders", "vitals", "alerts", "infusion_events",
                               "discharge_assessments", "adverse_events") for row in parts[name])]


def _staff_of(rows, staff):
    """The part of `staff` ({id: name}) these rows name."""
    ids = {getattr(row, name, None) for row in rows if row is not None for name in STAFF_COLUMNS}
    return {staff_id: name for staff_id, name in staff.items() if staff_id in ids}


def _as_record(visit, note, parts, addenda, staff):
    checklist = parts["checklist"]
    return SessionRecord(
        infusion_session=visit, checklist=checklist,
        checklist_findings=tuple(finding_from_dict(data) for data in (checklist.findings or ())) if checklist else (),
        overrides=tuple(parts["overrides"]), dose_orders=tuple(parts["dose_orders"]), dose=parts["dose"],
        controlled_substance=parts["controlled_substance"], vitals=tuple(parts["vitals"]),
        alerts=tuple(parts["alerts"]), infusion_events=tuple(parts["infusion_events"]),
        discharge_assessments=tuple(parts["discharge_assessments"]), discharge=parts["discharge"], note=note,
        adverse_events=tuple(parts["adverse_events"]), addenda=addenda, staff=staff)


def staff_names(rows):
    """{staff id: "Name, credentials"} for everyone named by these rows, in one statement."""
    ids = {getattr(row, name, None) for row in rows if row is not None for name in STAFF_COLUMNS}
    ids.discard(None)
    if not ids:
        return {}
    found = db.session.execute(select(StaffUser.id, StaffUser.full_name, StaffUser.credentials)
                               .where(StaffUser.id.in_(ids))).all()
    return {row.id: f"{row.full_name}, {row.credentials}" if row.credentials else row.full_name for row in found}
