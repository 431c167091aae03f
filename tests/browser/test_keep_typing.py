"""An ended sign-in never costs what was typed: the page asks before it posts, keeps the values in
the tab, and puts them back into the same form after signing in again (here: the checklist)."""
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from opsmgr.auth.models import StaffSession, StaffUser
from opsmgr.checklist.models import ChecklistResponse
from opsmgr.core.clock import system_now
from opsmgr.extensions import db
from opsmgr.sessions.models import InfusionSession
from tests.browser.notes_fixtures import fill_sign_in, new_person, serve_with_app, sign_in

pytestmark = pytest.mark.browser
INTENTION = "To get through December without the fog — «in my words»."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve_with_app(tmp_path_factory)


def checked_in_session(server, name):
    """A session moved to now and checked in: a checklist is saved only on the day its session is booked for."""
    session_id = server.discharged_session(name)
    with server.app.app_context():
        session = db.session.get(InfusionSession, session_id)
        length = session.ends_at - session.starts_at
        session.starts_at = system_now().replace(second=0, microsecond=0)
        session.ends_at = session.starts_at + length
        session.status = "checked_in"
        db.session.commit()
    return session_id


def end_the_sign_in(server, username):
    """As after 16 idle minutes (the limit is 15)."""
    with server.app.app_context():
        user_id = db.session.scalar(select(StaffUser.id).where(StaffUser.username == username))
        db.session.execute(update(StaffSession).where(StaffSession.user_id == user_id, StaffSession.ended_at.is_(None))
                           .values(last_seen_at=system_now() - timedelta(minutes=16)))
        db.session.commit()


def test_checklist_typing_survives_an_idle_sign_out_and_is_saved_after_signing_in(server, browser):
    session_id = checked_in_session(server, "Kim Keeptyping")
    url = f"{server.url}/sessions/{session_id}/checklist"
    context = new_person(browser)
    try:
        nurse = context.new_page()
        sign_in(nurse, server.url, "nurse")
        nurse.goto(url)
        nurse.get_by_label("Systolic blood pressure (mmHg)").fill("150")
        nurse.get_by_label("The patient's intention for today, in their own words").fill(INTENTION)

        end_the_sign_in(server, "nurse")
        nurse.get_by_role("button", name="Save").first.click()

        expect(nurse).to_have_url(re.compile(r"/login\?next="))
        with server.app.app_context():
            assert db.session.scalar(select(ChecklistResponse).where(ChecklistResponse.session_id == session_id)) \
                is None, "nothing was posted while signed out"
        fill_sign_in(nurse, "nurse")
        expect(nurse).to_have_url(url)
        expect(nurse.get_by_text("What you typed has been put back")).to_be_visible()
        expect(nurse.get_by_label("Systolic blood pressure (mmHg)")).to_have_value("150")
        expect(nurse.get_by_label("The patient's intention for today, in their own words")).to_have_value(INTENTION)

        nurse.get_by_role("button", name="Save").first.click()
        expect(nurse.get_by_text("Checklist saved.")).to_be_visible()
        with server.app.app_context():
            response = db.session.scalar(select(ChecklistResponse).where(ChecklistResponse.session_id == session_id))
            assert (response.systolic, response.intention) == (150, INTENTION)
        nurse.reload()
        expect(nurse.get_by_text("What you typed has been put back")).to_have_count(0)
    finally:
        context.close()
