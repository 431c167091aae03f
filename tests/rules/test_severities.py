"""Severities as clinic policy: every code's limits, table-first, and the policy applied by every gate. No app."""
import ast
import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from opsmgr.rules import checklist, discharge, dosing, screening
from opsmgr.rules.checklist import ChecklistAnswers, evaluate_readiness
from opsmgr.rules.discharge import evaluate_discharge
from opsmgr.rules.dosing import dose_findings
from opsmgr.rules.findings import Finding, Outcome, Override, Severity, may_proceed, outcome_of
from opsmgr.rules.policy import DEFAULT_POLICY, ClinicalPolicy
from opsmgr.rules.severities import (
    SEVERITY_RULES,
    apply_severities,
    severity_for,
    severity_problems,
    stored_choices,
)
from tests.rules.test_checklist import CLEAR, NOW, vitals
from tests.rules.test_discharge import IV, IV_READY

RULE_MODULES = (checklist, screening, dosing, discharge)
#: Made by the services, not by a rules module, and listed so the admin sees every gate finding.
SERVICE_CODES = {"CHECKLIST_NOT_STARTED", "DOSE_NOT_STARTED", "ALERT_UNACKNOWLEDGED"}
#: Locked whatever a clinic wants (issue 8, item 5): lowering any of them would be unsafe.
MUST_BE_LOCKED = {
    "PREGNANCY_POSITIVE", "VITALS_STALE", "VITALS_TIME_IN_FUTURE", "FASTING_TIME_IN_FUTURE", "CHECKLIST_NOT_STARTED",
    "CONSENT_NOT_ON_FILE", "ESKETAMINE_DOSE_INVALID", "DOSE_MG_PER_KG_MISSING", "WEIGHT_MISSING",
    "INFUSION_MINUTES_MISSING", "OBSERVATION_NOT_COMPLETE", "DISCHARGE_VITALS_MISSING", "MENTAL_STATUS_NOT_RECORDED",
    "ESCORT_NOT_PRESENT", "INSTRUCTIONS_NOT_GIVEN", "DISCHARGE_CONDITION_MISSING",
}
CODE = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+")
EDITABLE = sorted(code for code, rule in SEVERITY_RULES.items() if not rule.locked)
LOCKED = sorted(code for code, rule in SEVERITY_RULES.items() if rule.locked)


def policy(**severities):
    return ClinicalPolicy(severities={code: Severity(value).value for code, value in severities.items()})


def literal_severities():
    """(code, Severity) of every finding a rules module writes with a literal severity (parsed, not run)."""
    for module in RULE_MODULES:
        tree = ast.parse(Path(module.__file__).read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            position = {"Finding": 0, "_Question": 2}.get(node.func.id)
            if position is None or len(node.args) < position + 2:
                continue
            code, severity = node.args[position], node.args[position + 1]
            if isinstance(code, ast.Constant) and isinstance(severity, ast.Attribute):
                yield code.value, Severity[severity.attr]


def code_like_strings():
    """Every string in a rules module that reads as a finding code (a code may be held in a variable)."""
    for module in RULE_MODULES:
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.fullmatch(node.value):
                yield node.value


def unanswered_codes():
    """Every `<ITEM>_UNANSWERED` the checklist can raise: an empty checklist on each route, and the rest."""
    empty = ChecklistAnswers(
        route="esketamine", vitals=None, weight_kg=None, medication_changes=None, new_diagnoses=None,
        pregnancy_possible=None, pregnancy_status=None, cardio_cerebrovascular_event=None, psychosis_symptoms=None,
        mania_symptoms=None, substance_use_in_window=None, vascular_contraindication=None, last_solid_food_at=None,
        last_clear_liquid_at=None, escort_name="", escort_phone="", consent_on_file=True, consent_reconfirmed=None,
        phq9_items=None, phq9_difficulty=None, gad7_items=None, suicide_risk=None, willingness=None, intention="")
    cases = (empty, replace(empty, pregnancy_possible=True), replace(CLEAR, phq9_difficulty=None))
    return {f.code for case in cases for f in evaluate_readiness(case, now=NOW, policy=DEFAULT_POLICY)
            if f.code.endswith("_UNANSWERED")}


# --- the table: every code, its default as the rules wrote it, and its limits -------------------------------


def test_every_code_the_rules_raise_is_in_the_table_with_the_severity_the_rule_writes():
    literal = dict(literal_severities())
    assert len(literal) > 40, "the parser found the rules' findings"
    assert {code: SEVERITY_RULES[code].default for code in literal if code in SEVERITY_RULES} == literal
    assert set(code_like_strings()) | unanswered_codes() | SERVICE_CODES == set(SEVERITY_RULES)


def test_every_unanswered_item_is_locked_absolute():
    assert len(unanswered_codes()) == 19
    for code in unanswered_codes():
        assert SEVERITY_RULES[code].choices == (Severity.ABSOLUTE,), code


def test_the_codes_the_issue_names_and_every_not_allowed_default_are_locked():
    assert set(LOCKED) >= MUST_BE_LOCKED
    for code, rule in SEVERITY_RULES.items():
        if rule.default == Severity.ABSOLUTE:
            assert rule.locked, f"{code}: a finding nobody may override can never be made overridable"


def test_information_stays_information():
    info = {code for code, rule in SEVERITY_RULES.items() if rule.default == Severity.INFO}
    assert {"PHQ9_SCORE", "GAD7_SCORE", "PREGNANCY_NOT_TESTED", "MEDICATION_CHANGE", "SUICIDE_RISK_LOW"} == info
    assert all(SEVERITY_RULES[code].choices == (Severity.INFO,) for code in info)


def test_nothing_that_stops_a_step_can_be_made_information():
    for code, rule in SEVERITY_RULES.items():
        if rule.default != Severity.INFO:
            assert Severity.INFO not in rule.choices, code


@pytest.mark.parametrize("code,choices", [
    ("BP_SOFT_GATE", ("needs_physician", "block", "absolute")),
    ("BP_HARD_GATE", ("block", "absolute")),
    ("DOSE_ABOVE_CEILING", ("block", "absolute")),
    ("ESCORT_ALTERNATIVE_ARRANGEMENT", ("block", "absolute")),
    ("PHQ9_ITEM9_POSITIVE", ("needs_physician", "block")),
    ("SUICIDE_RISK_ELEVATED", ("block",)),
    ("DISCHARGE_VITALS_OUT_OF_RANGE", ("needs_physician", "block")),
    ("MENTAL_STATUS_NOT_BASELINE", ("needs_physician", "block")),
    ("ESCORT_MISSING", ("absolute",)),
    ("PSYCHOSIS_SYMPTOMS", ("absolute",)),
])
def test_declared_limits(code, choices):
    assert tuple(severity.value for severity in SEVERITY_RULES[code].choices) == choices


def test_every_code_has_a_plain_description_and_a_source():
    for code, rule in SEVERITY_RULES.items():
        assert rule.code == code and rule.description and rule.source and rule.default in rule.choices
        assert list(rule.choices) == sorted(rule.choices, key=lambda severity: severity.rank), code


# --- the limits, code by code: each allowed severity accepted, every other refused ---------------------------


@pytest.mark.parametrize("code", EDITABLE)
@pytest.mark.parametrize("severity", list(Severity), ids=lambda s: s.value)
def test_each_editable_code_accepts_exactly_its_allowed_severities(code, severity):
    rule = SEVERITY_RULES[code]
    problems = severity_problems({code: severity.value})
    if severity in rule.choices:
        assert problems == ()
        assert severity_for(code, policy(**{code: severity})) == severity
    else:
        [problem] = problems
        assert problem.field == code and all(choice.label in problem.message for choice in rule.choices)


@pytest.mark.parametrize("code", LOCKED)
def test_each_locked_code_refuses_every_other_severity(code):
    rule = SEVERITY_RULES[code]
    assert severity_problems({code: rule.default.value}) == ()
    for severity in set(Severity) - {rule.default}:
        [problem] = severity_problems({code: severity.value})
        assert problem.field == code
        assert problem.message == (f"{rule.description}: fixed at “{rule.default.label}”. The rules do not let a "
                                   "clinic change it.")


@pytest.mark.parametrize("chosen,field", [
    ({"NOT_A_CODE": "block"}, "NOT_A_CODE"),
    ({"BP_SOFT_GATE": "sometimes"}, "BP_SOFT_GATE"),
    ({"BP_SOFT_GATE": ""}, "BP_SOFT_GATE"),
    ({"BP_SOFT_GATE": None}, "BP_SOFT_GATE"),
])
def test_an_unknown_code_or_severity_is_refused(chosen, field):
    assert [problem.field for problem in severity_problems(chosen)] == [field]


def test_only_choices_that_differ_from_the_default_are_stored():
    chosen = {"BP_SOFT_GATE": "block", "SPO2_LOW": "needs_physician", "NOT_A_CODE": "block",
              "PREGNANCY_POSITIVE": "block"}
    assert stored_choices(chosen) == {"BP_SOFT_GATE": "block"}


# --- the policy object ---------------------------------------------------------------------------------------


def test_a_version_stored_before_severities_were_policy_loads_with_the_defaults():
    old = {name: value for name, value in DEFAULT_POLICY.to_dict().items() if name != "severities"}
    assert ClinicalPolicy.from_dict(old) == DEFAULT_POLICY and ClinicalPolicy.from_dict(old).severities == {}


def test_severities_round_trip_through_the_stored_values():
    chosen = policy(BP_SOFT_GATE="block")
    assert ClinicalPolicy.from_dict(chosen.to_dict()) == chosen
    assert chosen.to_dict()["severities"] == {"BP_SOFT_GATE": "block"}
    assert hash(chosen), "a policy stays hashable"


# --- applying the policy: every gate sees the clinic's severities -------------------------------------------


def test_the_default_policy_changes_no_severity():
    finding = Finding("BP_SOFT_GATE", Severity.NEEDS_PHYSICIAN, "m")
    assert apply_severities((finding,), DEFAULT_POLICY) == (finding,)


def test_a_code_the_policy_sets_to_block_comes_out_blocked_from_the_checklist():
    answers = replace(CLEAR, vitals=vitals(systolic=150, diastolic=95))
    [finding] = [f for f in evaluate_readiness(answers, now=NOW, policy=policy(BP_SOFT_GATE="block"))
                 if f.stops_start]
    assert (finding.code, finding.severity) == ("BP_SOFT_GATE", Severity.BLOCK)
    assert outcome_of((finding,)) == Outcome.BLOCKED
    assert may_proceed((finding,), (Override("BP_SOFT_GATE", "physician", "Known white-coat hypertension"),))


def test_a_code_the_policy_makes_not_allowed_cannot_be_overridden():
    answers = replace(CLEAR, substance_use_in_window=True)
    findings = evaluate_readiness(answers, now=NOW, policy=policy(SUBSTANCE_USE_RECENT="absolute"))
    assert {f.code: f.severity for f in findings if f.stops_start} == {"SUBSTANCE_USE_RECENT": Severity.ABSOLUTE}
    assert not may_proceed(findings, (Override("SUBSTANCE_USE_RECENT", "physician", "One glass of wine"),))


@pytest.mark.parametrize("code,answers", [
    ("PREGNANCY_POSITIVE", replace(CLEAR, pregnancy_status="positive")),
    ("VITALS_STALE", replace(CLEAR, vitals=vitals(taken_at=NOW - timedelta(hours=1)))),
    ("ESCORT_MISSING", replace(CLEAR, escort_name="")),
])
def test_a_not_allowed_code_is_unaffected_even_by_a_crafted_stored_choice(code, answers):
    crafted = ClinicalPolicy(severities={code: "block"})  # never saved: revise_policy refuses it
    findings = evaluate_readiness(answers, now=NOW, policy=crafted)
    assert {f.code: f.severity for f in findings if f.stops_start} == {code: Severity.ABSOLUTE}


def test_a_stored_choice_outside_today_s_limits_falls_back_to_the_default():
    assert severity_for("BP_SOFT_GATE", ClinicalPolicy(severities={"BP_SOFT_GATE": "info"})) == \
        Severity.NEEDS_PHYSICIAN
    assert severity_for("NOT_A_CODE", DEFAULT_POLICY) is None


def test_a_code_not_in_the_table_keeps_its_severity():
    finding = Finding("ALERT_SPO2", Severity.NEEDS_PHYSICIAN, "m")
    assert apply_severities((finding,), policy(BP_SOFT_GATE="block")) == (finding,)


def test_the_dose_findings_take_the_policy_s_severity():
    def found(p):
        return {f.code: f.severity for f in dose_findings(route="iv", mg_per_kg=D("0.8"), infusion_minutes=30,
                                                          dose_mg=D("56"), policy=p)}

    assert found(DEFAULT_POLICY) == {"DOSE_OUTSIDE_USUAL_RANGE": Severity.NEEDS_PHYSICIAN,
                                     "INFUSION_TOO_FAST": Severity.NEEDS_PHYSICIAN}
    assert found(policy(DOSE_OUTSIDE_USUAL_RANGE="block", INFUSION_TOO_FAST="absolute")) == {
        "DOSE_OUTSIDE_USUAL_RANGE": Severity.BLOCK, "INFUSION_TOO_FAST": Severity.ABSOLUTE}
    esketamine = dose_findings(route="esketamine", mg_per_kg=None, infusion_minutes=None, dose_mg=D("30"),
                               policy=policy(ESKETAMINE_DOSE_INVALID="block"))
    assert [f.severity for f in esketamine] == [Severity.ABSOLUTE]


def test_the_discharge_findings_take_the_policy_s_severity():
    answers = replace(IV, moaas=4)
    def severity(p):
        return {f.code: f.severity for f in evaluate_discharge(answers, now=IV_READY, policy=p)}

    assert severity(DEFAULT_POLICY) == {"MENTAL_STATUS_NOT_BASELINE": Severity.NEEDS_PHYSICIAN}
    assert severity(policy(MENTAL_STATUS_NOT_BASELINE="block")) == {"MENTAL_STATUS_NOT_BASELINE": Severity.BLOCK}
