"""Two-factor sign-in in Chromium, as a physician meets it when the clinic requires it for physicians:
sent to set it up right after the password, reads the set-up key off the page into an authenticator
(here pyotp), keeps the recovery codes, signs in again with a code, and signs a note with a fresh code."""
import re

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from opsmgr.auth.models import StaffUser
from opsmgr.auth.service import actor_for
from opsmgr.demo.service import SIGNED_NOTE
from opsmgr.extensions import db
from opsmgr.notes import service as notes
from opsmgr.notes.models import SessionNote
from opsmgr.sessions.models import InfusionSession
from tests.browser.a11y import report, violations
from tests.browser.conftest import DEMO_PASSWORD, AdjustableClock, migrated_app, seed_staff_and_three_chairs, serving
from tests.browser.notes_fixtures import NoteServer, fill_sign_in, new_person

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The demo staff on a live server whose clinic requires two-factor for physicians and admins; the
    clock is real time that the test moves on by whole 30-second steps (each code is accepted once)."""
    clock = AdjustableClock()
    app = migrated_app(tmp_path_factory.mktemp("two-factor-browser"), "two-factor", seed_staff_and_three_chairs,
                       CLOCK=clock, TWO_FACTOR_REQUIRED_ROLES=frozenset({"physician", "admin"}))
    with serving(app) as url:
        yield NoteServer(app, url), clock


def completed_note(server, name):
    """A discharged session whose note the demo nurse wrote and marked complete (the notes service)."""
    session_id = server.discharged_session(name)
    with server.app.app_context():
        nurse = actor_for(db.session.scalar(select(StaffUser).where(StaffUser.username == "nurse")))
        visit = db.session.get(InfusionSession, session_id)
        now = server.app.config["CLOCK"]()
        saved = notes.save_draft(visit, SIGNED_NOTE, expected_version=0, actor=nurse, now=now).row
        notes.complete_note(visit, expected_version=saved.version, actor=nurse, now=now)
        db.session.commit()
    return session_id


def test_a_physician_enrols_signs_in_with_a_code_and_signs_a_note_with_one(server, browser):
    server, clock = server
    session_id = completed_note(server, "Tova Twofactor")
    context = new_person(browser, bypass_csp=True)  # axe is injected into two of the pages
    page = context.new_page()

    # The password is right, and the role requires two-factor: the set-up page, and nothing else.
    page.goto(f"{server.url}/login")
    fill_sign_in(page, "physician")
    expect(page).to_have_url(re.compile(r"/account/two-factor$"))
    expect(page.get_by_text("Your role signs in with two factors")).to_be_visible()
    page.goto(f"{server.url}/signing")
    expect(page).to_have_url(re.compile(r"/account/two-factor$"))
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    expect(page.get_by_test_id("two-factor-qr")).to_be_visible()
    authenticator = pyotp.TOTP(page.get_by_test_id("two-factor-secret").inner_text().strip())
    assert not violations(page), report(violations(page), "the set-up page")

    page.get_by_label("Code from your authenticator app").fill(authenticator.at(clock()))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
    page.get_by_role("link", name="I have kept them: continue").click()
    page.get_by_role("button", name="Sign out").click()

    # Signing in again: the password, then a code.
    clock.advance(seconds=30)
    fill_sign_in(page, "physician")
    expect(page).to_have_url(re.compile(r"/login/code$"))
    assert not violations(page), report(violations(page), "the code step")
    page.get_by_label("Code from your authenticator app").fill(authenticator.at(clock()))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    # Signing the note asks for a fresh code beside the password.
    clock.advance(seconds=30)
    page.goto(server.note_url(session_id))
    page.get_by_label("Your password").fill(DEMO_PASSWORD)
    page.get_by_label("Code from your authenticator app").fill(authenticator.at(clock()))
    page.get_by_role("button", name="Sign note").click()
    expect(page.get_by_text("Signed. The note and the whole session record are now locked.")).to_be_visible()
    with server.app.app_context():
        assert db.session.scalar(select(SessionNote.status).where(SessionNote.session_id == session_id)) == "signed"

    # The codes page is gone (a second click, Back): ten new codes with the password and a fresh code; a
    # wrong code first, refused at its field with what was typed kept.
    page.goto(f"{server.url}/account/two-factor")
    renew = page.locator("form[action$='/recovery-codes']")
    assert not violations(page), report(violations(page), "the two-factor page, on")
    renew.get_by_label("Your password").fill(DEMO_PASSWORD)
    renew.get_by_label("Code from your authenticator app").fill("000000")
    renew.get_by_role("button", name="Make new recovery codes").click()
    expect(renew.get_by_label("Code from your authenticator app")).to_have_attribute("aria-invalid", "true")
    assert not violations(page), report(violations(page), "new recovery codes refused")
    clock.advance(seconds=30)
    renew.get_by_label("Your password").fill(DEMO_PASSWORD)
    renew.get_by_label("Code from your authenticator app").fill(authenticator.at(clock()))
    renew.get_by_role("button", name="Make new recovery codes").click()
    expect(page.get_by_role("heading", name="New recovery codes")).to_be_visible()
    expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
    context.close()
