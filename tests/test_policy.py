"""The clinical policy: stored, versioned, edited by admins only, every change audited."""
import json
import re
from html import unescape

import pytest
from sqlalchemy import func, select

from opsmgr.audit.models import AuditEvent
from opsmgr.audit.service import SYSTEM
from opsmgr.extensions import db
from opsmgr.policy import service
from opsmgr.policy.forms import POLICY_FIELDS
from opsmgr.policy.models import PolicyVersion
from opsmgr.rules.findings import Severity
from opsmgr.rules.policy import DEFAULT_POLICY, FIELD_HELP, THRESHOLDS
from opsmgr.rules.severities import SEVERITY_RULES


def form_values(**changes):
    values = {name: str(getattr(DEFAULT_POLICY, name)) for name in THRESHOLDS}
    return {**values, "version": "1", "note": "Tighter BP review", **changes}


def error_at(html, field_id):
    match = re.search(rf'<div id="{re.escape(field_id)}-error"[^>]*>(.*?)</div>', html, re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else None


def audited_revisions(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "policy.revised"))


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
    assert response.status_code == 400 and message in html
    for value in changes.values():
        if value:
            assert f'value="{value}"' in html
    with app.app_context():
        assert service.current_policy()[0] == 1


@pytest.mark.parametrize("role", ["nurse", "coordinator", "physician"])
def test_only_admins_edit_the_policy(login_as, role):
    assert login_as(role).get("/admin/policy/").status_code == 403


# --- severities ------------------------------------------------------------------------------------


def test_every_finding_code_is_listed_with_its_source_and_a_select_only_where_the_rules_allow_a_choice(login_as):
    html = login_as("admin").get("/admin/policy/").get_data(as_text=True)
    for code, rule in SEVERITY_RULES.items():
        row = re.search(rf'<tr data-code="{code}">(.*?)</tr>', html, re.S)
        text = unescape(row.group(1))
        assert rule.description in text and rule.source in text, code
        select_ = re.search(r"<select[^>]*>(.*?)</select>", row.group(1), re.S)
        if rule.locked:
            assert select_ is None and f'<span data-testid="fixed-severity">{rule.default.label}</span>' in text
        else:
            options = re.findall(r'<option[^>]*value="([^"]+)"', select_.group(1))
            assert options == [severity.value for severity in rule.choices], code
            assert f'value="{rule.default.value}" selected' in select_.group(1) or \
                re.search(rf'selected[^>]*value="{rule.default.value}"', select_.group(1))


def test_an_admin_raises_a_severity_and_a_new_version_is_saved_and_audited(app, login_as):
    admin = login_as("admin")
    response = admin.submit("/admin/policy/", form_values(severity_bp_soft_gate="block", note="BP review blocks"))
    assert response.status_code == 302
    with app.app_context():
        version, policy = service.current_policy()
        assert (version, policy.severities) == (2, {"BP_SOFT_GATE": "block"})
        assert service.policy_for(1) == DEFAULT_POLICY
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "policy.revised"))
        assert json.loads(event.details) == {"severity:BP_SOFT_GATE": ["needs_physician", "block"]}
    page = admin.get("/admin/policy/").get_data(as_text=True)
    row = re.search(r'<tr data-code="BP_SOFT_GATE">(.*?)</tr>', page, re.S).group(1)
    assert re.search(r'<option[^>]*selected[^>]*value="block"|<option[^>]*value="block"[^>]*selected', row)

    back = admin.submit("/admin/policy/", form_values(version="2", severity_bp_soft_gate="needs_physician"))
    assert back.status_code == 302
    with app.app_context():
        version, policy = service.current_policy()
        assert (version, policy, policy.severities) == (3, DEFAULT_POLICY, {})
        row = db.session.scalar(select(PolicyVersion).where(PolicyVersion.version == 3))
        assert row.values["severities"] == {}, "only choices that differ from the default are stored"


@pytest.mark.parametrize("code", ["PREGNANCY_POSITIVE", "VITALS_STALE", "ESCORT_MISSING", "PHQ9_SCORE"])
def test_a_crafted_post_choosing_a_locked_severity_is_refused_at_the_field_and_nothing_is_saved(app, login_as,
                                                                                                 code):
    other = "block" if SEVERITY_RULES[code].default != Severity.BLOCK else "absolute"
    field = f"severity_{code.lower()}"
    response = login_as("admin").submit("/admin/policy/", form_values(bp_soft_systolic="135", **{field: other}))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f"fixed at “{SEVERITY_RULES[code].default.label}”" in unescape(error_at(html, field))
    assert input_value(html, "bp_soft_systolic") == "135", "what the admin typed is still in the form"
    with app.app_context():
        assert service.current_policy() == (1, DEFAULT_POLICY)
    assert audited_revisions(app) == 0


@pytest.mark.parametrize("code,value", [("BP_SOFT_GATE", "info"), ("BP_HARD_GATE", "needs_physician"),
                                        ("PHQ9_ITEM9_POSITIVE", "absolute"), ("SPO2_LOW", "sometimes")])
def test_a_severity_outside_an_editable_code_s_limits_is_refused_naming_the_choices(app, login_as, code, value):
    field = f"severity_{code.lower()}"
    response = login_as("admin").submit("/admin/policy/", form_values(**{field: value}))
    assert response.status_code == 400
    message = unescape(error_at(response.get_data(as_text=True), field))
    assert all(severity.label in message for severity in SEVERITY_RULES[code].choices)
    with app.app_context():
        assert service.current_policy()[0] == 1


def test_the_service_refuses_a_locked_severity_whoever_calls_it(app, clock):
    with app.app_context():
        with pytest.raises(service.PolicyError) as refused:
            service.revise_policy({"severities": {"PREGNANCY_POSITIVE": "block"}}, based_on=1, note="x",
                                  actor=SYSTEM, now=clock())
        assert [problem.field for problem in refused.value.problems] == ["PREGNANCY_POSITIVE"]
        assert service.current_policy()[0] == 1


def input_value(html, name):
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', html)
    value = re.search(r'value="([^"]*)"', match.group(0)) if match else None
    return value.group(1) if value else ""
