"""Clinic-wide CSV lists for a date range (clinic dates, both inclusive): patients seen, sessions, scores,
vitals. Each kind is one streamed statement; every cell goes through core.csvfiles (formula injection
neutralised, every cell quoted). Times are in the clinic's zone, ISO 8601 with their offset."""
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from opsmgr.audit.service import record
from opsmgr.core import csvfiles
from opsmgr.extensions import db
from opsmgr.infusion.models import DoseRecord, VitalSign
from opsmgr.patients.models import Patient
from opsmgr.scores.models import Score
from opsmgr.sessions.models import InfusionSession

KINDS = ("patients", "sessions", "scores", "vitals")
HEADERS = {
    "patients": ("mrn", "legal_name", "preferred_name", "date_of_birth", "sex_at_birth", "indication",
                 "sessions_in_range", "first_session_at", "last_session_at"),
    "sessions": ("mrn", "legal_name", "session_id", "series_id", "starts_at", "status", "dose_mg", "mg_per_kg",
                 "weight_kg"),
    "scores": ("mrn", "legal_name", "score_id", "session_id", "instrument", "taken_at", "source", "total", "band",
               "entered_in_error"),
    "vitals": ("mrn", "legal_name", "reading_id", "session_id", "taken_at", "systolic", "diastolic", "heart_rate",
               "spo2", "moaas", "entered_in_error"),
}


@dataclass(frozen=True)
class Period:
    """Clinic dates ``since`` to ``until``, both inclusive."""

    since: date
    until: date

    def utc(self, zone):
        """The half-open UTC range [start, end) of the period's clinic days."""
        start = datetime.combine(self.since, time.min, tzinfo=zone).astimezone(UTC)
        end = datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
        return start, end

    def details(self):
        return {"since": self.since.isoformat(), "until": self.until.isoformat()}


def _sessions_in(start, end):
    return (InfusionSession.starts_at >= start) & (InfusionSession.starts_at < end)


def statement(kind, start, end):
    """(patient id, cells…) rows of one kind in [start, end), in one statement."""
    if kind == "patients":
        return (select(Patient.id, Patient.mrn, Patient.legal_name, Patient.preferred_name, Patient.date_of_birth,
                       Patient.sex_at_birth, Patient.indication, func.count(InfusionSession.id),
                       func.min(InfusionSession.starts_at), func.max(InfusionSession.starts_at))
                .join(InfusionSession, InfusionSession.patient_id == Patient.id).where(_sessions_in(start, end))
                .group_by(Patient.id).order_by(Patient.family_key, Patient.given_key, Patient.id))
    if kind == "sessions":
        return (select(Patient.id, Patient.mrn, Patient.legal_name, InfusionSession.id, InfusionSession.series_id,
                       InfusionSession.starts_at, InfusionSession.status, DoseRecord.dose_mg, DoseRecord.mg_per_kg,
                       DoseRecord.weight_kg)
                .join(Patient, Patient.id == InfusionSession.patient_id)
                .outerjoin(DoseRecord, DoseRecord.session_id == InfusionSession.id)
                .where(_sessions_in(start, end)).order_by(InfusionSession.starts_at, InfusionSession.id))
    if kind == "scores":
        return (select(Patient.id, Patient.mrn, Patient.legal_name, Score.id, Score.session_id, Score.instrument,
                       Score.taken_at, Score.source, Score.total, Score.band, Score.entered_in_error_at.is_not(None))
                .join(Patient, Patient.id == Score.patient_id)
                .where(Score.taken_at >= start, Score.taken_at < end).order_by(Score.taken_at, Score.id))
    return (select(Patient.id, Patient.mrn, Patient.legal_name, VitalSign.id, VitalSign.session_id, VitalSign.taken_at,
                   VitalSign.systolic, VitalSign.diastolic, VitalSign.heart_rate, VitalSign.spo2, VitalSign.moaas,
                   VitalSign.entered_in_error_at.is_not(None))
            .join(InfusionSession, InfusionSession.id == VitalSign.session_id)
            .join(Patient, Patient.id == InfusionSession.patient_id)
            .where(VitalSign.taken_at >= start, VitalSign.taken_at < end).order_by(VitalSign.taken_at, VitalSign.id))


def _local(value, zone):
    if isinstance(value, datetime):
        return value.astimezone(zone).isoformat(timespec="seconds")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


class Tally:
    """Counts the rows and distinct patients that pass through, for the audit row."""

    def __init__(self, rows, zone, progress=None):
        self.rows, self.zone, self.progress = rows, zone, progress
        self.patients = set()

    def __iter__(self):
        for patient_id, *cells in self.rows:
            self.patients.add(patient_id)
            if self.progress is not None:
                self.progress(1)
            yield [_local(cell, self.zone) for cell in cells]


def count_rows(kind, period, zone):
    """How many rows the export will write (for a progress bar)."""
    inner = statement(kind, *period.utc(zone)).order_by(None).subquery()
    return db.session.scalar(select(func.count()).select_from(inner))


def write(buffer, kind, period, *, zone, actor, now, via, progress=None):
    """Write the CSV of ``kind`` for ``period`` to ``buffer`` and audit it (kind, period, counts; no names)."""
    tally = Tally(db.session.execute(statement(kind, *period.utc(zone))), zone, progress)
    rows = csvfiles.write_rows(buffer, HEADERS[kind], tally)
    record("export.csv", actor=actor, now=now, object_type="csv", object_id=kind,
           details={"kind": kind, **period.details(), "rows": rows, "patients": len(tally.patients), "via": via})
    return rows
