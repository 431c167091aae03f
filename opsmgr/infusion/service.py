"""Shared at the chair: the refusal, the session's chair rows in time order, and the audit helper."""

from sqlalchemy import select

from opsmgr.audit.service import record
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.infusion.models import (
    DoseRecord,
    InChairAlert,
    InfusionEvent,
    VitalSign,
)
from opsmgr.rules import monitoring
from opsmgr.rules.findings import Problem
from opsmgr.rules.session_states import SessionState

S = SessionState
AT_THE_CHAIR = (S.INFUSING, S.RECOVERY)
BEFORE_THE_DOSE = (S.CHECKED_IN, S.CHECKLIST, S.CLEARED)
#: The readings that count: not marked entered in error.
COUNTED = VitalSign.entered_in_error_at.is_(None)


class InfusionError(DomainError):
    """A refused step at the chair: a message and the field it concerns, or several `errors`."""

    def __init__(self, message, field=None, *, errors=None, findings=(), audited=False):
        pairs = errors or [(field, message)]
        super().__init__([Problem(name, text) for name, text in pairs], findings=findings, audited=audited)


def one_row(model, visit):
    return db.session.scalar(select(model).where(model.session_id == visit.id))


def dose_for(visit):
    return one_row(DoseRecord, visit)


def readings_for(visit):
    """The readings that count, in time order (a reading marked entered in error does not)."""
    return db.session.scalars(select(VitalSign).where(VitalSign.session_id == visit.id, COUNTED)
                              .order_by(VitalSign.taken_at, VitalSign.id)).all()


def alerts_for(visit):
    """The session's alerts, less those withdrawn because their reading was marked entered in error."""
    return db.session.scalars(select(InChairAlert).join(VitalSign, VitalSign.id == InChairAlert.vital_sign_id)
                              .where(InChairAlert.session_id == visit.id, COUNTED)
                              .order_by(InChairAlert.raised_at, InChairAlert.id)).all()


def events_for(visit):
    return db.session.scalars(select(InfusionEvent).where(InfusionEvent.session_id == visit.id)
                              .order_by(InfusionEvent.occurred_at, InfusionEvent.id)).all()


def pauses_for(dose, events):
    return monitoring.pauses_of([(e.kind, e.occurred_at) for e in events], infusion_ended_at=dose.infusion_ended_at)


def audit(event, visit, actor, now, outcome="ok", **details):
    record(event, actor=actor, now=now, outcome=outcome, object_type="infusion_session", object_id=visit.id,
           patient_id=visit.patient_id, details=details)


def as_reading(row):
    return monitoring.Reading(taken_at=row.taken_at, systolic=row.systolic, diastolic=row.diastolic,
                              heart_rate=row.heart_rate, spo2=row.spo2, moaas=row.moaas)
