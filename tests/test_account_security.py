"""The outside scan's account-security findings (issue 15): feed addresses end with every account-security
event, a hostile `next` after sign-in, no PHI in the session cookie, equal work on every failed sign-in,
and a per-address limit on sign-in attempts."""
import json
import re
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from opsmgr.audit.models import AuditEvent
from opsmgr.auth import service
from opsmgr.auth.models import SignInFailure, StaffUser
from opsmgr.auth.passwords import spend_verify_time
from opsmgr.auth.views import LOGIN_FAILED
from opsmgr.core.flashes import PUBLIC_MESSAGES, PendingFlash
from opsmgr.core.web import safe_next
from opsmgr.extensions import db
from opsmgr.feeds import service as feeds
from opsmgr.rules.access import throttle_address
from tests.conftest import PASSWORD, sign_in
from tests.factories import FACTORY_ACTOR

NEW_PASSWORD = "a brand new passphrase 7"


def audit_details(app, action):
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent.details).where(AuditEvent.action == action).order_by(AuditEvent.id))
        return [json.loads(row or "{}") for row in rows]


def issue_token(client):
    html = client.submit("/account/calendar/token").get_data(as_text=True)
    return re.search(r"clinic\.ics\?token=([A-Za-z0-9_-]+)", html).group(1)


# --- 1. feed addresses ----------------------------------------------------------------------------


def test_every_account_security_event_ends_the_owners_feed_address(app, login_as, clock):
    nurse, admin = login_as("nurse"), login_as("admin")
    staff = f"/admin/staff/{nurse.user.id}"
    events = [
        ("role_changed", lambda: admin.submit(f"{staff}/role", {"role": "physician"})),
        ("password_reset", lambda: admin.submit(f"{staff}/password", {"password": NEW_PASSWORD,
                                                                       "confirm": NEW_PASSWORD})),
        ("password_changed", lambda: own_password_change(app, nurse.user.username)),
        ("ended_by_admin", lambda: admin.submit(f"{staff}/end-sessions")),
        ("deactivated", lambda: admin.submit(f"{staff}/deactivate")),
    ]
    feed = app.test_client()
    for reason, event in events:
        with app.app_context():
            token = feeds.issue_token(db.session.get(StaffUser, nurse.user.id), actor=FACTORY_ACTOR, now=clock())
            db.session.commit()
        assert feed.get(f"/calendar/clinic.ics?token={token}").status_code == 200
        assert event().status_code == 302
        assert feed.get(f"/calendar/clinic.ics?token={token}").status_code == 404, reason
    assert [d["reason"] for d in audit_details(app, "calendar.token_revoked")] == [r for r, _ in events]


def own_password_change(app, username):
    client = app.test_client()
    sign_in(client, username, NEW_PASSWORD)
    return client.submit("/account/password", {"current_password": NEW_PASSWORD, "password": NEW_PASSWORD + "!",
                                               "confirm": NEW_PASSWORD + "!"})


def test_a_feed_checks_its_owners_role_today(app, login_as):
    nurse = login_as("nurse")
    token = issue_token(nurse)
    with app.app_context():  # a role changed behind the services' back: the feed still asks
        db.session.get(StaffUser, nurse.user.id).role = "admin"
        db.session.commit()
    assert app.test_client().get(f"/calendar/clinic.ics?token={token}").status_code == 404


# --- 2. a hostile `next` ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "/today\r\nSet-Cookie: planted=1", "/today\nX: y", "/\t/evil.example", "/today\x00", "/\x7f", "/\x85",
    "//evil.example", "///evil.example", "https://evil.example/", "javascript:alert(1)", "/\\evil.example",
    "evil.example", "", None,
])
def test_safe_next_refuses_control_characters_and_other_sites(target):
    assert safe_next(target) is None


def test_safe_next_keeps_a_same_site_path():
    assert safe_next("/patients/3?tab=notes#vitals") == "/patients/3?tab=notes#vitals"


def test_a_sign_in_whose_next_holds_cr_lf_lands_on_the_home_page(client, make_user):
    user = make_user("nurse")
    for target in ("/today%0d%0aSet-Cookie:%20planted=1", "/%09/evil.example", "/%C3%A9t%C3%A9"):
        response = client.submit(f"/login?next={target}", {"username": user.username, "password": PASSWORD})
        assert response.status_code == 302
        assert response.headers["Location"] in {"/", "/%C3%A9t%C3%A9"}, response.headers["Location"]
        client.logout()


# --- 3. no PHI in the session cookie ----------------------------------------------------------------


NEW_PATIENT = {
    "mrn": "KC-77001", "legal_name": "Philippa Cookiejar", "preferred_name": "Pip", "date_of_birth": "1979-06-21",
    "sex_at_birth": "female", "pregnancy_possible": "no", "phone": "", "email": "", "reminder_channel": "none",
    "contact_consent_on": "", "escort_name": "", "escort_phone": "", "indication": "trd", "indication_detail": "",
    "failed_trials": "2", "allergies": "",
}
#: Everything the Flask session cookie may hold: Flask-Login's token and markers, the CSRF secret, the key
#: to the flashed messages waiting on the server, the numbers of fixed public ones.
COOKIE_KEYS = {"_user_id", "_fresh", "_id", "csrf_token", "_flash_key", "_flash_public"}


def cookie_contents(app, client):
    value = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    return app.session_interface.get_signing_serializer(app).loads(value)


def test_a_flash_naming_a_patient_stays_on_the_server(app, login_as):
    coordinator = login_as("coordinator")
    response = coordinator.submit("/patients/new", NEW_PATIENT)
    assert response.status_code == 302
    cookie = cookie_contents(app, coordinator)
    text = json.dumps(cookie)
    for phi in ("Cookiejar", "Philippa", "KC-77001", "1979-06-21", "06/21/1979"):
        assert phi not in text
    assert set(cookie) <= COOKIE_KEYS, set(cookie) - COOKIE_KEYS
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PendingFlash)) == 1
    page = coordinator.get(response.headers["Location"]).get_data(as_text=True)
    assert "Philippa Cookiejar (Pip) is registered." in page
    assert "_flash_key" not in cookie_contents(app, coordinator), "shown once, then forgotten"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PendingFlash)) == 0
    assert "is registered." not in coordinator.get("/patients").get_data(as_text=True)


def test_a_signed_out_browser_gets_its_fixed_messages_by_number_and_no_row(app, login_as):
    nurse = login_as("nurse")
    nurse.logout()
    nurse.get("/today")  # "Please sign in to continue."
    cookie = cookie_contents(app, nurse)
    assert set(cookie) == {"_flash_public"}
    assert [PUBLIC_MESSAGES[n][1] for n in cookie["_flash_public"]] == ["You have signed out.",
                                                                        "Please sign in to continue."]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PendingFlash)) == 0
    page = nurse.get("/login").get_data(as_text=True)
    assert "You have signed out." in page and "Please sign in to continue." in page


# --- 4. equal work on every failed sign-in; a limit per client address ------------------------------


@pytest.fixture
def hashing(monkeypatch):
    """Counts of argon2 verifications and hashings."""
    counts = {"verify": 0, "hash": 0}
    verify, hash_ = PasswordHasher.verify, PasswordHasher.hash

    def counting_verify(self, *args, **kwargs):
        counts["verify"] += 1
        return verify(self, *args, **kwargs)

    def counting_hash(self, *args, **kwargs):
        counts["hash"] += 1
        return hash_(self, *args, **kwargs)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    monkeypatch.setattr(PasswordHasher, "hash", counting_hash)
    return counts


def test_every_failing_branch_does_the_same_hashing_work(app, make_user, clock, hashing):
    active, gone = make_user("nurse"), make_user("nurse")
    now = clock()
    cases = {
        "unknown_user": ("nobody-here", PASSWORD, "198.51.100.1"),
        "wrong_password": (active.username, "not the password at all", "198.51.100.1"),
        "deactivated": (gone.username, PASSWORD, "198.51.100.1"),
        "locked": (active.username, PASSWORD, "198.51.100.1"),
        "address_limit": (active.username, PASSWORD, "198.51.100.2"),
    }
    with app.app_context():
        spend_verify_time()  # the throwaway hash is made once per process, not per attempt
        db.session.get(StaffUser, gone.id).is_active_account = False
        db.session.add(SignInFailure(address="198.51.100.2", failed_at=now))
        db.session.commit()
        work = {}
        for reason, (username, password, ip) in cases.items():
            if reason == "locked":
                db.session.get(StaffUser, active.id).locked_until = now + timedelta(minutes=5)
            app.config["SIGN_IN_ADDRESS_LIMIT"] = 1 if reason == "address_limit" else 20
            before = dict(hashing)
            assert not service.authenticate(username, password, ip=ip, now=now).ok
            work[reason] = (hashing["verify"] - before["verify"], hashing["hash"] - before["hash"])
            db.session.commit()
    assert work == dict.fromkeys(cases, (1, 0))
    assert [d["reason"] for d in audit_details(app, "login.failed")][-5:] == list(cases)


def test_an_address_over_its_limit_is_refused_across_workers_and_restarts(make_app, make_user, clock):
    user = make_user("nurse")
    worker_a, worker_b = make_app(SIGN_IN_ADDRESS_LIMIT=4), make_app(SIGN_IN_ADDRESS_LIMIT=4)
    attacker, other = {"REMOTE_ADDR": "203.0.113.9"}, {"REMOTE_ADDR": "203.0.113.10"}

    def sign_in(app, password, environ, username=user.username):
        return app.test_client().submit("/login", {"username": username, "password": password},
                                        environ_base=environ)

    for worker, name in ((worker_a, "nobody"), (worker_b, user.username), (worker_a, "someone"),
                         (worker_b, user.username)):
        assert LOGIN_FAILED in sign_in(worker, "wrong guess number", attacker, name).get_data(as_text=True)
    restarted = make_app(SIGN_IN_ADDRESS_LIMIT=4)
    refused = sign_in(restarted, PASSWORD, attacker)
    assert refused.status_code == 200 and LOGIN_FAILED in refused.get_data(as_text=True), "even the right password"
    for _ in range(5):  # an address over its limit cannot lock anyone out
        sign_in(restarted, "wrong guess again", attacker)
    with restarted.app_context():
        assert db.session.get(StaffUser, user.id).failed_login_count == 2
        assert db.session.scalar(select(func.count()).select_from(SignInFailure)) == 4
    assert sign_in(restarted, PASSWORD, other).status_code == 302, "the owner elsewhere is not locked out"
    clock.advance(minutes=15, seconds=1)
    assert sign_in(restarted, PASSWORD, attacker).status_code == 302, "the window slides"
    reasons = [d["reason"] for d in audit_details(restarted, "login.failed")]
    assert reasons.count("address_limit") == 6


def test_ipv6_clients_are_counted_by_their_64_network():
    assert throttle_address("2001:db8:1:2:aaaa::1") == throttle_address("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert throttle_address("::ffff:192.0.2.7") == throttle_address("192.0.2.7") == "192.0.2.7"
    assert throttle_address(None) == "unknown"


@pytest.mark.long
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_brute_force_gets_at_most_a_hundred_guesses_an_hour_at_one_account(app, make_user, clock, long_run):
    """Reliability row 10: 200 wrong passwords at one account from rotating addresses over an hour, and
    200 at 200 usernames from one address (`make test`: 60 and 30): how many reach a password check."""
    at_account, at_names = (200, 200) if long_run else (60, 30)
    user = make_user("nurse")
    with app.app_context():
        for attempt in range(at_account):
            service.authenticate(user.username, f"guess {attempt}", ip=f"10.0.{attempt // 250}.{attempt % 250}",
                                 now=clock.advance(seconds=3600 // at_account))
            db.session.commit()
        for attempt in range(at_names):
            service.authenticate(f"user{attempt}", "guess", ip="192.0.2.50", now=clock.advance(seconds=1))
            db.session.commit()
    reasons = [d["reason"] for d in audit_details(app, "login.failed")]
    checked_at_the_account = reasons[:at_account].count("wrong_password")
    assert checked_at_the_account <= 25  # 5 per 15-minute lock: at most 25 in any hour, well under 100
    assert reasons[at_account:] == ["unknown_user"] * 20 + ["address_limit"] * (at_names - 20)
