"""Plain factory functions for test data, built through the services."""
import itertools
from dataclasses import dataclass
from datetime import date, time

from sqlalchemy import select

from opsmgr.audit.service import Actor
from opsmgr.auth import service
from opsmgr.extensions import db
from opsmgr.patients import service as patients
from opsmgr.patients.models import Patient
from opsmgr.schedule.models import Chair
from opsmgr.series import service as series_service
from opsmgr.series.models import Protocol

FACTORY_ACTOR = Actor(user_id=None, username="test-factory", role=None)
_numbers = itertools.count(1)


@dataclass(frozen=True)
class MadeUser:
    id: int
    username: str
    password: str
    role: str


def create_user(*, role, username, password, now, **fields):
    username = username or f"{role}{next(_numbers)}"
    user = service.create_staff(username=username, full_name=fields.pop("full_name", username.title()),
                                role=role, password=password, actor=FACTORY_ACTOR, now=now, **fields)
    db.session.commit()
    return MadeUser(user.id, user.username, password, user.role)


def create_patient(*, now, mrn=None, legal_name=None, **fields):
    """A registered patient (through the service); returns the Patient row."""
    number = next(_numbers)
    values = {
        "mrn": mrn or f"MRN{number:05d}", "legal_name": legal_name or f"Test Patient {number}",
        "preferred_name": "", "date_of_birth": date(1980, 1, 1 + number % 28), "sex_at_birth": "female",
        "pregnancy_possible": False, "phone": "", "email": "", "reminder_channel": "none",
        "contact_consent_on": None, "escort_name": "", "escort_phone": "", "indication": "trd",
        "indication_detail": "", "failed_trials": 2, "allergies": "",
    }
    values.update(fields)
    patient = patients.register_patient(values, actor=FACTORY_ACTOR, now=now)
    db.session.commit()
    return patient


def create_chairs(count=3):
    """Active chairs named Chair 1..n; returns their ids."""
    chairs = [Chair(name=f"Chair {i}", position=i, is_active=True) for i in range(1, count + 1)]
    db.session.add_all(chairs)
    db.session.commit()
    return [chair.id for chair in chairs]


def order_series(*, patient_id, now, start_on, protocol_code="iv-induction", preferred_time="09:00",
                 planned_count=None, ordered_by_id=None):
    """Order a series through the series service as a physician would (the plan, then confirming it
    as planned); returns the series."""
    protocol = db.session.scalar(select(Protocol).where(Protocol.code == protocol_code, Protocol.is_current))
    if ordered_by_id is None:
        ordered_by_id = create_user(role="physician", username=None, password="physician passphrase",
                                    now=now).id
    actor = Actor(user_id=ordered_by_id, username="test-physician", role="physician")
    order = series_order(patient_id=patient_id, protocol=protocol, start_on=start_on, preferred_time=preferred_time,
                         planned_count=planned_count)
    plan = series_service.plan_series(order, now=now)
    series = series_service.order_series(order, confirmed=plan.code, actor=actor, now=now)
    db.session.commit()
    return series


def series_order(*, patient_id, protocol, start_on, preferred_time="09:00", planned_count=None):
    """A physician's order for `protocol` with its own dose and count unless given."""
    return series_service.SeriesOrder(
        patient_id=patient_id, protocol_id=protocol.id, indication="trd", dose_mg_per_kg=protocol.dose_mg_per_kg,
        dose_mg=protocol.dose_mg, planned_count=planned_count or protocol.planned_count, start_on=start_on,
        preferred_time=time.fromisoformat(preferred_time) if isinstance(preferred_time, str) else preferred_time,
        reevaluate_on=None)


def build_world(app, clock, patient_name="World Patient"):
    """Objects every URL can point at: chairs, a patient with a medication, a series of sessions."""
    with app.app_context():
        chairs = create_chairs(2)
        patient = create_patient(now=clock(), legal_name=patient_name)
        medication = patients.add_medication(db.session.get(Patient, patient.id), name="Lamotrigine",
                                             med_class="lamotrigine", started_on=date(2025, 1, 1), stopped_on=None,
                                             actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        series = order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30))
        return {"patient": patient.id, "medication": medication.id, "series": series.id,
                "session": series.sessions[0].id, "chair": chairs[0],
                "protocol": db.session.scalar(select(Protocol.id).where(Protocol.code == "iv-induction"))}
