"""Sign-in, lockout, server-side sessions, timeouts, passwords."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from opsmgr.audit.models import AuditEvent
from opsmgr.auth.models import StaffSession, StaffUser
from opsmgr.auth.views import LOGIN_FAILED
from opsmgr.extensions import db
from tests.conftest import PASSWORD


@pytest.fixture
def login_as(login_through_form):
    """Here, where sign-in is the subject, every sign-in goes through the /login form."""
    return login_through_form


def actions(app):
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(e.action, e.outcome, e.username) for e in events]


def reasons(app, action="login.failed"):
    import json

    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        return [json.loads(row.details).get("reason") for row in rows]


def test_login_succeeds_and_lands_on_the_role_home(app, client, make_user):
    user = make_user("nurse")
    response = client.login(user.username, PASSWORD)
    assert response.status_code == 302
    assert client.get("/").headers["Location"].endswith("/today")
    page = client.get("/today")
    assert page.status_code == 200
    assert "Today's chairs" in page.get_data(as_text=True)
    assert ("login.succeeded", "ok", user.username) in actions(app)


def test_username_is_case_insensitive(client, make_user):
    make_user("nurse", username="casey")
    assert client.login("CASEY", PASSWORD).status_code == 302


@pytest.mark.parametrize("username,password,reason", [
    ("nobody", PASSWORD, "unknown_user"),
    ("nurse-x", "wrong password entirely", "wrong_password"),
])
def test_failed_login_gives_one_generic_message_and_is_audited(app, client, make_user, username, password, reason):
    make_user("nurse", username="nurse-x")
    response = client.login(username, password)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert LOGIN_FAILED in html
    assert f'value="{username}"' in html, "the username typed is kept"
    assert reasons(app) == [reason]


def test_five_failures_lock_the_account_for_fifteen_minutes_then_release(app, client, make_user, clock):
    user = make_user("nurse")
    for _ in range(5):
        assert LOGIN_FAILED in client.login(user.username, "not the password at all").get_data(as_text=True)
    locked = client.login(user.username, PASSWORD)
    assert LOGIN_FAILED in locked.get_data(as_text=True), "the right password is refused while locked"
    assert reasons(app)[-1] == "locked"
    assert [a for a, *_ in actions(app)].count("account.locked") == 1
    clock.advance(minutes=14, seconds=59)
    assert LOGIN_FAILED in client.login(user.username, PASSWORD).get_data(as_text=True)
    clock.advance(seconds=1)
    assert client.login(user.username, PASSWORD).status_code == 302
    assert "account.unlocked" in [a for a, *_ in actions(app)]


def test_four_failures_do_not_lock_and_success_resets_the_count(client, make_user, app):
    user = make_user("nurse")
    for _ in range(4):
        client.login(user.username, "not the password at all")
    assert client.login(user.username, PASSWORD).status_code == 302
    with app.app_context():
        assert db.session.get(StaffUser, user.id).failed_login_count == 0


def test_lockout_is_counted_in_the_database_across_workers(make_app, make_user):
    user = make_user("nurse")
    worker_a, worker_b = make_app(), make_app()
    for worker in (worker_a, worker_b, worker_a, worker_b, worker_a):
        worker.test_client().login(user.username, "not the password at all")
    restarted = make_app()
    response = restarted.test_client().login(user.username, PASSWORD)
    assert LOGIN_FAILED in response.get_data(as_text=True)


def test_login_issues_a_new_session_identifier_each_time(app, make_user):
    user = make_user("nurse")
    client = app.test_client()
    client.login(user.username, PASSWORD)
    first = client.get_cookie("opsmgr").value
    with app.app_context():
        first_rows = db.session.scalars(select(StaffSession.token_hash)).all()
    client.logout()
    client.login(user.username, PASSWORD)
    second = client.get_cookie("opsmgr").value
    with app.app_context():
        second_rows = db.session.scalars(select(StaffSession.token_hash)).all()
    assert first != second
    assert len(set(second_rows)) == 2 and set(first_rows) < set(second_rows)


def test_pre_login_session_is_not_kept(app, make_user):
    user = make_user("nurse")
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["planted"] = "attacker"
    client.login(user.username, PASSWORD)
    with client.session_transaction() as sess:
        assert "planted" not in sess


def test_cookie_replayed_after_logout_gets_the_login_page(app, make_user):
    user = make_user("nurse")
    client = app.test_client()
    client.login(user.username, PASSWORD)
    stolen = client.get_cookie("opsmgr").value
    client.logout()
    thief = app.test_client()
    thief.set_cookie("opsmgr", stolen)
    response = thief.get("/today")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert ("logout", "ok", user.username) in actions(app)


def test_cookie_replayed_after_deactivation_gets_the_login_page(app, make_user, login_as):
    victim = login_as("nurse")
    admin = login_as("admin")
    assert victim.get("/today").status_code == 200
    assert admin.submit(f"/admin/staff/{victim.user.id}/deactivate").status_code == 302
    response = victim.get("/today")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert LOGIN_FAILED in app.test_client().login(victim.user.username, PASSWORD).get_data(as_text=True)


def test_idle_timeout_ends_the_session_after_fifteen_minutes(app, login_as, clock):
    client = login_as("nurse")
    clock.advance(minutes=15)
    assert client.get("/today").status_code == 200, "exactly at the limit still counts as active"
    clock.advance(minutes=15, seconds=1)
    response = client.get("/today")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert ("session.timeout", "ok", client.user.username) in actions(app)
    follow = client.get(response.headers["Location"])
    assert b"timed out" in follow.data


def test_the_ping_pages_ask_before_posting_says_live_or_signed_out_in_json(app, login_as, clock):
    client = login_as("nurse")
    live = client.get("/session/ping", headers={"Accept": "application/json"})
    assert live.status_code == 200 and live.json == {"status": "ok"}
    clock.advance(minutes=15, seconds=1)
    ended = client.get("/session/ping", headers={"Accept": "application/json"})
    assert ended.status_code == 401 and ended.json["status"] == "signed_out"
    assert client.get("/session/ping").status_code == 302, "a browser navigating there gets the login page"


def test_activity_keeps_the_session_alive_until_the_absolute_limit(app, login_as, clock):
    client = login_as("nurse")
    for _ in range(12 * 6):
        clock.advance(minutes=10)
        assert client.get("/today").status_code == 200
    clock.advance(seconds=1)
    response = client.get("/today")
    assert response.status_code == 302
    assert reasons(app, "session.timeout") == [None]
    with app.app_context():
        assert db.session.scalar(select(StaffSession.end_reason)) == "absolute"


def test_timeouts_are_configurable(make_app, make_user, clock):
    app = make_app(IDLE_TIMEOUT=timedelta(minutes=5))
    user = make_user("nurse")
    client = app.test_client()
    client.login(user.username, PASSWORD)
    clock.advance(minutes=5, seconds=1)
    assert client.get("/today").status_code == 302


def test_no_remember_me_cookie_and_session_cookie_flags(make_app, make_user):
    app = make_app(HTTPS=True, SESSION_COOKIE_SECURE=True, SESSION_COOKIE_NAME="__Host-opsmgr")
    user = make_user("nurse")
    client = app.test_client()
    response = client.login(user.username, PASSWORD)
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 1
    cookie = cookies[0]
    assert cookie.startswith("__Host-opsmgr=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "Domain" not in cookie and "remember" not in cookie.lower()
    assert "max-age=31536000" in client.get("/today").headers["Strict-Transport-Security"]


def test_plain_http_cookie_is_httponly_lax_and_not_secure(client, make_user):
    user = make_user("nurse")
    cookie = client.login(user.username, PASSWORD).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_open_redirect_after_login_is_refused(client, make_user):
    user = make_user("nurse")
    response = client.submit("/login?next=https://evil.example/", {"username": user.username, "password": PASSWORD})
    assert response.headers["Location"] == "/"
    client.logout()
    response = client.submit("/login?next=/today", {"username": user.username, "password": PASSWORD})
    assert response.headers["Location"] == "/today"


def test_password_is_stored_as_argon2id(app, make_user):
    user = make_user("nurse")
    with app.app_context():
        assert db.session.get(StaffUser, user.id).password_hash.startswith("$argon2id$")


@pytest.mark.parametrize("new_password,accepted", [
    ("elevenchars", False),
    ("twelve chars", True),
    ("Mein Passwort für die Klinik ist sehr lang " * 2, True),
    ("p" * 64, False),
    ("Grüße aus Köln und Zürich – ünïcödé ✓ " * 3, True),
    ("123456789012", False),
    ("qwertyuiopasdfgh", False),
    ("            ", False),
])
def test_password_change_applies_the_password_rules(login_as, new_password, accepted):
    client = login_as("nurse")
    response = client.submit("/account/password", {"current_password": PASSWORD, "password": new_password,
                                                   "confirm": new_password})
    assert (response.status_code == 302) is accepted, response.get_data(as_text=True)[-2000:]
    if accepted:
        client.logout()
        assert client.login(client.user.username, new_password).status_code == 302


def test_password_change_needs_the_current_password_and_ends_other_sessions(app, login_as):
    laptop = login_as("nurse")
    tablet = app.test_client()
    tablet.login(laptop.user.username, PASSWORD)
    new = {"password": "a brand new passphrase", "confirm": "a brand new passphrase"}
    wrong = laptop.submit("/account/password", {"current_password": "not it at all", **new})
    assert b"current password is not correct" in wrong.data
    ok = laptop.submit("/account/password", {"current_password": PASSWORD, "password": "a brand new passphrase",
                                             "confirm": "a brand new passphrase"})
    assert ok.status_code == 302
    assert laptop.get("/today").status_code == 200
    assert tablet.get("/today").status_code == 302
    assert ("password.changed", "ok", laptop.user.username) in actions(app)


def test_reset_password_forces_a_change_at_next_login(app, login_as):
    nurse = login_as("nurse")
    admin = login_as("admin")
    temporary = "temporary passphrase 42"
    response = admin.submit(f"/admin/staff/{nurse.user.id}/password", {"password": temporary, "confirm": temporary})
    assert response.status_code == 302
    assert nurse.get("/today").status_code == 302, "the reset signed them out"
    fresh = app.test_client()
    fresh.login(nurse.user.username, temporary)
    assert fresh.get("/today").headers["Location"].endswith("/account/password")
    fresh.submit("/account/password", {"current_password": temporary, "password": "my own passphrase here",
                                       "confirm": "my own passphrase here"})
    assert fresh.get("/today").status_code == 200
    assert ("password.reset", "ok", admin.user.username) in actions(app)


def test_logout_needs_post(login_as):
    client = login_as("nurse")
    assert client.get("/logout").status_code == 405
    assert client.get("/today").status_code == 200


def test_wrong_passwords_at_a_re_entry_prompt_count_toward_the_lockout(app, make_user, clock):
    from opsmgr.auth.service import reauthenticate

    user = make_user("physician")
    with app.app_context():
        physician = db.session.get(StaffUser, user.id)
        for _ in range(4):
            assert reauthenticate(physician, "not my password at all", ip=None, now=clock(), purpose="test") is False
        assert reauthenticate(physician, PASSWORD, ip=None, now=clock(), purpose="test") is True
        assert physician.failed_login_count == 0, "a right password resets the count"
        for _ in range(5):
            reauthenticate(physician, "not my password at all", ip=None, now=clock(), purpose="test")
        assert reauthenticate(physician, PASSWORD, ip=None, now=clock(), purpose="test") is False, "locked"
        db.session.commit()
    assert LOGIN_FAILED in app.test_client().login(user.username, PASSWORD).get_data(as_text=True)
    assert [a for a, *_ in actions(app)].count("reauth.failed") == 10
