"""The discharge gate, table-first: observation edges to the second, pre-discharge vitals just inside,
on and just outside each limit, mental status, escort, instructions and condition. No app needed."""
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from opsmgr.rules.discharge import (
    DISCHARGE_INSTRUCTIONS,
    ESKETAMINE_DISCHARGE_INSTRUCTIONS,
    DischargeAnswers,
    discharge_instructions,
    evaluate_discharge,
    unanswered,
    waiting_on,
)
from opsmgr.rules.findings import Finding, Override, Severity, may_proceed
from opsmgr.rules.monitoring import Reading
from opsmgr.rules.policy import DEFAULT_POLICY, ClinicalPolicy

START = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
ENDED = START + timedelta(minutes=40)
IV_READY = ENDED + timedelta(minutes=30)
ESK_READY = START + timedelta(minutes=120)
SECOND = timedelta(seconds=1)
RECOVERY_READING_AT = ENDED + timedelta(minutes=25)


def minutes(m, s=0):
    return timedelta(minutes=m, seconds=s)


def vitals(at=RECOVERY_READING_AT, systolic=128, diastolic=78, heart_rate=72, spo2=98):
    return Reading(at, systolic, diastolic, heart_rate, spo2, 5)


IV = DischargeAnswers(route="iv", dose_started_at=START, infusion_ended_at=ENDED, last_vitals=vitals(), moaas=5,
                      escort_present=True, instructions_given=True, condition_at_discharge="Alert, oriented, walking")
ESK = replace(IV, route="esketamine", infusion_ended_at=None, last_vitals=vitals(START + minutes(110)))


def found(answers=IV, now=IV_READY, policy=DEFAULT_POLICY, **changes):
    return {f.code: f.severity for f in evaluate_discharge(replace(answers, **changes), now=now, policy=policy)}


def test_a_complete_iv_discharge_is_cleared():
    assert found() == {}


def test_a_complete_esketamine_discharge_is_cleared():
    assert found(ESK, ESK_READY) == {}


# --- minimum observation ------------------------------------------------------------------------

NOT_DONE = {"OBSERVATION_NOT_COMPLETE": Severity.ABSOLUTE}


@pytest.mark.parametrize("after_end,expected", [
    (minutes(29, 59), NOT_DONE),
    (minutes(30), {}),           # exactly 30 minutes: complete
    (minutes(30, 1), {}),
])
def test_iv_observation_is_thirty_minutes_after_the_infusion_ends(after_end, expected):
    assert found(now=ENDED + after_end) == expected


@pytest.mark.parametrize("after_dose,expected", [
    (minutes(119, 59), NOT_DONE),
    (minutes(120), {}),
    (minutes(120, 1), {}),
])
def test_esketamine_observation_is_120_minutes_after_the_dose(after_dose, expected):
    assert found(ESK, START + after_dose) == expected


@pytest.mark.parametrize("now,remaining", [
    (ENDED, 30),
    (ENDED + minutes(10), 20),
    (ENDED + minutes(10, 1), 20),    # 19 min 59 s left: shown as 20, never as done early
    (ENDED + minutes(29), 1),
    (ENDED + minutes(29, 59), 1),
])
def test_observation_finding_says_how_many_minutes_remain(now, remaining):
    (finding,) = [f for f in evaluate_discharge(IV, now=now, policy=DEFAULT_POLICY)
                  if f.code == "OBSERVATION_NOT_COMPLETE"]
    assert finding.values["minutes_remaining"] == remaining
    assert finding.values["observation_ends_at"] == IV_READY.isoformat()
    assert f"{remaining} min" in finding.message


def test_iv_observation_cannot_complete_while_the_infusion_runs():
    codes = found(now=START + minutes(300), infusion_ended_at=None)
    assert codes["OBSERVATION_NOT_COMPLETE"] == Severity.ABSOLUTE


def test_observation_comes_from_the_policy():
    policy = ClinicalPolicy(iv_min_observation_minutes=60, esketamine_min_observation_minutes=90)
    assert found(now=ENDED + minutes(59, 59), policy=policy) == NOT_DONE
    assert found(now=ENDED + minutes(60), policy=policy) == {}
    assert found(ESK, START + minutes(90), policy=policy) == {}


# --- pre-discharge vitals -----------------------------------------------------------------------

MISSING = {"DISCHARGE_VITALS_MISSING": Severity.ABSOLUTE}
OUT = {"DISCHARGE_VITALS_OUT_OF_RANGE": Severity.NEEDS_PHYSICIAN}


@pytest.mark.parametrize("last_vitals", [
    None,
    vitals(spo2=None),
    vitals(systolic=None),
    vitals(heart_rate=None),
    vitals(at=ENDED - SECOND),          # during the infusion
    vitals(at=START - minutes(10)),     # the pre-start set
])
def test_iv_pre_discharge_vitals_must_be_recorded_after_the_infusion_ends(last_vitals):
    assert found(last_vitals=last_vitals) == MISSING


def test_iv_vitals_at_the_moment_the_infusion_ends_count():
    assert found(last_vitals=vitals(at=ENDED)) == {}


@pytest.mark.parametrize("taken_after_dose,expected", [(minutes(-5), MISSING), (minutes(0), MISSING),
                                                       (minutes(0, 1), {}), (minutes(45), {})])
def test_esketamine_pre_discharge_vitals_must_be_taken_after_the_dose(taken_after_dose, expected):
    assert found(ESK, ESK_READY, last_vitals=vitals(at=START + taken_after_dose)) == expected


@pytest.mark.parametrize("values,expected", [
    ({"systolic": 139}, {}),
    ({"systolic": 140}, {}),     # on the limit: within policy
    ({"systolic": 141}, OUT),
    ({"diastolic": 89}, {}),
    ({"diastolic": 90}, {}),
    ({"diastolic": 91}, OUT),
    ({"heart_rate": 49}, OUT),
    ({"heart_rate": 50}, {}),
    ({"heart_rate": 51}, {}),
    ({"heart_rate": 119}, {}),
    ({"heart_rate": 120}, {}),
    ({"heart_rate": 121}, OUT),
    ({"spo2": 94}, OUT),
    ({"spo2": 95}, {}),
    ({"spo2": 96}, {}),
])
def test_pre_discharge_vitals_outside_policy_need_a_physician(values, expected):
    assert found(last_vitals=vitals(**values)) == expected


def test_out_of_range_vitals_are_one_finding_naming_each_problem():
    (finding,) = evaluate_discharge(replace(IV, last_vitals=vitals(systolic=150, heart_rate=130, spo2=93)),
                                    now=IV_READY, policy=DEFAULT_POLICY)
    assert finding.message == ("Blood pressure 150/78: systolic 150 is above 140. Heart rate 130 is outside 50–120. "
                               "SpO2 93% is below 95%. A physician must sign off before discharge.")
    assert finding.values == {"systolic": 150, "diastolic": 78, "heart_rate": 130, "spo2": 93}


def test_a_physician_sign_off_clears_out_of_range_vitals():
    findings = evaluate_discharge(replace(IV, last_vitals=vitals(systolic=150)), now=IV_READY, policy=DEFAULT_POLICY)
    assert not may_proceed(findings, ())
    sign_off = Override("DISCHARGE_VITALS_OUT_OF_RANGE", "physician", "Baseline hypertension, asymptomatic")
    assert may_proceed(findings, (sign_off,))


def test_vitals_limits_come_from_the_policy():
    policy = ClinicalPolicy(bp_soft_systolic=150, bp_soft_diastolic=95, hr_low=40, hr_high=130, spo2_min=92)
    assert found(last_vitals=vitals(systolic=150, diastolic=95, heart_rate=40, spo2=92), policy=policy) == {}
    assert found(last_vitals=vitals(systolic=151), policy=policy) == OUT
    assert found(last_vitals=vitals(heart_rate=131), policy=policy) == OUT


# --- mental status, escort, instructions, condition ---------------------------------------------

@pytest.mark.parametrize("moaas,expected", [
    (5, {}),
    (4, {"MENTAL_STATUS_NOT_BASELINE": Severity.NEEDS_PHYSICIAN}),
    (3, {"MENTAL_STATUS_NOT_BASELINE": Severity.NEEDS_PHYSICIAN}),
    (0, {"MENTAL_STATUS_NOT_BASELINE": Severity.NEEDS_PHYSICIAN}),
    (None, {"MENTAL_STATUS_NOT_RECORDED": Severity.ABSOLUTE}),
])
def test_mental_status_must_be_back_to_baseline_or_signed_off(moaas, expected):
    assert found(moaas=moaas) == expected


def test_baseline_moaas_comes_from_the_policy():
    assert found(moaas=4, policy=ClinicalPolicy(baseline_moaas=4)) == {}


@pytest.mark.parametrize("changes,code", [
    ({"escort_present": False}, "ESCORT_NOT_PRESENT"),
    ({"escort_present": None}, "ESCORT_NOT_PRESENT"),
    ({"instructions_given": False}, "INSTRUCTIONS_NOT_GIVEN"),
    ({"instructions_given": None}, "INSTRUCTIONS_NOT_GIVEN"),
    ({"condition_at_discharge": ""}, "DISCHARGE_CONDITION_MISSING"),
    ({"condition_at_discharge": "   "}, "DISCHARGE_CONDITION_MISSING"),
])
def test_escort_instructions_and_condition_are_absolute(changes, code):
    assert found(**changes) == {code: Severity.ABSOLUTE}


def test_absolute_findings_stop_discharge_even_with_a_physician_override():
    findings = evaluate_discharge(replace(IV, escort_present=False), now=IV_READY, policy=DEFAULT_POLICY)
    assert not may_proceed(findings, (Override("ESCORT_NOT_PRESENT", "physician", "Taxi booked for the patient"),))


def test_everything_missing_lists_every_finding():
    bare = replace(IV, last_vitals=None, moaas=None, escort_present=None, instructions_given=None,
                   condition_at_discharge="")
    assert set(found(bare, ENDED)) == {"OBSERVATION_NOT_COMPLETE", "DISCHARGE_VITALS_MISSING",
                                       "MENTAL_STATUS_NOT_RECORDED", "ESCORT_NOT_PRESENT",
                                       "INSTRUCTIONS_NOT_GIVEN", "DISCHARGE_CONDITION_MISSING"}


def test_instructions_cover_driving_decisions_alcohol_and_the_emergency_number():
    text = " ".join(DISCHARGE_INSTRUCTIONS).lower()
    assert all(word in text for word in ("driving", "24 hours", "decisions", "alcohol", "emergency"))
    assert discharge_instructions("iv") == DISCHARGE_INSTRUCTIONS
    assert discharge_instructions("esketamine") == ESKETAMINE_DISCHARGE_INSTRUCTIONS
    assert "next day" in ESKETAMINE_DISCHARGE_INSTRUCTIONS[0]


def test_unknown_route_raises():
    with pytest.raises(ValueError):
        evaluate_discharge(replace(IV, route="oral"), now=IV_READY, policy=DEFAULT_POLICY)


# --- which findings the discharge form's answers clear (issue 8: no control the server refuses) ---

def _finding(code):
    return Finding(code, Severity.ABSOLUTE, code)


@pytest.mark.parametrize("code,answers,waits,to_answer", [
    ("OBSERVATION_NOT_COMPLETE", {}, True, False),
    ("DISCHARGE_VITALS_MISSING", {}, True, False),
    ("DISCHARGE_VITALS_OUT_OF_RANGE", {}, True, False),
    ("ALERT_UNACKNOWLEDGED", {}, True, False),
    ("MENTAL_STATUS_NOT_RECORDED", {"moaas": None}, False, True),
    ("MENTAL_STATUS_NOT_BASELINE", {"moaas": 4}, False, False),      # answered: a physician signs off
    ("ESCORT_NOT_PRESENT", {"escort_present": None}, False, True),
    ("ESCORT_NOT_PRESENT", {"escort_present": False}, False, False),  # answered "no": still the form's
    ("INSTRUCTIONS_NOT_GIVEN", {"instructions_given": None}, False, True),
    ("INSTRUCTIONS_NOT_GIVEN", {"instructions_given": False}, False, False),
    ("DISCHARGE_CONDITION_MISSING", {"condition": ""}, False, True),
    ("DISCHARGE_CONDITION_MISSING", {"condition": None}, False, True),
])
def test_the_discharge_waits_only_on_findings_no_answer_can_clear(code, answers, waits, to_answer):
    finding = _finding(code)
    assert (waiting_on((finding,)) == (finding,)) is waits
    assert (unanswered((finding,), answers) == (finding,)) is to_answer
