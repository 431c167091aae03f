"""Refusals: every refusal class is a DomainError carrying Problem(field, message), and an audited
refusal's audit event survives the request that refused (core.web.attempt commits only that).

The audited refusals already proven through a request elsewhere, not repeated here:
- override.refused: tests/test_checklist_pages.py::test_bp_150_95_needs_a_physician_whose_override_clears_the_session
- dose.start_refused: tests/test_infusion.py::test_start_refused_when_the_checklist_vitals_went_stale
- discharge.refused: tests/test_infusion.py::test_a_refused_discharge_waits_for_the_physician_with_the_nurses_answers
- controlled_substance.witness_refused: tests/test_infusion.py::test_controlled_substance_record_refused
- note.sign_refused: tests/test_notes.py::test_signing_a_version_the_physician_did_not_read_is_refused
- reauth.failed on a dose order:
  tests/test_infusion.py::test_a_wrong_password_on_an_order_is_audited_and_counts_toward_lockout
- reauth.failed on signing a note: tests/test_notes.py::test_only_a_physician_signs_and_a_wrong_password_signs_nothing
- record.change_refused: tests/test_notes.py::test_autosave_gets_json_when_the_form_expired_or_the_note_was_signed
"""
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from opsmgr.audit.models import AuditEvent
from opsmgr.auth.service import AccountError
from opsmgr.checklist.service import ChecklistError, StaleChecklist
from opsmgr.clinic.service import ClinicError
from opsmgr.core.edits import EditConflict, SavedBy
from opsmgr.core.merge import Merge
from opsmgr.core.refusals import DomainError
from opsmgr.core.web import CONCURRENT, attempt
from opsmgr.extensions import db
from opsmgr.gates.service import OverrideRefused
from opsmgr.infusion.orders import DoseChanged
from opsmgr.infusion.service import InfusionError
from opsmgr.notes.service import NoteError, StaleNote
from opsmgr.patients.service import PatientError
from opsmgr.policy.service import PolicyError
from opsmgr.rules.findings import Problem
from opsmgr.schedule import service as schedule
from opsmgr.schedule.service import BookingError, OtherDay
from opsmgr.tasks.service import TaskError
from tests.conftest import PASSWORD
from tests.factories import create_chairs
from tests.test_booking import COORDINATOR, new_series

SEVERITY = Problem("PREGNANCY_POSITIVE", "A positive pregnancy test: fixed. The rules do not let a clinic change it.")

#: (the refusal as a service raises it, its problems as (field, message), whether it is audited)
REFUSALS = {
    "booking at a field": (BookingError("Choose an active chair.", field="chair_id"),
                           [("chair_id", "Choose an active chair.")], False),
    "booking of the form": (BookingError("This series is already stopped."),
                            [(None, "This series is already stopped.")], False),
    "booked for another day": (OtherDay("Booked for Mon 30 Nov, not today."),
                               [("day", "Booked for Mon 30 Nov, not today.")], False),
    "patient": (PatientError("A patient with this MRN already exists.", field="mrn"),
                [("mrn", "A patient with this MRN already exists.")], False),
    "clinic": (ClinicError("Another chair already has this name.", field="name"),
               [("name", "Another chair already has this name.")], False),
    "policy severity": (PolicyError("Nothing was saved: a severity is outside the limits.", [SEVERITY]),
                        [(SEVERITY.field, SEVERITY.message)], False),
    "task": (TaskError("Only a physician can resolve a physician task."),
             [(None, "Only a physician can resolve a physician task.")], False),
    "account": (AccountError("That username is already taken.", field="username"),
                [("username", "That username is already taken.")], False),
    "wrong current password": (AccountError("The current password is not correct.", field="current_password",
                                            audited=True),
                               [("current_password", "The current password is not correct.")], True),
    "checklist": (ChecklistError("Record the weight.", field="weight_kg"), [("weight_kg", "Record the weight.")],
                  False),
    "stale checklist": (StaleChecklist("Someone else saved it."), [(None, "Someone else saved it.")], False),
    "note": (NoteError("That password is not correct.", "password"), [("password", "That password is not correct.")],
             False),
    "stale note": (StaleNote(note=None), [(None, str(StaleNote(note=None)))], False),
    "note sign refused": (NoteError("Changed after you opened it.", "version",
                                    problems=[Problem("version", "Changed after you opened it.")], audited=True),
                          [("version", "Changed after you opened it.")], True),
    "chair": (InfusionError("Enter a time.", "taken_at"), [("taken_at", "Enter a time.")], False),
    "chair, several": (InfusionError("", errors=[("drawn_mg", "Too much."), (None, "Check the record.")]),
                       [("drawn_mg", "Too much."), (None, "Check the record.")], False),
    "gate": (InfusionError("2 finding(s) still open.", audited=True), [(None, "2 finding(s) still open.")], True),
    "override": (OverrideRefused([Problem("password", "The password is not correct.")], audited=True),
                 [("password", "The password is not correct.")], True),
    "dose changed": (DoseChanged([Problem(None, "The dose changed.")]), [(None, "The dose changed.")], False),
    "edit conflict": (EditConflict(Merge({"phone": "1"}, conflicts=("phone",)), {"phone": "2"},
                                   SavedBy("Jo Smith", None)),
                      [("phone", "Not saved yet: you and Jo Smith both changed one field. Choose which version to "
                                 "keep for each one below; nothing is saved until you do.")], False),
}


@pytest.mark.parametrize("error,problems,audited", REFUSALS.values(), ids=REFUSALS.keys())
def test_every_refusal_is_a_domain_error_of_problems_at_their_fields(error, problems, audited):
    assert isinstance(error, DomainError) and isinstance(error, ValueError)
    assert all(type(problem) is Problem for problem in error.problems)
    assert error.errors == problems
    assert error.field == problems[0][0]
    assert error.audited is audited
    assert str(error) == problems[0][1] or isinstance(error, PolicyError)


def test_a_policy_refusal_says_its_own_message_above_its_problems():
    error = REFUSALS["policy severity"][0]
    assert str(error) == "Nothing was saved: a severity is outside the limits."
    assert [problem.field for problem in error.problems] == ["PREGNANCY_POSITIVE"]


def test_a_status_refusal_names_its_field_by_the_rule_not_by_its_words(app, clock):
    """A missing reason is at the reason field; a step not on offer is the whole form's; a check-in on
    another day is at the day (the page offers to move the session)."""
    with app.app_context():
        create_chairs(1)
        visit = new_series(clock).sessions[0]  # booked for Monday; today is Thursday
        refusals = []
        for target, reason in (("cancelled", ""), ("checklist", "a reason"), ("checked_in", "")):
            with pytest.raises(BookingError) as refused:
                schedule.change_status(visit, target, reason=reason, actor=COORDINATOR, now=clock())
            refusals.append((type(refused.value), refused.value.field))
        assert refusals == [(BookingError, "reason"), (BookingError, None), (OtherDay, "day")]
        assert visit.status == "scheduled"


def test_a_concurrent_write_reaches_the_refusal_as_a_domain_error(app):
    def collides():
        raise IntegrityError("INSERT …", {}, Exception("unique constraint"))

    with app.test_request_context():
        refused = attempt(collides, done=lambda _: "done", refused=lambda error: error)
    assert isinstance(refused, DomainError) and refused.errors == [(None, CONCURRENT)]


def events(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_a_wrong_current_password_is_refused_and_its_audit_event_kept(app, login_as):
    nurse = login_as("nurse")
    new = "a brand new passphrase"
    refused = nurse.submit("/account/password", {"current_password": "not it at all", "password": new,
                                                 "confirm": new})
    assert refused.status_code == 200 and "The current password is not correct." in refused.get_data(as_text=True)
    [event] = events(app, "password.change_failed")
    assert (event.outcome, event.object_type, event.object_id) == ("denied", "staff_user", str(nurse.user.id))
    assert events(app, "password.changed") == []
    assert app.test_client().login(nurse.user.username, PASSWORD).status_code == 302, "the password is unchanged"
