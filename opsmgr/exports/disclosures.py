"""The accounting of disclosures for one patient (HIPAA 164.528), read from the audit trail.

Listed: every FHIR export of the patient (web or CLI, single or bulk), every download of a stored signed
PDF and every copy of one written to a folder by `flask reports export`, every break-glass access (its
audit actions begin `break_glass.`), and every clinic-wide CSV export whose date range held a session,
reading or score of the patient (those rows carry no patient, so they are matched by date). Three
statements, whatever the number of events.
"""
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import literal, or_, select, union_all

from opsmgr.audit.models import AuditEvent
from opsmgr.audit.service import record
from opsmgr.auth.models import ROLE_VALUES, Role, StaffUser
from opsmgr.extensions import db
from opsmgr.infusion.models import VitalSign
from opsmgr.scores.models import Score
from opsmgr.sessions.models import InfusionSession

PATIENT_ACTIONS = ("export.fhir", "report.downloaded", "report.exported")
BREAK_GLASS_PREFIX = "break_glass."
CSV_ACTION = "export.csv"
#: Which of the patient's dates put them in a CSV export of each kind.
CSV_DATES = {"patients": "session", "sessions": "session", "scores": "score", "vitals": "vital"}


@dataclass(frozen=True)
class Disclosure:
    occurred_at: datetime
    who: str
    role: str
    what: str
    scope: str


def _what(event, details):
    if event.action == "export.fhir":
        form = "Bundle (JSON)" if details.get("format") == "fhir-bundle" else "bulk NDJSON (all patients)"
        return f"FHIR R4 export, {form}"
    if event.action == "report.downloaded":
        return f"Signed PDF downloaded: {details.get('kind', '')} summary {event.object_id}"
    if event.action == "report.exported":
        return f"Signed PDF copied to a folder (reports export): {details.get('kind', '')} summary {event.object_id}"
    if event.action == CSV_ACTION:
        return f"CSV export: {details.get('kind')}"
    return f"Break-glass access ({event.action.removeprefix(BREAK_GLASS_PREFIX)})"


def _scope(event, details):
    if event.action == "export.fhir":
        counts = {name: count for name, count in details.items() if name[:1].isupper()}
        return ", ".join(f"{count} {name}" for name, count in sorted(counts.items())) or "no resources"
    if event.action == CSV_ACTION:
        return f"{details.get('since')} to {details.get('until')}: {details.get('rows')} rows, " \
               f"{details.get('patients')} patients"
    if event.action.startswith(BREAK_GLASS_PREFIX):
        return str(details.get("reason", ""))
    return "The document only"


def _patient_dates(patient_id, zone):
    """{"session"|"score"|"vital": set of clinic dates} of the patient's rows (one statement)."""
    sessions = select(InfusionSession.starts_at.label("at"), literal("session").label("kind")).where(
        InfusionSession.patient_id == patient_id)
    scores = select(Score.taken_at, literal("score")).where(Score.patient_id == patient_id)
    vitals = select(VitalSign.taken_at, literal("vital")).join(
        InfusionSession, InfusionSession.id == VitalSign.session_id).where(InfusionSession.patient_id == patient_id)
    found = {"session": set(), "score": set(), "vital": set()}
    for at, kind in db.session.execute(union_all(sessions, scores, vitals)):
        found[kind].add(_aware(at).astimezone(zone).date())
    return found


def _aware(moment):
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _covers(details, dates):
    try:
        since, until = date.fromisoformat(details["since"]), date.fromisoformat(details["until"])
    except (KeyError, TypeError, ValueError):
        return False
    return any(since <= day <= until for day in dates.get(CSV_DATES.get(details.get("kind")), ()))


def _events(stmt):
    rows = db.session.execute(stmt.add_columns(StaffUser.full_name)
                              .outerjoin(StaffUser, StaffUser.id == AuditEvent.user_id))
    return [(event, name, json.loads(event.details or "{}")) for event, name in rows]


def _role_label(role):
    """The role as staff read it ("Nurse"); an unknown or missing one as stored."""
    return Role(role).label if role in ROLE_VALUES else (role or "")


def disclosures(patient_id, *, zone):
    """[Disclosure], newest first."""
    touched = _events(select(AuditEvent).where(
        AuditEvent.patient_id == patient_id, AuditEvent.outcome == "ok",
        or_(AuditEvent.action.in_(PATIENT_ACTIONS), AuditEvent.action.startswith(BREAK_GLASS_PREFIX))))
    csv_events = _events(select(AuditEvent).where(AuditEvent.action == CSV_ACTION, AuditEvent.outcome == "ok"))
    if csv_events:
        dates = _patient_dates(patient_id, zone)
        touched += [row for row in csv_events if _covers(row[2], dates)]
    touched.sort(key=lambda row: row[0].id, reverse=True)
    return [Disclosure(occurred_at=event.occurred_at, who=name or event.username or "", role=_role_label(event.role),
                       what=_what(event, details), scope=_scope(event, details))
            for event, name, details in touched]


def audit_viewed(patient_id, count, *, actor, now):
    record("disclosures.viewed", actor=actor, now=now, object_type="patient", object_id=patient_id,
           patient_id=patient_id, details={"rows": count})
