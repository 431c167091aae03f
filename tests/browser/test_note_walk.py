"""The session note in Chromium, as the nurse and the physician use it on a tablet: the nurse writes set,
setting and experience (the draft saves itself), records an adverse event and marks the note complete;
the physician signs with their password; the nurse can no longer change it; the physician adds an
addendum. And a draft typed while the sign-in ends is put back and saved after signing in again."""
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from opsmgr.auth.models import StaffSession, StaffUser
from opsmgr.core.clock import system_now
from opsmgr.extensions import db
from opsmgr.notes.models import SessionNote
from tests.browser.conftest import DEMO_PASSWORD
from tests.browser.notes_fixtures import fill_sign_in, new_person, post_form, serve_with_app, sign_in

pytestmark = pytest.mark.browser

SAVED = re.compile(r"^Draft saved at \d\d:\d\d:\d\d\.$")
SET = {"Mindset on arrival": "Nervous about the drive in, calmer after tea.",
       "Expectations": "Hopes the heaviness lifts a little more this time.",
       "Worries": "Being sick again like last week."}
SETTING = {"Music or playlist": "Ambient piano, no lyrics",
           "Lighting": "Dimmed, one lamp",
           "Room": "Quiet room 2",
           "Support person or therapist present": "Her sister, in the chair beside her"}
EXPERIENCE = {"Emotional tone": "Tearful at first, then peaceful.",
              "Themes": "Her father; forgiving herself.",
              "Notable quotes": "\u201cIt felt like the weather cleared.\u201d",
              "How the session ended": "Eyes open at 40 minutes, smiling."}
AFTER = {"Post-session state": "Oriented, steady gait, sister driving.",
         "Integration plan": "Therapy on Thursday; next infusion Monday.",
         "Narrative": "Settled quickly; a wave of grief at 20 minutes that passed. Mild nausea at 10:20, resolved."}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve_with_app(tmp_path_factory)


@pytest.fixture
def person(browser):
    """Open a browser context of its own for each person in the test; all closed at the end."""
    contexts = []

    def make():
        contexts.append(new_person(browser))
        return contexts[-1].new_page()

    yield make
    for ctx in contexts:
        ctx.close()


def autosave_carrying(page, text):
    """Wait for the autosave request that carries `text` (not an earlier one) and for its answer."""
    return page.expect_response(lambda r: r.url.endswith("/note/autosave") and text in (r.request.post_data or ""))


def type_into(page, fields):
    for label, text in fields.items():
        box = page.get_by_label(label, exact=True)
        box.click()
        box.fill(text)


def note_row(server, session_id):
    with server.app.app_context():
        note = db.session.scalar(select(SessionNote).where(SessionNote.session_id == session_id))
        db.session.expunge_all()
        return note


def test_nurse_writes_and_completes_physician_signs_nurse_refused_physician_adds_addendum(server, person):
    patient = "Noor Notewalk"
    session_id = server.discharged_session(patient, intention="To feel like myself again.")
    note_url = server.note_url(session_id)

    # The nurse opens the note from the session page; the intention comes over from the checklist.
    nurse = person()
    sign_in(nurse, server.url, "nurse")
    nurse.goto(f"{server.url}/sessions/{session_id}")
    nurse.get_by_role("link", name="Write the note").click()
    expect(nurse.get_by_role("heading", level=1)).to_have_text(re.compile(f"Session note: {patient}"))
    expect(nurse.get_by_label("Intention, in the patient's own words")).to_have_value("To feel like myself again.")
    status_line = nurse.locator("#autosave-status")
    expect(status_line).to_have_text("Your draft saves itself as you type.")

    # Set, setting and experience, typed as she goes; the status line follows the autosave.
    type_into(nurse, SET)
    nurse.get_by_label("Eye mask worn").select_option("Yes")
    type_into(nurse, SETTING)
    nurse.get_by_label("Dissociation observed by the clinician (0–10)").fill("6")
    nurse.get_by_label("Dissociation reported by the patient (0–10)").fill("7")
    type_into(nurse, EXPERIENCE)
    with autosave_carrying(nurse, AFTER["Narrative"]) as last_save:
        type_into(nurse, AFTER)  # then she stops typing: the save comes two seconds later
    assert last_save.value.status == 200 and last_save.value.json()["status"] == "saved"
    expect(status_line).to_have_text(SAVED)

    # Autosave, proved: reload without pressing Save draft, and every word is still there.
    nurse.reload()
    for label, text in {**SET, **SETTING, **EXPERIENCE, **AFTER}.items():
        expect(nurse.get_by_label(label, exact=True)).to_have_value(text)
    expect(nurse.get_by_label("Eye mask worn")).to_have_value("yes")
    expect(nurse.get_by_label("Dissociation observed by the clinician (0–10)")).to_have_value("6")
    expect(nurse.get_by_test_id("note-status")).to_have_text("Note: Draft")

    # An adverse event: nausea at 10:20, mild, ondansetron, resolved.
    nurse.get_by_text("Record an adverse event").click()
    nurse.get_by_label("Kind", exact=True).select_option("Nausea")
    nurse.get_by_label("Onset (clinic time)").fill("10:20")
    nurse.get_by_label("Severity").select_option("mild")
    nurse.get_by_label("Outcome").select_option("Resolved")
    nurse.get_by_label("Intervention").fill("Paused the music, cool cloth")
    nurse.get_by_label("Drug given (name, dose, route)").fill("Ondansetron 4 mg IV")
    nurse.get_by_role("button", name="Record adverse event").click()
    expect(nurse.get_by_text("Adverse event recorded.")).to_be_visible()
    event_row = nurse.locator("#adverse-events tbody tr")
    expect(event_row).to_have_count(1)
    expect(event_row).to_contain_text("10:20")
    expect(event_row).to_contain_text("Nausea")
    expect(event_row).to_contain_text("Mild")
    expect(event_row).to_contain_text("Ondansetron 4 mg IV")
    expect(event_row).to_contain_text("Resolved")

    # Complete.
    nurse.get_by_role("button", name="Mark complete").click()
    expect(nurse.get_by_text("Note marked complete.")).to_be_visible()
    expect(nurse.get_by_test_id("note-status")).to_have_text("Note: Complete, waiting for a physician's signature")

    # The physician, on another tablet, finds it on "To sign" and signs with their password.
    physician = person()
    sign_in(physician, server.url, "physician")
    physician.goto(f"{server.url}/signing")
    to_sign = physician.locator("#to-sign")
    expect(to_sign.get_by_role("heading", name="Notes to sign")).to_be_visible()
    to_sign.get_by_role("row").filter(has_text=patient).get_by_role("link", name=re.compile("Review and sign")).click()
    expect(physician).to_have_url(note_url)
    expect(physician.get_by_text(AFTER["Narrative"])).to_be_visible()
    physician.get_by_label("Your password").fill(DEMO_PASSWORD)
    physician.get_by_role("button", name="Sign note").click()
    expect(physician.get_by_text("Signed. The note and the whole session record are now locked.")).to_be_visible()
    signature = physician.get_by_test_id("signature-line")
    expect(signature).to_contain_text("Electronically signed by Demo Physician (fictional), MD")
    expect(physician.get_by_text(re.compile(r"Verified: the note and the whole session record are unchanged"))) \
        .to_be_visible()
    expect(physician.get_by_test_id("note-status")).to_have_text("Note: Signed and locked")
    physician.goto(f"{server.url}/signing")
    expect(physician.locator("#to-sign").get_by_role("row").filter(has_text=patient)).to_have_count(0)
    physician.goto(note_url)

    # The nurse's edit is refused: no form on the page, and a crafted save is a 409 that changes nothing.
    nurse.reload()
    expect(nurse.get_by_test_id("note-status")).to_have_text("Note: Signed and locked")
    expect(nurse.get_by_text("Electronically signed by")).to_be_visible()
    expect(nurse.locator("#note-form")).to_have_count(0)
    expect(nurse.get_by_role("button", name="Save draft")).to_have_count(0)
    expect(nurse.get_by_role("button", name="Record adverse event")).to_have_count(0)
    for label in {**SET, **SETTING, **EXPERIENCE, **AFTER}:
        expect(nurse.get_by_label(label, exact=True)).to_have_count(0)  # shown as text, not in a field
    version = note_row(server, session_id).version
    crafted = post_form(nurse, note_url, {"version": str(version), "mindset": "Changed after signing",
                                          "narrative": "Rewritten after signing"})
    assert crafted.status == 409
    autosaved = post_form(nurse, server.note_url(session_id, "autosave"),
                          {"version": str(version), "mindset": "Changed after signing"})
    assert autosaved.status == 409
    nurse.reload()
    expect(nurse.get_by_text(SET["Mindset on arrival"])).to_be_visible()
    expect(nurse.get_by_text("Changed after signing")).to_have_count(0)
    expect(nurse.get_by_text("Rewritten after signing")).to_have_count(0)
    stored = note_row(server, session_id)
    assert (stored.mindset, stored.narrative, stored.version) == (SET["Mindset on arrival"], AFTER["Narrative"],
                                                                  version)

    # The physician adds an addendum, signed with their password; it appears below the original.
    physician.get_by_label("Reason for the addendum").fill("Late report from the patient")
    physician.get_by_label("Addendum", exact=True).fill("Phoned at 18:00: mild headache in the evening, resolved.")
    physician.get_by_label("Your password").fill(DEMO_PASSWORD)
    physician.get_by_role("button", name="Sign and add addendum").click()
    expect(physician.get_by_text("Addendum signed and added.")).to_be_visible()
    addendum = physician.locator("article.addendum")
    expect(addendum).to_have_count(1)
    expect(addendum).to_contain_text("By Demo Physician (fictional), MD")
    expect(addendum).to_contain_text("Reason: Late report from the patient")
    expect(addendum).to_contain_text("Phoned at 18:00: mild headache in the evening, resolved.")
    narrative = physician.get_by_text(AFTER["Narrative"])
    assert addendum.bounding_box()["y"] > narrative.bounding_box()["y"], "the original stays above its addenda"
    expect(physician.get_by_text(re.compile(r"Verified: the note and the whole session record"))).to_be_visible()
    # The nurse sees it too, under the unchanged original.
    nurse.reload()
    expect(nurse.locator("article.addendum")).to_contain_text("Late report from the patient")


def end_by_idle_timeout(server, page):
    """The nurse's sign-in ends on the server as after 16 idle minutes (the limit is 15)."""
    with server.app.app_context():
        nurse_id = db.session.scalar(select(StaffUser.id).where(StaffUser.username == "nurse"))
        db.session.execute(update(StaffSession).where(StaffSession.user_id == nurse_id,
                                                      StaffSession.ended_at.is_(None))
                           .values(last_seen_at=system_now() - timedelta(minutes=16)))
        db.session.commit()


def end_by_signing_out_in_another_tab(server, page):
    """The nurse signs out on another tab of the same tablet (same cookies)."""
    other = page.context.new_page()
    other.goto(f"{server.url}/")
    other.get_by_role("button", name="Sign out").click()
    expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
    other.close()


@pytest.mark.parametrize("end_sign_in", [end_by_idle_timeout, end_by_signing_out_in_another_tab],
                         ids=["idle-timeout", "signed-out-in-another-tab"])
def test_text_typed_after_the_sign_in_ended_is_put_back_and_saved_after_signing_in_again(server, person,
                                                                                         end_sign_in):
    session_id = server.discharged_session(f"Sasha Notelogout {end_sign_in.__name__[7:]}")
    note_url = server.note_url(session_id)
    nurse = person()
    sign_in(nurse, server.url, "nurse")
    nurse.goto(note_url)
    before, after = "Anxious about the drive in.", "Grief about her father; then relief."
    with autosave_carrying(nurse, before):
        type_into(nurse, {"Mindset on arrival": before})
        nurse.get_by_label("Themes").click()  # leaving the field saves it
    expect(nurse.locator("#autosave-status")).to_have_text(SAVED)

    end_sign_in(server, nurse)

    nurse.get_by_label("Themes").fill(after)
    # The autosave finds the sign-in gone: the text is kept in the tab and the nurse is sent to sign in.
    next_path = re.escape(f"/sessions/{session_id}/note").replace("/", "(/|%2F)")
    expect(nurse).to_have_url(re.compile(rf"/login\?next={next_path}$"))
    expect(nurse.get_by_role("heading", name="Sign in")).to_be_visible()
    stored = note_row(server, session_id)
    assert stored.themes == "" and stored.mindset == before

    fill_sign_in(nurse, "nurse")
    expect(nurse).to_have_url(note_url)
    expect(nurse.get_by_label("Themes")).to_have_value(after)
    expect(nurse.get_by_label("Mindset on arrival")).to_have_value(before)
    expect(nurse.locator("#autosave-status")).to_have_text(SAVED)
    stored = note_row(server, session_id)
    assert (stored.themes, stored.mindset) == (after, before)
    # Saved on the server, not only put back from the tab: a reload shows it, and the tab's copy is gone.
    nurse.reload()
    expect(nurse.get_by_label("Themes")).to_have_value(after)
    assert nurse.evaluate(f"sessionStorage.getItem('opsmgr-note-unsaved-{session_id}')") is None


def test_typing_into_a_note_signed_meanwhile_says_not_saved_and_changes_nothing(server, person):
    session_id = server.discharged_session("Robin Notelate")
    note_url = server.note_url(session_id)
    nurse = person()
    sign_in(nurse, server.url, "nurse")
    nurse.goto(note_url)
    nurse.get_by_label("Dissociation observed by the clinician (0–10)").fill("4")
    with autosave_carrying(nurse, AFTER["Narrative"]):  # the last field typed: nothing is left unsaved
        type_into(nurse, {"Mindset on arrival": SET["Mindset on arrival"], "Intention, in the patient's own words":
                          "To sleep again.", "Post-session state": AFTER["Post-session state"],
                          "Narrative": AFTER["Narrative"]})
    expect(nurse.locator("#autosave-status")).to_have_text(SAVED)
    nurse.reload()  # "Mark complete" is offered once the page shows a saved draft
    nurse.get_by_role("button", name="Mark complete").click()
    expect(nurse.get_by_text("Note marked complete.")).to_be_visible()

    # The physician signs while the nurse still has the page open; then she adds a line.
    physician = person()
    sign_in(physician, server.url, "physician")
    physician.goto(note_url)
    physician.get_by_label("Your password").fill(DEMO_PASSWORD)
    physician.get_by_role("button", name="Sign note").click()
    expect(physician.get_by_test_id("signature-line")).to_contain_text("Electronically signed by")
    nurse.get_by_label("Themes").fill("Added after the signature")
    expect(nurse.locator("#autosave-status")).to_have_text(re.compile(r"^Not saved: .*signed by a physician"))
    assert note_row(server, session_id).themes == ""
    nurse.reload()
    expect(nurse.get_by_test_id("note-status")).to_have_text("Note: Signed and locked")
    expect(nurse.get_by_text("Added after the signature")).to_have_count(0)


def test_a_value_out_of_range_shows_its_message_next_to_the_field_with_everything_kept(server, person):
    session_id = server.discharged_session("Ari Outofrange")
    nurse = person()
    sign_in(nurse, server.url, "nurse")
    nurse.goto(server.note_url(session_id))
    nurse.get_by_label("Themes").fill("Kept while the rating is wrong")
    nurse.get_by_label("Dissociation observed by the clinician (0–10)").fill("11")
    expect(nurse.locator("#autosave-status")).to_contain_text(
        "check Dissociation observed by the clinician (0–10)")
    nurse.get_by_role("button", name="Save draft").click()
    expect(nurse.locator("#dissociation_clinician-error")).to_contain_text("Enter a whole number from 0 to 10.")
    expect(nurse.get_by_label("Themes")).to_have_value("Kept while the rating is wrong")
    expect(nurse.get_by_label("Dissociation observed by the clinician (0–10)")).to_have_value("11")
    nurse.get_by_label("Dissociation observed by the clinician (0–10)").fill("7")
    nurse.get_by_role("button", name="Save draft").click()
    expect(nurse.get_by_text("Draft saved.")).to_be_visible()
    stored = note_row(server, session_id)
    assert (stored.themes, stored.dissociation_clinician) == ("Kept while the rating is wrong", 7)
