"""The clinical policy: stored, versioned, edited by admins only, every change audited."""
import json

import pytest
from sqlalchemy import select

from opsmgr.audit.models import AuditEvent
from opsmgr.extensions import db
from opsmgr.policy import service
from opsmgr.policy.forms import POLICY_FIELDS
from opsmgr.rules.policy import DEFAULT_POLICY, FIELD_HELP


def form_values(**changes):
    values = {name: str(value) for name, value in DEFAULT_POLICY.to_dict().items()}
    return {**values, "version": "1", "note": "Tighter BP review", **changes}


def test_the_migration_stores_the_documented_defaults_as_version_1(app):
    with app.app_context():
        assert service.current_policy() == (1, DEFAULT_POLICY)


def test_every_policy_field_has_a_label_unit_and_source():
    assert set(FIELD_HELP) == set(POLICY_FIELDS)
    assert all(label and unit and source for label, unit, source in FIELD_HELP.values())


def test_an_admin_saves_a_new_version_and_the_change_is_audited(app, login_as):
    admin = login_as("admin")
    page = admin.get("/admin/policy/")
    assert page.status_code == 200 and "Rule 2; Spravato label" in page.get_data(as_text=True)
    response = admin.submit("/admin/policy/", form_values(bp_soft_systolic="135"))
    assert response.status_code == 302
    with app.app_context():
        version, policy = service.current_policy()
        assert (version, policy.bp_soft_systolic) == (2, 135)
        assert service.policy_for(1) == DEFAULT_POLICY, "older versions are kept for past decisions"
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "policy.revised"))
        assert json.loads(event.details) == {"bp_soft_systolic": ["140", "135"]}


def test_saving_without_a_change_makes_no_version(app, login_as):
    login_as("admin").submit("/admin/policy/", form_values())
    with app.app_context():
        assert service.current_policy()[0] == 1


@pytest.mark.parametrize("changes,message", [
    ({"bp_soft_systolic": "190"}, "below the blocking one"),
    ({"hr_low": "130"}, "low heart rate must be below"),
    ({"dose_mg_per_kg_high": "1.2"}, "must not exceed the ceiling"),
    ({"spo2_min": "abc"}, "Not a valid integer value"),
    ({"dose_mg_per_kg_low": "-1"}, "Number must be between"),
    ({"note": ""}, "This field is required."),
])
def test_bad_values_come_back_at_the_field_and_nothing_is_saved(app, login_as, changes, message):
    response = login_as("admin").submit("/admin/policy/", form_values(**changes))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and message in html
    for value in changes.values():
        if value:
            assert f'value="{value}"' in html
    with app.app_context():
        assert service.current_policy()[0] == 1


def test_an_edit_based_on_an_older_version_is_refused(app, login_as):
    first, second = login_as("admin"), login_as("admin")
    assert first.submit("/admin/policy/", form_values(hr_high="125")).status_code == 302
    stale = second.submit("/admin/policy/", form_values(hr_low="45"))
    assert stale.status_code == 409 and "newer policy" in stale.get_data(as_text=True)
    with app.app_context():
        version, policy = service.current_policy()
        assert (version, policy.hr_high, policy.hr_low) == (2, 125, 50)


@pytest.mark.parametrize("role", ["nurse", "coordinator", "physician"])
def test_only_admins_edit_the_policy(login_as, role):
    assert login_as(role).get("/admin/policy/").status_code == 403
