"""Chair tablets (issue 14 §6): idle locks an enrolled tablet's screen; the same person resumes with a PIN,
five wrong PINs or "Not you?" end the session; desktops keep the idle sign-out."""
import hashlib
import json

import pytest
from sqlalchemy import select

from opsmgr.audit.models import AuditEvent
from opsmgr.auth import service
from opsmgr.auth.models import ChairTablet, StaffSession, TabletSession
from opsmgr.extensions import db
from tests.conftest import PASSWORD

SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
PIN = "2580"


def actions(app, prefix=("session.", "pin.", "tablet.")):
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(e.action, e.outcome, json.loads(e.details or "{}")) for e in events if e.action.startswith(prefix)]


@pytest.fixture
def tablet(app, make_user):
    """A test client whose cookie jar is an enrolled chair tablet (an admin enrolled it there, signed out)."""
    admin = make_user("admin")
    client = app.test_client()
    client.login(admin.username, PASSWORD)
    response = client.submit("/admin/tablets/enrol", {"name": "Chair 3 tablet"})
    assert response.status_code == 302, response.get_data(as_text=True)
    client.enrol_response, client.enrol_admin = response, admin
    client.logout()
    return client


@pytest.fixture
def nurse(app, make_user):
    """A nurse with a PIN, set on their account page."""
    user = make_user("nurse", full_name="Nora Chairside")
    client = app.test_client()
    client.login(user.username, PASSWORD)
    response = client.submit("/account/pin", {"password": PASSWORD, "pin": PIN, "confirm": PIN})
    assert response.status_code == 302, response.get_data(as_text=True)
    client.logout()
    return user


def locked_page(response):
    html = response.get_data(as_text=True)
    return response.status_code == 401 and "Locked" in html and 'action="/unlock"' in html


def test_enrolment_sets_a_long_lived_httponly_cookie_whose_hash_alone_is_stored(app, tablet):
    cookie = tablet.enrol_response.headers["Set-Cookie"]
    assert cookie.startswith("opsmgr-tablet=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie and "Max-Age=34560000" in cookie  # OPSMGR_HTTPS off in tests
    token = cookie.split(";")[0].split("=", 1)[1]
    with app.app_context():
        stored = db.session.scalar(select(ChairTablet))
        assert stored.name == "Chair 3 tablet" and stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert [a[0] for a in actions(app)] == ["tablet.enrolled"]
    admin = tablet.enrol_admin
    tablet.login(admin.username, PASSWORD)
    tablet.submit("/admin/tablets/enrol", {"name": "Chair 4 tablet"})  # enrolled again: the old one is revoked
    with app.app_context():
        rows = db.session.scalars(select(ChairTablet).order_by(ChairTablet.id))
        assert [(t.name, t.revoked_at is None) for t in rows] == [("Chair 3 tablet", False), ("Chair 4 tablet", True)]
    # The admin's own session there was bound to the old enrolment: it ended with it.
    assert tablet.get("/admin/tablets/").headers["Location"].startswith("/login")
    tablet.login(admin.username, PASSWORD)
    assert "Chair 4 tablet <span class=\"badge text-bg-info\">This device" in tablet.get("/admin/tablets/").get_data(
        as_text=True)


def test_idle_locks_the_tablet_and_the_same_nurse_resumes_on_the_same_page(app, clock, tablet, nurse):
    tablet.login(nurse.username, PASSWORD)
    assert tablet.get("/patients/").status_code == 200
    clock.advance(minutes=5)
    assert tablet.get("/patients/").status_code == 200, "still open at exactly the lock time"
    clock.advance(minutes=5, seconds=1)
    page = tablet.get("/patients/")
    assert locked_page(page)
    html = page.get_data(as_text=True)
    assert "Nora Chairside" in html and "Patients" not in html and "Sign out" not in html
    assert 'value="/patients/"' in html, "the PIN brings the nurse back to this page"
    # Nothing else opens while locked: pages, posts and the page scripts' JSON.
    assert locked_page(tablet.get("/today"))
    assert locked_page(tablet.submit("/account/pin", {"password": PASSWORD, "pin": "1357", "confirm": "1357"}))
    ping = tablet.get("/session/ping", headers={"Accept": "application/json"})
    assert ping.status_code == 401 and ping.json["status"] == "locked"
    # A locked tablet session outlives the desktop idle limit; the sweep leaves it to the PIN.
    clock.advance(minutes=30)
    with app.app_context():
        service.expire_idle_sessions(now=clock())
        db.session.commit()
    resumed = tablet.submit("/unlock", {"pin": PIN, "next": "/patients/"})
    assert resumed.status_code == 302 and resumed.headers["Location"] == "/patients/"
    assert tablet.get("/patients/").status_code == 200
    assert [(a[0], a[2].get("reason")) for a in actions(app) if a[0] != "pin.changed"][1:] == [
        ("session.locked", "idle"), ("session.unlocked", None)]


@SQLITE
def test_five_wrong_pins_end_the_session_and_a_full_sign_in_follows(app, tablet, nurse, make_user):
    tablet.login(nurse.username, PASSWORD)
    tablet.submit("/lock", {"next": "/today"})
    other = make_user("nurse")  # another nurse's PIN is just a wrong PIN here
    for tries_left in (4, 3, 2, 1):
        refused = tablet.submit("/unlock", {"pin": "9630", "next": "/today"})
        assert locked_page(refused)
        assert f"{tries_left} tr" in refused.get_data(as_text=True)
    ended = tablet.submit("/unlock", {"pin": PIN[::-1], "next": "/today"})
    assert ended.status_code == 302 and ended.headers["Location"].startswith("/login")
    assert tablet.get("/today").headers["Location"].startswith("/login")
    with app.app_context():
        assert db.session.scalar(select(StaffSession.end_reason).where(StaffSession.user_id == nurse.id)
                                 .order_by(StaffSession.id.desc())) == "pin_lockout"
    trail = [(a[0], a[1]) for a in actions(app)]
    assert trail.count(("session.unlock_failed", "denied")) == 5 and trail[-1] == ("session.pin_lockout", "denied")
    assert tablet.login(other.username, PASSWORD).status_code == 302, "anyone signs in fully"


@SQLITE
def test_not_you_ends_the_locked_session_for_a_full_sign_in(app, clock, tablet, nurse, make_user):
    tablet.login(nurse.username, PASSWORD)
    clock.advance(minutes=6)
    assert locked_page(tablet.get("/today"))
    assert tablet.submit("/logout").headers["Location"].startswith("/login")
    colleague = make_user("nurse")
    tablet.login(colleague.username, PASSWORD)
    assert tablet.get("/today").status_code == 200


@SQLITE
def test_without_a_pin_the_lock_signs_out_and_a_desktop_keeps_its_idle_limit(app, clock, tablet, make_user):
    user = make_user("nurse")
    desktop = app.test_client()
    desktop.login(user.username, PASSWORD)
    tablet.login(user.username, PASSWORD)
    clock.advance(minutes=6)
    assert tablet.get("/today").headers["Location"].startswith("/login"), "no PIN: a lock is a full sign-in"
    assert desktop.get("/today").status_code == 200
    clock.advance(minutes=15, seconds=1)
    assert desktop.get("/today").headers["Location"].startswith("/login")
    assert ("session.locked", "ok", {"reason": "idle", "pin_set": False, "signed_out": True}) in actions(app)


@SQLITE
def test_the_absolute_limit_ends_a_locked_session(app, clock, tablet, nurse):
    tablet.login(nurse.username, PASSWORD)
    tablet.submit("/lock", {"next": "/today"})
    clock.advance(hours=12, seconds=1)
    assert tablet.submit("/unlock", {"pin": PIN, "next": "/today"}).headers["Location"].startswith("/login")


@SQLITE
def test_the_session_is_bound_to_the_tablet_and_revoking_it_ends_its_sessions(app, make_user, tablet, nurse):
    tablet.login(nurse.username, PASSWORD)
    cookies = {cookie.key: cookie.value for cookie in tablet._cookies.values()}
    elsewhere = app.test_client()
    elsewhere.set_cookie("opsmgr", cookies["opsmgr"])  # the session cookie without the tablet's
    assert elsewhere.get("/today").headers["Location"].startswith("/login")

    tablet.login(nurse.username, PASSWORD)
    with app.app_context():
        tablet_id = db.session.scalar(select(ChairTablet.id))
        assert db.session.scalar(select(TabletSession).order_by(TabletSession.staff_session_id.desc())) is not None
    admin = make_user("admin")
    desk = app.test_client()
    desk.login(admin.username, PASSWORD)
    assert desk.submit(f"/admin/tablets/{tablet_id}/revoke").status_code == 302
    assert tablet.get("/today").headers["Location"].startswith("/login")
    assert actions(app)[-1][0] == "tablet.revoked" and actions(app)[-1][2]["sessions_ended"] == 1


@SQLITE
def test_the_pin_page_refuses_a_wrong_password_and_a_weak_pin_at_their_fields(app, login_as):
    client = login_as("nurse")
    wrong = client.submit("/account/pin", {"password": "not it at all", "pin": PIN, "confirm": PIN})
    assert wrong.status_code == 200 and "The password is not correct." in wrong.get_data(as_text=True)
    weak = client.submit("/account/pin", {"password": PASSWORD, "pin": "1234", "confirm": "1234"})
    assert "counting run" in weak.get_data(as_text=True)
    short = client.submit("/account/pin", {"password": PASSWORD, "pin": "12a", "confirm": "12a"})
    assert "Use 4 to 8 digits." in short.get_data(as_text=True)
    assert [a[0] for a in actions(app, ("pin.", "reauth."))] == ["reauth.failed"]
