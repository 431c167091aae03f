"""Concurrent edits are merged, never erased: the pure three-way merge (table first), then each
versioned form on the server (note draft and its autosave, patient, clinic settings, protocol,
policy) with one field changed by both sides, by one side only, and by neither."""
import json
import re
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from opsmgr.audit.models import AuditEvent
from opsmgr.core.merge import UNKNOWN, base_from, fingerprint, merge_edit, opened_token, read_token, three_way
from opsmgr.extensions import db
from opsmgr.notes.models import SessionNote
from opsmgr.patients.models import Patient
from opsmgr.policy import service as policy_service
from opsmgr.schedule.models import ClinicSetting
from opsmgr.series.models import Protocol
from tests.factories import create_chairs, create_patient

# --- the pure merge ---------------------------------------------------------------------------------

B, M, T = "base", "mine", "theirs"


@pytest.mark.parametrize(("base", "mine", "theirs", "value", "taken", "conflict"), [
    (B, B, B, B, False, False),                  # neither changed
    (B, M, B, M, False, False),                  # only mine
    (B, B, T, T, True, False),                   # only theirs: taken from theirs
    (B, M, M, M, False, False),                  # both, to the same value
    (B, M, T, M, False, True),                   # both, differently: a choice, mine kept meanwhile
    (UNKNOWN, M, T, M, False, True),             # base unknown and the sides differ
    (UNKNOWN, M, M, M, False, False),            # base unknown but the sides agree
    ("", None, "", None, False, False),          # empty text and None are the same
    (None, "", "Now filled", "Now filled", True, False),
    (Decimal("0.50"), Decimal("0.5"), Decimal("0.75"), Decimal("0.75"), True, False),  # 0.50 is 0.5
    (False, True, False, True, False, False),
    (date(2026, 1, 1), date(2026, 1, 1), date(2026, 2, 1), date(2026, 2, 1), True, False),
])
def test_three_way_field_by_field(base, mine, theirs, value, taken, conflict):
    merge = three_way({"f": base}, {"f": mine}, {"f": theirs})
    assert merge.values == {"f": value}
    assert merge.taken_from_theirs == (("f",) if taken else ())
    assert merge.conflicts == (("f",) if conflict else ())
    assert merge.clean is not conflict


def test_a_field_mine_left_out_keeps_theirs_and_one_only_mine_has_is_mine():
    merge = three_way({}, {"new": 1}, {"saved": 2})
    assert merge.values == {"saved": 2, "new": 1} and merge.clean and merge.taken_from_theirs == ()


def test_fingerprints_stand_for_the_base_wherever_a_side_still_holds_it():
    prints = read_token(opened_token({"a": "x", "b": "y", "c": "z"}))
    base = base_from(prints, {"a": "x", "b": "mine", "c": "mine"}, {"a": "theirs", "b": "y", "c": "theirs"})
    assert base == {"a": "x", "b": "y"}, "c changed on both sides: its base is unknown"
    assert fingerprint(None) == fingerprint("") and fingerprint(Decimal("2.0")) == fingerprint(2)


@pytest.mark.parametrize("token", [None, "", "not json", "[1, 2]", '"text"'])
def test_an_unreadable_token_is_no_token(token):
    assert read_token(token) is None


@pytest.mark.parametrize(("choice", "value", "conflicts", "chosen"), [
    (None, "mine", ("f",), {}),                 # shown as a conflict, not chosen: still a conflict
    ("bogus", "mine", ("f",), {}),
    ("mine", "mine", (), {"f": "mine"}),
    ("theirs", "theirs", (), {"f": "theirs"}),
])
def test_a_field_shown_as_a_conflict_needs_a_choice(choice, value, conflicts, chosen):
    # The form was shown again opened on theirs: the user's text now reads as "only mine changed".
    merge = merge_edit({"f": "mine", "g": "same"}, {"f": "theirs", "g": "same"},
                       opened=read_token(opened_token({"f": "theirs", "g": "same"})),
                       pending=("f",), choices={"f": choice})
    assert (merge.values["f"], merge.conflicts, merge.chosen) == (value, conflicts, chosen)


def test_a_choice_made_before_the_colleague_saved_again_is_asked_again():
    merge = merge_edit({"f": "mine"}, {"f": "theirs, again"}, opened=read_token(opened_token({"f": "theirs"})),
                       pending=("f",), choices={"f": "mine"})
    assert merge.conflicts == ("f",)


def test_without_a_token_a_stale_form_makes_every_difference_a_choice():
    assert merge_edit({"f": "a", "g": "x"}, {"f": "b", "g": "x"}, opened={}).conflicts == ("f",)
    assert merge_edit({"f": "a"}, {"f": "b"}).values == {"f": "a"}, "opened on what is saved now: mine"


# --- server helpers ---------------------------------------------------------------------------------


def page(response):
    return response.get_data(as_text=True)


class _Fields(HTMLParser):
    """The values a browser would send for the first form whose tag contains `marker`."""

    def __init__(self, marker):
        super().__init__(convert_charrefs=True)
        self.marker, self.inside, self.values, self.textarea, self.select = marker, False, {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and not self.values and self.marker in self.get_starttag_text():
            self.inside = True
        if not self.inside:
            return
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in {"radio", "checkbox", "submit"}:
            self.values[name] = attrs.get("value") or ""
        elif tag == "input" and name and attrs.get("type") == "checkbox" and "checked" in attrs:
            self.values[name] = attrs.get("value") or "y"
        elif tag == "textarea":
            self.textarea, self.values[name] = name, ""
        elif tag == "select":
            self.select, self.values[name] = name, ""
        elif tag == "option" and self.select and "selected" in attrs:
            self.values[self.select] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "textarea":
            self.textarea = None
        elif tag == "select":
            self.select = None

    def handle_data(self, data):
        if self.inside and self.textarea:
            self.values[self.textarea] += data.lstrip("\r\n") if not self.values[self.textarea] else data


def form_values(html, marker):
    """What the rendered form would post as it stands (no radio chosen, no CSRF token)."""
    parser = _Fields(marker)
    parser.feed(html)
    return {name: value for name, value in parser.values.items() if name not in {"csrf_token", "submission_key"}}


def last_event(app, action):
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == action)
                                  .order_by(AuditEvent.id.desc()).limit(1))
        return json.loads(event.details) if event else None


def choose(html, marker, **choices):
    """The re-shown form posted again as it stands, with a choice for each named conflicting field."""
    return {**form_values(html, marker), **{f"choice-{name}": value for name, value in choices.items()}}


# --- the note draft ---------------------------------------------------------------------------------


@pytest.fixture
def note_session(app, clock):
    from tests.test_notes import make_session

    with app.app_context():
        create_chairs(1)
    return make_session(app, clock)


def note(app, session_id):
    with app.app_context():
        row = db.session.scalar(select(SessionNote).where(SessionNote.session_id == session_id))
        db.session.expunge_all()
        return row


NOTE_FORM = 'id="note-form"'


def note_form(client, session_id):
    """The note form as the page renders it: every field, the version and what it was opened with."""
    return form_values(page(client.get(f"/sessions/{session_id}/note")), NOTE_FORM)


@pytest.fixture
def two_tabs(app, note_session, login_as):
    """A note saved once, opened in two tabs (a nurse and a physician)."""
    nurse, physician = login_as("nurse"), login_as("physician")
    first = nurse.submit(f"/sessions/{note_session}/note/autosave", {"version": "0", "mindset": "Calm."},
                         headers={"Accept": "application/json"})
    assert first.json["status"] == "saved"
    return note_session, (nurse, note_form(nurse, note_session)), (physician, note_form(physician, note_session))


def test_note_fields_changed_in_one_tab_each_are_both_kept(app, two_tabs):
    session_id, (nurse, a), (physician, b) = two_tabs
    assert nurse.submit(f"/sessions/{session_id}/note", {**a, "themes": "Grief."}).status_code == 302
    response = physician.submit(f"/sessions/{session_id}/note", {**b, "quotes": "“Lighter.”"},
                                follow_redirects=True)
    assert "Draft saved. Also kept: Themes, changed by" in page(response)
    saved = note(app, session_id)
    assert (saved.mindset, saved.themes, saved.quotes) == ("Calm.", "Grief.", "“Lighter.”")
    details = last_event(app, "note.drafted")
    assert details["fields"] == ["quotes"] and details["merged"] == ["themes"]
    assert "Grief" not in json.dumps(details), "field names only, never the text"


def test_note_autosave_merges_and_returns_the_fields_it_brought_in(app, two_tabs):
    session_id, (nurse, a), (physician, b) = two_tabs
    assert nurse.submit(f"/sessions/{session_id}/note/autosave", {**a, "themes": "Grief."},
                        headers={"Accept": "application/json"}).json["status"] == "saved"
    reply = physician.submit(f"/sessions/{session_id}/note/autosave", {**b, "quotes": "Q"},
                             headers={"Accept": "application/json"}).json
    assert reply["status"] == "saved" and reply["kept"] == {"themes": "Grief."}
    assert reply["kept_message"].startswith("Also kept: Themes, changed by ")
    assert read_token(reply["opened"])["themes"] == fingerprint("Grief.")


def test_note_field_changed_in_both_tabs_waits_for_a_choice_then_keeps_the_chosen_text(app, two_tabs):
    session_id, (nurse, a), (physician, b) = two_tabs
    assert nurse.submit(f"/sessions/{session_id}/note", {**a, "themes": "Nurse's.", "quotes": "Q"}).status_code == 302
    mine = {**b, "themes": "Physician's.", "ending": "Slept."}
    conflict = physician.submit(f"/sessions/{session_id}/note", mine)
    html = page(conflict)
    assert conflict.status_code == 409 and 'id="choice-themes"' in html and 'id="choice-quotes"' not in html
    assert "Physician&#39;s." in html and "Nurse&#39;s." in html, "both versions side by side"
    assert re.search(r'name="choice-themes"[^>]*value="mine">', html) and " checked" not in html.split(
        'id="choice-themes"')[1].split("</fieldset>")[0], "no default choice"
    assert note(app, session_id).themes == "Nurse's." and note(app, session_id).ending == ""

    assert form_values(html, NOTE_FORM)["quotes"] == "Q", "the colleague's other field is brought into the form"
    unchosen = physician.submit(f"/sessions/{session_id}/note", choose(html, NOTE_FORM))
    assert unchosen.status_code == 409 and "Choose which version to keep." in page(unchosen)
    assert physician.submit(f"/sessions/{session_id}/note", choose(html, NOTE_FORM, themes="mine")).status_code == 302
    saved = note(app, session_id)
    assert (saved.themes, saved.quotes, saved.ending) == ("Physician's.", "Q", "Slept.")
    details = last_event(app, "note.drafted")
    assert details["chosen_mine"] == ["themes"] and "merged" not in details


def test_note_autosave_of_a_field_changed_in_both_tabs_is_a_conflict_that_writes_nothing(app, two_tabs):
    session_id, (nurse, a), (physician, b) = two_tabs
    nurse.submit(f"/sessions/{session_id}/note", {**a, "themes": "Nurse's."})
    reply = physician.submit(f"/sessions/{session_id}/note/autosave", {**b, "themes": "Physician's."},
                             headers={"Accept": "application/json"})
    assert reply.status_code == 409 and reply.json["status"] == "conflict"
    assert reply.json["theirs"] == {"themes": "Nurse's."} and reply.json["saved_by"].startswith("Saved by ")
    assert note(app, session_id).themes == "Nurse's."


def test_note_saved_again_unchanged_by_the_other_tab_says_nothing_about_merging(app, two_tabs):
    session_id, (nurse, a), _ = two_tabs
    response = nurse.submit(f"/sessions/{session_id}/note", {**a, "themes": "Mine."}, follow_redirects=True)
    assert "Also kept" not in page(response) and note(app, session_id).themes == "Mine."
    assert "merged" not in last_event(app, "note.drafted")


# --- the patient --------------------------------------------------------------------------------------


@pytest.fixture
def patient_id(app, clock):
    with app.app_context():
        return create_patient(now=clock(), legal_name="Ada Quill", phone="+15035550100", escort_name="Tom Quill").id


EDIT_FORM = 'class="col-12 col-lg-8"'


def patient_form(client, patient_id):
    return form_values(page(client.get(f"/patients/{patient_id}/edit")), EDIT_FORM)


def patient(app, patient_id):
    with app.app_context():
        row = db.session.get(Patient, patient_id)
        db.session.expunge_all()
        return row


def test_patient_edits_of_different_fields_keep_the_colleagues_new_phone(app, login_as, patient_id):
    first, second = login_as("nurse"), login_as("coordinator")
    a, b = patient_form(first, patient_id), patient_form(second, patient_id)
    assert first.submit(f"/patients/{patient_id}/edit", {**a, "phone": "503 555 0111"}).status_code == 302
    response = second.submit(f"/patients/{patient_id}/edit", {**b, "escort_name": "Sam Quill"},
                             follow_redirects=True)
    assert "Changes saved. Also kept: Phone, changed by " in page(response)
    saved = patient(app, patient_id)
    assert (saved.phone, saved.escort_name) == ("+15035550111", "Sam Quill")
    details = last_event(app, "patient.updated")
    assert details["merged"] == ["phone"] and "phone" not in {k for k in details if k != "merged"}


def test_patient_field_changed_by_both_waits_for_a_choice(app, login_as, patient_id):
    first, second = login_as("nurse"), login_as("coordinator")
    a, b = patient_form(first, patient_id), patient_form(second, patient_id)
    assert first.submit(f"/patients/{patient_id}/edit", {**a, "phone": "503 555 0111"}).status_code == 302
    mine = {**b, "phone": "503 555 0122", "escort_name": "Sam Quill"}
    conflict = second.submit(f"/patients/{patient_id}/edit", mine)
    html = page(conflict)
    assert conflict.status_code == 409 and 'id="choice-phone"' in html and 'id="choice-escort_name"' not in html
    assert 'value="(503) 555-0122"' in html and "(503) 555-0111" in html
    assert patient(app, patient_id).phone == "+15035550111"
    assert second.submit(f"/patients/{patient_id}/edit", choose(html, EDIT_FORM, phone="theirs")).status_code == 302
    saved = patient(app, patient_id)
    assert (saved.phone, saved.escort_name) == ("+15035550111", "Sam Quill")
    assert last_event(app, "patient.updated")["chosen_theirs"] == ["phone"]


def test_patient_edit_on_the_current_version_is_saved_as_it_is(app, login_as, patient_id):
    nurse = login_as("nurse")
    response = nurse.submit(f"/patients/{patient_id}/edit", {**patient_form(nurse, patient_id), "phone": "5035550199"},
                            follow_redirects=True)
    assert "Also kept" not in page(response) and patient(app, patient_id).phone == "+15035550199"


# --- clinic settings ----------------------------------------------------------------------------------


SETTINGS_FORM = 'action="/admin/clinic/settings"'


def settings_form(client):
    return form_values(page(client.get("/admin/clinic/")), SETTINGS_FORM)


def setting(app):
    with app.app_context():
        row = db.session.get(ClinicSetting, 1)
        return row.turnover_minutes, row.ical_patient_names


@pytest.mark.parametrize(("theirs", "mine", "status", "result"), [
    ({"turnover_minutes": "20"}, {"ical_patient_names": "y"}, 302, (20, True)),    # one each: both kept
    ({"turnover_minutes": "20"}, {"turnover_minutes": "25"}, 409, (20, False)),    # both: a choice
    ({}, {"turnover_minutes": "25"}, 302, (25, False)),                            # nobody else
])
def test_clinic_settings_merge(app, login_as, theirs, mine, status, result):
    first, second = login_as("admin"), login_as("admin")
    a, b = settings_form(first), settings_form(second)
    if theirs:
        assert first.submit("/admin/clinic/settings", {**a, **theirs}).status_code == 302
    response = second.submit("/admin/clinic/settings", {**b, **mine})
    assert response.status_code == status and setting(app) == result
    if status == 409:
        html = page(response)
        assert 'id="choice-turnover_minutes"' in html and form_values(html, SETTINGS_FORM)["turnover_minutes"] == "25"
        again = second.submit("/admin/clinic/settings", choose(html, SETTINGS_FORM, turnover_minutes="mine"))
        assert again.status_code == 302 and setting(app) == (25, False)
        assert last_event(app, "clinic.settings_changed")["chosen_mine"] == ["turnover_minutes"]


# --- protocols ----------------------------------------------------------------------------------------


def current_protocol(app, code="iv-induction"):
    with app.app_context():
        row = db.session.scalar(select(Protocol).where(Protocol.code == code, Protocol.is_current))
        db.session.expunge_all()
        return row


def protocol_form(protocol):
    from tests.test_clinic import IV_EDIT

    return {**IV_EDIT, "name": protocol.name, "notes": protocol.notes, "planned_count": str(protocol.planned_count)}


@pytest.mark.parametrize(("theirs", "mine", "status", "result"), [
    ({"notes": "Theirs."}, {"planned_count": "8"}, 302, ("Theirs.", 8)),    # one each: both kept, version 3
    ({"planned_count": "7"}, {"planned_count": "8"}, 409, ("", 7)),         # both: a choice
    ({}, {"planned_count": "8"}, 302, (None, 8)),                           # nobody else: version 2
])
def test_protocol_edit_of_an_old_version_merges_with_the_current_one(app, login_as, theirs, mine, status, result):
    first = current_protocol(app)
    base = protocol_form(first)
    other, admin = login_as("admin"), login_as("admin")
    if theirs:
        assert other.submit(f"/admin/clinic/protocols/{first.id}/edit", {**base, **theirs}).status_code == 302
    response = admin.submit(f"/admin/clinic/protocols/{first.id}/edit", {**base, **mine})
    assert response.status_code == status
    saved = current_protocol(app)
    assert saved.planned_count == result[1] and (result[0] is None or saved.notes == result[0] or status == 409)
    if status == 302 and theirs:
        assert saved.version == 3 and last_event(app, "protocol.revised")["merged"] == ["notes"]
    if status == 409:
        html = page(response)
        assert 'id="choice-planned_count"' in html and f'action="/admin/clinic/protocols/{saved.id}/edit"' in html
        again = admin.submit(f"/admin/clinic/protocols/{saved.id}/edit", choose(html, EDIT_FORM, planned_count="mine"))
        assert again.status_code == 302 and current_protocol(app).planned_count == 8


# --- the clinical policy ------------------------------------------------------------------------------


def policy_form(**changes):
    from tests.test_policy import form_values

    return form_values(**changes)


@pytest.mark.parametrize(("theirs", "mine", "status", "result"), [
    ({"hr_high": "125"}, {"bp_soft_systolic": "135"}, 302, (125, 135)),    # one each: both kept
    ({"hr_high": "125"}, {"hr_high": "130"}, 409, (125, 140)),             # both: a choice
    ({}, {"hr_high": "130"}, 302, (130, 140)),                             # nobody else
])
def test_policy_edit_of_an_older_version_merges_with_the_current_one(app, login_as, theirs, mine, status, result):
    first, second = login_as("admin"), login_as("admin")
    if theirs:
        assert first.submit("/admin/policy/", policy_form(**theirs)).status_code == 302
    response = second.submit("/admin/policy/", policy_form(**mine))
    assert response.status_code == status
    with app.app_context():
        _, policy = policy_service.current_policy()
        assert (policy.hr_high, policy.bp_soft_systolic) == result
    if status == 302 and theirs:
        assert last_event(app, "policy.revised")["merged"] == ["hr_high"]
    if status == 409:
        html = page(response)
        assert 'id="choice-hr_high"' in html
        again = second.submit("/admin/policy/", choose(html, "novalidate>", hr_high="theirs"))
        assert again.status_code == 302
        with app.app_context():
            assert policy_service.current_policy()[1].hr_high == 125
