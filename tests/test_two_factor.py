"""Two-factor sign-in: TOTP windows, replay, recovery codes, the policy per role, signing steps, reset."""
import json
import re
from datetime import UTC, datetime

import pyotp
import pytest
from sqlalchemy import select

from opsmgr.audit.models import AuditEvent
from opsmgr.auth.models import StaffSession, StaffUser
from opsmgr.auth.service import actor_for
from opsmgr.auth.views import LOGIN_FAILED
from opsmgr.extensions import db
from opsmgr.twofactor import service
from opsmgr.twofactor.models import RecoveryCode, TwoFactor
from tests.conftest import PASSWORD
from tests.test_checklist_pages import CLEAR, checked_in_session, error_at, save
from tests.test_checklist_pages import url as checklist_url
from tests.test_notes import chairs, completed, discharged, note_row, note_url, version_of  # noqa: F401 - fixtures
from tests.test_series_summary import SUMMARY, documents, series_of

#: Most of these test the HTTP and service layers: SQLite only. The replay and single-use tests (one
#: conditional UPDATE each) run on PostgreSQL too.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def code_at(secret, when, steps=0):
    return pyotp.TOTP(secret).at(int(when.timestamp()) + 30 * steps)


def enrol(client, clock):
    """Set up two-factor through the pages, as a person would; returns (secret, recovery codes)."""
    assert client.submit("/account/two-factor/start").status_code == 302
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = re.search(r'data-testid="two-factor-secret">([A-Z2-7]+)<', page).group(1)
    assert 'src="data:image/svg+xml' in page, "the QR code is drawn here, inline"
    done = client.submit("/account/two-factor/confirm", {"code": code_at(secret, clock())})
    assert done.status_code == 200, done.get_data(as_text=True)
    codes = re.findall(r"<li>([A-Z2-9]{5}-[A-Z2-9]{5})</li>", done.get_data(as_text=True))
    clock.advance(seconds=30)  # the next code is another step's
    return secret, codes


def actions(app, prefix):
    with app.app_context():
        rows = db.session.execute(select(AuditEvent.action, AuditEvent.outcome, AuditEvent.details)
                                  .where(AuditEvent.action.like(f"{prefix}%")).order_by(AuditEvent.id)).all()
        return [(action, outcome, json.loads(details) if details else None) for action, outcome, details in rows]


def password_step(app, user):
    client = app.test_client()
    response = client.login(user.username, PASSWORD)
    assert response.status_code == 302
    return client, response


# --- the code check itself, without pages --------------------------------------------------------

#: Seconds from the first second of the code's own 30-second step to when it is typed.
WINDOW = [(0, True), (29, True), (59, True), (60, False), (-1, True), (-30, True), (-31, False)]


@pytest.mark.parametrize("offset,accepted", WINDOW, ids=[f"{o:+d}s" for o, _ in WINDOW])
def test_a_code_is_accepted_in_its_step_and_one_either_side_only(offset, accepted):
    secret, step_start = pyotp.random_base32(), 1_764_000_000 // 30 * 30
    code = pyotp.TOTP(secret).at(step_start)
    typed_at = datetime.fromtimestamp(step_start + offset, UTC)
    assert (service._matching_step(secret, code, typed_at) is not None) is accepted


def test_only_six_digits_are_a_code():
    secret, now = pyotp.random_base32(), datetime(2026, 12, 5, tzinfo=UTC)
    assert service._matching_step(secret, code_at(secret, now)[:5], now) is None
    assert service._matching_step(secret, "", now) is None
    assert service._matching_step(secret, " ".join(code_at(secret, now)), now) is not None  # spaces are ignored


# --- enrolment and sign-in -----------------------------------------------------------------------

@SQLITE_ONLY
def test_an_unconfirmed_enrolment_leaves_it_off_and_one_code_turns_it_on(app, login_as, clock):
    physician = login_as("physician")
    assert physician.submit("/account/two-factor/start").status_code == 302
    page = physician.get("/account/two-factor").get_data(as_text=True)
    secret = re.search(r'data-testid="two-factor-secret">([A-Z2-7]+)<', page).group(1)
    with app.app_context():
        row = db.session.get(TwoFactor, physician.user.id)
        assert row.confirmed_at is None and secret not in row.secret_encrypted, "stored encrypted"
        assert not service.is_on(physician.user.id)
    wrong = physician.submit("/account/two-factor/confirm", {"code": "000000"})
    assert wrong.status_code == 400 and service.WRONG_CODE in wrong.get_data(as_text=True)
    done = physician.submit("/account/two-factor/confirm", {"code": code_at(secret, clock())})
    codes = re.findall(r"<li>([A-Z2-9]{5}-[A-Z2-9]{5})</li>", done.get_data(as_text=True))
    assert len(set(codes)) == 10
    with app.app_context():
        assert service.is_on(physician.user.id)
        hashes = set(db.session.scalars(select(RecoveryCode.code_hash)))
        assert len(hashes) == 10 and not any(code.replace("-", "") in hashes for code in codes), "stored hashed"
    assert "data-testid=\"two-factor-secret\"" not in physician.get("/account/two-factor").get_data(as_text=True)
    assert [a for a, _, _ in actions(app, "two_factor.")] == [
        "two_factor.enrolment_started", "two_factor.enrolment_failed", "two_factor.enabled"]


def test_sign_in_asks_for_a_code_each_code_works_once_and_the_half_signed_in_state_opens_nothing(
        app, login_as, clock):
    enrolled = login_as("physician")
    secret, _ = enrol(enrolled, clock)
    client, response = password_step(app, enrolled.user)
    assert response.headers["Location"].endswith("/login/code")
    assert client.get("/today").headers["Location"].startswith("/login"), "no session before the code"
    assert client.get("/account/two-factor").status_code == 302
    wrong = client.submit("/login/code", {"code": "123456"})
    assert wrong.status_code == 200 and LOGIN_FAILED in wrong.get_data(as_text=True)
    code = code_at(secret, clock())
    assert client.submit("/login/code", {"code": code}).status_code == 302
    assert client.get("/today").status_code == 200
    replay, _ = password_step(app, enrolled.user)
    refused = replay.submit("/login/code", {"code": code})
    assert LOGIN_FAILED in refused.get_data(as_text=True), "a replayed code is refused"
    assert replay.get("/today").status_code == 302
    failures = [d["reason"] for a, _, d in actions(app, "login.failed")]
    assert failures == ["wrong_code", "wrong_code"]
    assert [d.get("second_factor") for a, _, d in actions(app, "login.succeeded")][-1] == "app"


@SQLITE_ONLY
def test_the_half_signed_in_state_expires(app, make_user, clock):
    user = make_user("physician")
    with app.app_context():
        db.session.add(TwoFactor(user_id=user.id, created_at=clock(), confirmed_at=clock(),
                                 secret_encrypted=None))
        db.session.commit()
    client, _ = password_step(app, user)
    assert client.get("/login/code").status_code == 200
    clock.advance(minutes=5, seconds=1)
    assert client.get("/login/code").headers["Location"].startswith("/login")
    assert client.submit("/login/code", {"code": "123456"}).headers["Location"].startswith("/login")


@SQLITE_ONLY
def test_wrong_codes_count_toward_the_lockout(app, login_as, clock):
    enrolled = login_as("physician")
    secret, _ = enrol(enrolled, clock)
    client, _ = password_step(app, enrolled.user)
    for _ in range(app.config["LOCKOUT_THRESHOLD"]):
        client.submit("/login/code", {"code": "000000"})
    refused = client.submit("/login/code", {"code": code_at(secret, clock())})
    assert LOGIN_FAILED in refused.get_data(as_text=True), "a locked account is refused even with the right code"
    assert "account.locked" in [a for a, _, _ in actions(app, "account.")]


def test_recovery_codes_sign_in_once_each(app, login_as, clock):
    enrolled = login_as("physician")
    _, codes = enrol(enrolled, clock)
    client, _ = password_step(app, enrolled.user)
    assert client.submit("/login/code", {"code": codes[0].lower()}).status_code == 302
    again, _ = password_step(app, enrolled.user)
    assert LOGIN_FAILED in again.submit("/login/code", {"code": codes[0]}).get_data(as_text=True)
    [(_, _, details)] = actions(app, "two_factor.recovery_code_used")
    assert details == {"left": 9}


@SQLITE_ONLY
def test_a_role_that_requires_it_is_sent_to_enrolment_and_can_use_nothing_else(app, make_user, clock):
    app.config["TWO_FACTOR_REQUIRED_ROLES"] = frozenset({"physician", "admin"})
    nurse = make_user("nurse")
    assert password_step(app, nurse)[1].headers["Location"] == "/"
    physician = make_user("physician")
    client, response = password_step(app, physician)
    assert response.headers["Location"].endswith("/account/two-factor")
    for url in ("/today", "/signing", "/account/password"):
        assert client.get(url).headers["Location"].endswith("/account/two-factor"), url
    signing = client.submit("/sessions/1/note/sign", {"password": PASSWORD})
    assert signing.headers["Location"].endswith("/account/two-factor"), "no signing step before enrolment"
    # The set-up page offers only the way out: no navigation to pages that would lead back here.
    setup_page = client.get("/account/two-factor").get_data(as_text=True)
    assert "Set up two-factor sign-in to continue" in setup_page and "Sign out" in setup_page
    assert 'href="/today"' not in setup_page and 'data-testid="signed-in-as"' not in setup_page
    client.user = physician
    enrol(client, clock)
    page = client.get("/today")
    assert page.status_code == 200
    assert 'href="/today"' in page.get_data(as_text=True) and "to continue" not in page.get_data(as_text=True)


@SQLITE_ONLY
def test_an_admin_sets_the_policy_audited(app, login_as):
    admin = login_as("admin")
    page = admin.get("/admin/two-factor").get_data(as_text=True)
    assert 'id="physician"' in page
    assert admin.submit("/admin/two-factor", {"nurse": "y"}).status_code == 302
    with app.app_context():
        assert service.required_roles() == {"nurse"}
    [(_, _, details)] = actions(app, "two_factor.policy_changed")
    assert details == {"from": [], "to": ["nurse"]}
    assert login_as("nurse").get("/admin/two-factor").status_code == 403


@SQLITE_ONLY
def test_an_admin_resets_a_colleague_who_is_signed_out_and_told_but_not_their_own(app, login_as, clock):
    physician = login_as("physician")
    enrol(physician, clock)
    admin = login_as("admin")
    assert admin.submit(f"/admin/staff/{admin.user.id}/two-factor/reset").status_code == 403
    with app.app_context(), pytest.raises(service.TwoFactorError, match="recovery codes"):
        service.reset_by_admin(db.session.get(StaffUser, admin.user.id), actor=actor_for(admin.user), now=clock())
    assert actions(app, "two_factor.reset") == []
    assert admin.submit(f"/admin/staff/{physician.user.id}/two-factor/reset").status_code == 302
    assert physician.get("/today").status_code == 302, "their sessions ended"
    with app.app_context():
        assert not service.is_on(physician.user.id)
        assert db.session.scalar(select(StaffSession.end_reason).where(
            StaffSession.user_id == physician.user.id)) == "two_factor_reset"
    [(_, _, details)] = actions(app, "two_factor.reset")
    assert details == {"sessions_ended": 1}
    client, response = password_step(app, physician.user)
    assert response.headers["Location"] == "/", "two-factor is off: the password alone signs in"
    assert "An administrator reset your two-factor sign-in" in client.get("/today").get_data(as_text=True)


@SQLITE_ONLY
def test_a_password_reset_does_not_bypass_the_second_factor(app, login_as, clock):
    """ASVS 6.4.3: the temporary password leads to the code step, not into the app."""
    physician = login_as("physician")
    enrol(physician, clock)
    temporary = "temporary passphrase 42"
    admin = login_as("admin")
    assert admin.submit(f"/admin/staff/{physician.user.id}/password",
                        {"password": temporary, "confirm": temporary}).status_code == 302
    response = app.test_client().login(physician.user.username, temporary)
    assert response.headers["Location"].endswith("/login/code")


@SQLITE_ONLY
def test_the_last_admin_is_reset_from_the_shell(app, login_as, clock, runner):
    admin = login_as("admin")
    enrol(admin, clock)
    result = runner.invoke(args=["users", "reset-two-factor", admin.user.username])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert not service.is_on(admin.user.id)
    assert [(a, d) for a, _, d in actions(app, "two_factor.reset")] == [("two_factor.reset", {"sessions_ended": 1})]


@SQLITE_ONLY
def test_one_turns_off_their_own_only_with_a_recovery_code(app, login_as, clock):
    physician = login_as("physician")
    _, codes = enrol(physician, clock)
    refused = physician.submit("/account/two-factor/off", {"password": PASSWORD, "code": "AAAAA-AAAAA"})
    assert refused.status_code == 400
    with app.app_context():
        assert service.is_on(physician.user.id)
    assert physician.submit("/account/two-factor/off", {"password": PASSWORD, "code": codes[3]}).status_code == 302
    with app.app_context():
        assert not service.is_on(physician.user.id)
    assert [a for a, _, _ in actions(app, "two_factor.disabled")] == ["two_factor.disabled"]


@SQLITE_ONLY
def test_new_recovery_codes_replace_every_old_one_with_the_password_and_a_fresh_code(app, login_as, clock):
    physician = login_as("physician")
    secret, old = enrol(physician, clock)
    assert "Make new recovery codes" in physician.get("/account/two-factor").get_data(as_text=True)
    form = {"renew-password": PASSWORD, "renew-code": code_at(secret, clock())}
    renewed = physician.submit("/account/two-factor/recovery-codes", form)
    page = renewed.get_data(as_text=True)
    new = re.findall(r"<li>([A-Z2-9]{5}-[A-Z2-9]{5})</li>", page)
    assert renewed.status_code == 200 and "New recovery codes" in page and "no longer work" in page
    assert len(set(new)) == 10 and not set(new) & set(old)
    # Sent again (a double click without the page's script, Back and resend): the code is used, nothing changes.
    again = physician.submit("/account/two-factor/recovery-codes", form)
    assert again.status_code == 400 and "wait for the next code and make them again" in again.get_data(as_text=True)
    assert 'value="' + form["renew-code"] + '"' in again.get_data(as_text=True), "the code typed is kept"
    client, _ = password_step(app, physician.user)
    assert LOGIN_FAILED in client.submit("/login/code", {"code": old[1]}).get_data(as_text=True)
    assert client.submit("/login/code", {"code": new[1]}).status_code == 302
    assert [(a, o) for a, o, _ in actions(app, "two_factor.recovery_codes")] == [
        ("two_factor.recovery_codes_renewed", "ok")]


@SQLITE_ONLY
@pytest.mark.parametrize(("password", "code", "field", "message"), [
    ("not the password", None, "password", "That password is not correct."),
    (PASSWORD, "000000", "code", service.WRONG_CODE),
    (PASSWORD, "", "code", "This field is required."),
])
def test_new_recovery_codes_are_refused_at_the_field_and_the_old_ones_kept(app, login_as, clock, password, code,
                                                                           field, message):
    physician = login_as("physician")
    secret, old = enrol(physician, clock)
    refused = physician.submit("/account/two-factor/recovery-codes", {
        "renew-password": password, "renew-code": code_at(secret, clock()) if code is None else code})
    assert refused.status_code == 400
    assert error_at(refused.get_data(as_text=True), f"renew-{field}").startswith(f"Error: {message}")
    with app.app_context():
        assert service.recovery_codes_left(physician.user.id) == 10
    client, _ = password_step(app, physician.user)
    assert client.submit("/login/code", {"code": old[0]}).status_code == 302


# --- signing steps -------------------------------------------------------------------------------

@SQLITE_ONLY
def test_an_override_asks_a_signer_with_two_factor_for_a_fresh_code(app, clock, login_as):
    session_id = checked_in_session(app, clock)
    save(login_as("nurse"), session_id, {**CLEAR, "systolic": "150", "diastolic": "95"})
    physician = login_as("physician")
    assert 'name="totp_code"' not in physician.get(checklist_url(session_id)).get_data(as_text=True)
    secret, _ = enrol(physician, clock)
    assert 'name="totp_code"' in physician.get(checklist_url(session_id)).get_data(as_text=True)
    override = {"code": "BP_SOFT_GATE", "password": PASSWORD, "reason": "Known white-coat hypertension"}
    refused = physician.submit(checklist_url(session_id, True), {**override, "totp_code": "000000"})
    assert refused.status_code == 400
    assert error_at(refused.get_data(as_text=True), "override-bp_soft_gate-totp_code") == \
        f"Error: {service.SIGNING_REFUSED}"
    assert [d["reason"] for _, _, d in actions(app, "override.refused")] == ["second_factor"]
    assert [d["reason"] for _, _, d in actions(app, "reauth.failed")] == ["wrong_code"], "counts toward the lockout"
    done = physician.submit(checklist_url(session_id, True), {**override, "totp_code": code_at(secret, clock())})
    assert done.status_code == 302


@SQLITE_ONLY
def test_signing_a_note_and_a_series_summary_asks_for_a_fresh_code_each(app, request, login_as, clock):
    session_id, _nurse = request.getfixturevalue("completed")
    physician = login_as("physician")
    secret, _ = enrol(physician, clock)
    version = version_of(app, session_id)
    sign_url = note_url(session_id, "sign")
    page = physician.get(note_url(session_id)).get_data(as_text=True)
    assert "Code from your authenticator app" in page
    missing = physician.submit(sign_url, {"version": str(version), "password": PASSWORD})
    assert missing.status_code == 400 and service.SIGNING_REFUSED in missing.get_data(as_text=True)
    assert note_row(app, session_id).signed_at is None
    code = code_at(secret, clock())
    signed = physician.submit(sign_url, {"version": str(version), "password": PASSWORD, "totp_code": code})
    assert signed.status_code == 302, signed.get_data(as_text=True)
    series_id = series_of(app, session_id)
    replayed = physician.submit(f"/series/{series_id}/summary/sign",
                                {"summary": SUMMARY, "password": PASSWORD, "totp_code": code})
    assert replayed.status_code == 400 and service.SIGNING_REFUSED in replayed.get_data(as_text=True)
    assert documents(app) == [], "nothing signed or stored"
