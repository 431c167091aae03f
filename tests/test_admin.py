"""Admin pages for staff accounts."""

import pytest
from sqlalchemy import select

from opsmgr.audit.models import AuditEvent
from opsmgr.auth.models import StaffUser
from opsmgr.extensions import db
from tests.conftest import PASSWORD
from tests.sql import count_statements

NEW = {"username": "j.rivera", "full_name": "Jo Rivera", "credentials": "RN", "role": "nurse",
       "password": "a temporary passphrase", "confirm": "a temporary passphrase"}


def staff(app, username):
    with app.app_context():
        return db.session.scalar(select(StaffUser).where(StaffUser.username == username))


def last_event(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                  .order_by(AuditEvent.id.desc())).first()


def test_admin_creates_a_staff_member_who_must_change_the_password(app, login_as):
    admin = login_as("admin")
    response = admin.submit("/admin/staff/new", NEW)
    assert response.status_code == 302
    created = staff(app, "j.rivera")
    assert (created.full_name, created.role, created.credentials, created.must_change_password) == \
        ("Jo Rivera", "nurse", "RN", True)
    assert last_event(app, "staff.created").username == admin.user.username
    newcomer = app.test_client()
    newcomer.login("j.rivera", NEW["password"])
    assert newcomer.get("/today").headers["Location"].endswith("/account/password")
    page = newcomer.get("/account/password").get_data(as_text=True)
    assert "Set a new password to continue" in page and 'href="/today"' not in page, "only the way out is offered"


def test_duplicate_username_is_refused_next_to_the_field_keeping_the_input(app, login_as, make_user):
    make_user("nurse", username="j.rivera")
    admin = login_as("admin")
    response = admin.submit("/admin/staff/new", {**NEW, "full_name": "Another Jo"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="username-error"' in html and "already taken" in html
    assert 'value="Another Jo"' in html


def test_weak_or_mismatched_passwords_are_refused_at_the_field(login_as):
    admin = login_as("admin")
    short = admin.submit("/admin/staff/new", {**NEW, "password": "too short", "confirm": "too short"})
    assert "at least 12 characters" in short.get_data(as_text=True)
    mismatch = admin.submit("/admin/staff/new", {**NEW, "confirm": "something else entirely"})
    assert "The two passwords differ." in mismatch.get_data(as_text=True)


def test_bad_username_characters_and_unknown_role_are_refused(login_as):
    admin = login_as("admin")
    html = admin.submit("/admin/staff/new", {**NEW, "username": "<script>"}).get_data(as_text=True)
    assert "Use letters, digits" in html and "<script>" not in html.split("<main")[1].replace("&lt;script&gt;", "")
    html = admin.submit("/admin/staff/new", {**NEW, "role": "superuser"}).get_data(as_text=True)
    assert "Not a valid choice" in html


def test_role_change_is_audited_with_old_and_new_role(app, login_as, make_user):
    target = make_user("nurse")
    admin = login_as("admin")
    assert admin.submit(f"/admin/staff/{target.id}/role", {"role": "physician"}).status_code == 302
    assert staff(app, target.username).role == "physician"
    details = last_event(app, "staff.role_changed").details
    assert '"from":"nurse"' in details and '"to":"physician"' in details


def test_deactivate_then_reactivate(app, login_as, make_user):
    target = make_user("coordinator")
    admin = login_as("admin")
    admin.submit(f"/admin/staff/{target.id}/deactivate")
    assert staff(app, target.username).is_active_account is False
    assert app.test_client().login(target.username, PASSWORD).status_code == 200
    admin.submit(f"/admin/staff/{target.id}/reactivate")
    assert app.test_client().login(target.username, PASSWORD).status_code == 302
    assert last_event(app, "staff.reactivated") is not None


def test_admin_signs_a_user_out_everywhere(login_as):
    nurse = login_as("nurse")
    admin = login_as("admin")
    admin.submit(f"/admin/staff/{nurse.user.id}/end-sessions")
    assert nurse.get("/today").status_code == 302


def test_reset_password_refuses_a_common_password(login_as, make_user):
    target = make_user("nurse")
    admin = login_as("admin")
    common = {"password": "qwerty123456", "confirm": "qwerty123456"}
    response = admin.submit(f"/admin/staff/{target.id}/password", common)
    assert response.status_code == 400
    assert "commonly used" in response.get_data(as_text=True)


def test_unknown_staff_id_is_404(login_as):
    assert login_as("admin").get("/admin/staff/999999").status_code == 404




def test_staff_list_uses_a_constant_number_of_statements(app, login_as, make_user):
    admin = login_as("admin")
    admin.get("/admin/staff")
    with count_statements(app) as few:
        assert admin.get("/admin/staff").status_code == 200
    for _ in range(25):
        make_user("nurse")
    with count_statements(app) as many:
        assert admin.get("/admin/staff").status_code == 200
    assert few["n"] == many["n"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_admins_are_told_when_the_clinic_time_zone_is_the_machines(app, login_as, tmp_path):
    from config import Config

    assert Config({"OPSMGR_INSTANCE_PATH": str(tmp_path)}).CLINIC_TIMEZONE_FROM_MACHINE
    assert not Config({"OPSMGR_INSTANCE_PATH": str(tmp_path), "OPSMGR_TIMEZONE": "UTC"}).CLINIC_TIMEZONE_FROM_MACHINE
    admin = login_as("admin")
    assert 'data-testid="timezone-notice"' not in admin.get("/admin/staff").get_data(as_text=True)
    app.config["CLINIC_TIMEZONE_FROM_MACHINE"] = True
    for page in ("/admin/staff", "/admin/clinic/"):
        html = admin.get(page).get_data(as_text=True)
        assert "Clinic time zone: America/New_York (this server's)" in html and "OPSMGR_TIMEZONE" in html, page
