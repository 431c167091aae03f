"""`flask seed scale`: the fictional clinic-chain data set, written by bulk inserts, on both databases."""
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import DatabaseError

from opsmgr.auth.models import StaffUser
from opsmgr.core.errors import RecordLocked
from opsmgr.extensions import db
from opsmgr.infusion.models import ControlledSubstanceEntry, DischargeRecord, DoseRecord, VitalSign
from opsmgr.notes.models import SessionNote
from opsmgr.patients.models import Patient
from opsmgr.schedule.models import Chair
from opsmgr.sessions import record as canonical
from opsmgr.sessions.models import InfusionSession

PATIENTS = 20


def seed(runner, patients=PATIENTS):
    return runner.invoke(args=["seed", "scale", "--patients", str(patients)])


def count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def seeded(app, runner, make_user):
    # A demo account (as `flask demo seed` makes them) does not stop the scale seed.
    make_user("nurse", username="nurse", full_name="Demo Nurse (fictional)")
    result = seed(runner)
    assert result.exit_code == 0, result.output
    return result.output


def test_scale_seed_writes_a_clinic_in_proportion_whose_audit_chain_verifies(app, runner, seeded):
    assert f"{PATIENTS} patient," in seeded
    with app.app_context():
        assert count(Patient, Patient.mrn.startswith("DEMO-S"), Patient.legal_name.contains(" Demo-")) == PATIENTS
        assert count(Chair) == 1
        sessions = count(InfusionSession)
        assert 6 * PATIENTS <= sessions <= 16 * PATIENTS
        discharged = count(InfusionSession, InfusionSession.status == "discharged")
        assert discharged >= sessions // 3
        for model in (DoseRecord, ControlledSubstanceEntry, DischargeRecord, SessionNote):
            assert count(model) == discharged, model.__tablename__
        assert count(VitalSign) == 12 * discharged
        assert count(SessionNote, SessionNote.status == "signed") >= discharged // 2
        assert count(StaffUser, StaffUser.full_name.endswith("(fictional)")) == count(StaffUser)
    verified = runner.invoke(args=["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith("OK:")


def test_a_seeded_signed_session_hashes_as_signed_and_is_locked(app, runner, seeded):
    with app.app_context():
        notes = db.session.scalars(select(SessionNote).where(SessionNote.status == "signed")
                                   .order_by(SessionNote.id).limit(3)).all()
        for note in notes:
            content, digest = canonical.aggregate_hash(note.session_id, canonical.format_of(note.signed_content))
            assert (content, digest) == (note.signed_content, note.content_hash)
        session_id = notes[0].session_id
        reading = db.session.scalar(select(VitalSign).where(VitalSign.session_id == session_id).limit(1))
        reading.systolic += 1
        with pytest.raises(RecordLocked):
            db.session.flush()
        db.session.rollback()
        with pytest.raises(DatabaseError, match="signed and locked"):
            db.session.execute(update(VitalSign).where(VitalSign.session_id == session_id).values(systolic=200))
        db.session.rollback()
    again = seed(runner)
    assert again.exit_code == 1
    assert "already" in again.output


def test_scale_seed_refuses_a_database_with_real_staff(app, runner, make_user):
    make_user("physician", username="drreal", full_name="Real Physician")
    result = seed(runner)
    assert result.exit_code == 1
    assert "real (non-demo) staff" in result.output
    with app.app_context():
        assert count(Patient) == 0
        assert count(StaffUser) == 1
