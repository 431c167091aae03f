"""Helpers for the session-note browser tests: a live server that also hands out its app, discharged
sessions made straight in the database, sign-in, and form posts with the page's CSRF token.

The shared ``live_server`` fixture yields only the URL; these tests need the app to make rows, so each
test module serves its own copy (``serve_with_app``) through the same ``migrated_app``: the demo
staff, every day open with three chairs, werkzeug in a thread.
"""
import itertools
from dataclasses import dataclass
from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from opsmgr.auth.models import StaffUser
from opsmgr.checklist.models import ChecklistResponse
from opsmgr.core.clock import system_now
from opsmgr.extensions import db
from opsmgr.sessions.models import InfusionSession
from tests.browser.conftest import DEMO_PASSWORD, TIMEOUT_MS, migrated_app, seed_staff_and_three_chairs, serving
from tests.factories import create_patient, order_series

_days = itertools.count(1)


@dataclass(frozen=True)
class NoteServer:
    app: object
    url: str

    def note_url(self, session_id, action=""):
        return f"{self.url}/sessions/{session_id}/note" + (f"/{action}" if action else "")

    def discharged_session(self, name, intention=""):
        """A new patient with a one-session series, that session moved straight to 'discharged'.

        Each call books a different day, so sessions never compete for a chair. ``intention`` goes
        into the session's checklist, from where a new note carries it over.
        """
        with self.app.app_context():
            now = system_now()
            physician_id = db.session.scalar(select(StaffUser.id).where(StaffUser.username == "physician"))
            patient = create_patient(now=now, legal_name=name)
            series = order_series(patient_id=patient.id, now=now, start_on=now.date() + timedelta(days=next(_days)),
                                  planned_count=1, ordered_by_id=physician_id)
            session = db.session.get(InfusionSession, series.sessions[0].id)
            session.status, session.status_changed_at = "discharged", now
            if intention:
                db.session.add(ChecklistResponse(session_id=session.id, intention=intention, updated_at=now))
            db.session.commit()
            return session.id


def serve_with_app(tmp_path_factory):
    """Yield a NoteServer: the app on a migrated, seeded SQLite file and its URL."""
    app = migrated_app(tmp_path_factory.mktemp("notes-browser"), "notes", seed_staff_and_three_chairs)
    with serving(app) as url:
        yield NoteServer(app, url)


def new_person(browser, viewport=None, **options):
    """A browser context of its own (another tablet), with the suite's timeout."""
    ctx = browser.new_context(viewport=viewport or {"width": 1024, "height": 768}, **options)
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx


def sign_in(page, base_url, username, next_path=None):
    page.goto(f"{base_url}/login" + (f"?next={next_path}" if next_path else ""))
    fill_sign_in(page, username)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def fill_sign_in(page, username):
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def csrf_token(page):
    """The CSRF token of the signed-in page (every page has one in its sign-out form)."""
    return page.locator("input[name=csrf_token]").first.get_attribute("value")


def post_form(page, url, data):
    """A form post with the context's cookies and the page's CSRF token; redirects are not followed."""
    return page.request.post(url, form={"csrf_token": csrf_token(page), **data}, max_redirects=0)
