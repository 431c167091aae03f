"""Pre-session checklist rules, table-first: just inside, on, and just outside every threshold. No app."""
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from opsmgr.rules.checklist import (
    FLAGGED_MEDICATION_CLASSES,
    MEDICATION_CLASSES,
    ChecklistAnswers,
    MedicationChange,
    Vitals,
    evaluate_readiness,
    is_answered_in_the_form,
    required_tasks,
)
from opsmgr.rules.findings import Outcome, Override, Severity, may_proceed, open_findings, outcome_of
from opsmgr.rules.policy import DEFAULT_POLICY, ClinicalPolicy

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
VITALS = Vitals(systolic=122, diastolic=78, heart_rate=72, spo2=98, temperature_c=36.8, respiratory_rate=14,
                taken_at=NOW - 5 * MINUTE)
CLEAR = ChecklistAnswers(
    route="iv", vitals=VITALS, weight_kg=70.0, medication_changes=(), new_diagnoses=False,
    pregnancy_possible=True, pregnancy_status="test_negative", cardio_cerebrovascular_event=False,
    psychosis_symptoms=False, mania_symptoms=False, substance_use_in_window=False, vascular_contraindication=None,
    last_solid_food_at=NOW - timedelta(hours=8), last_clear_liquid_at=NOW - timedelta(hours=3),
    escort_name="Sam Rivera", escort_phone="+1 555 0100", consent_on_file=True, consent_reconfirmed=True,
    phq9_items=(2, 2, 1, 2, 1, 1, 1, 0, 0), phq9_difficulty=1, gad7_items=(1, 1, 1, 1, 0, 0, 1),
    suicide_risk="negative", willingness="yes", intention="To feel like myself again.",
)
CLEAR_ESKETAMINE = replace(CLEAR, route="esketamine", vascular_contraindication=False)


def answers(base=CLEAR, **changes):
    return replace(base, **changes)


def vitals(**changes):
    return replace(VITALS, **changes)


def evaluate(a, policy=DEFAULT_POLICY):
    return evaluate_readiness(a, now=NOW, policy=policy)


def codes(a, policy=DEFAULT_POLICY):
    return [f.code for f in evaluate(a, policy)]


def stopping(a, policy=DEFAULT_POLICY):
    return {f.code: f.severity for f in evaluate(a, policy) if f.stops_start}


def only(a, code):
    [finding] = [f for f in evaluate(a) if f.code == code]
    return finding


# --------------------------------------------------------------------------------------------
# A clear checklist
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("base", [CLEAR, CLEAR_ESKETAMINE], ids=["iv", "esketamine"])
def test_a_clear_checklist_is_cleared_with_only_information(base):
    findings = evaluate(base)
    assert outcome_of(findings) == Outcome.CLEARED
    assert [f.code for f in findings] == ["PHQ9_SCORE", "GAD7_SCORE"]
    assert not open_findings(findings, ())
    assert required_tasks(findings) == ()


def test_scores_are_reported_with_totals_and_bands():
    findings = {f.code: f for f in evaluate(CLEAR)}
    assert findings["PHQ9_SCORE"].values == {"total": 10, "band": "moderate", "item9": 0, "difficulty": 1}
    assert findings["GAD7_SCORE"].values == {"total": 5, "band": "mild"}


# --------------------------------------------------------------------------------------------
# Vitals: staleness, BP, heart rate, SpO2
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("age,stale", [
    (30 * MINUTE - SECOND, False),
    (30 * MINUTE, False),
    (30 * MINUTE + SECOND, True),
    (timedelta(0), False),
])
def test_vitals_are_stale_one_instant_after_thirty_minutes(age, stale):
    found = stopping(answers(vitals=vitals(taken_at=NOW - age)))
    assert found == ({"VITALS_STALE": Severity.ABSOLUTE} if stale else {})


def test_stale_vitals_say_how_old_they_are():
    finding = only(answers(vitals=vitals(taken_at=NOW - 45 * MINUTE)), "VITALS_STALE")
    assert finding.values == {"age_minutes": 45, "max_age_minutes": 30}


def test_vitals_timed_in_the_future_are_refused():
    assert stopping(answers(vitals=vitals(taken_at=NOW + SECOND))) == {"VITALS_TIME_IN_FUTURE": Severity.ABSOLUTE}


@pytest.mark.parametrize("systolic,diastolic,expected", [
    (140, 80, None),
    (141, 80, "BP_SOFT_GATE"),
    (179, 80, "BP_SOFT_GATE"),
    (180, 80, "BP_HARD_GATE"),
    (181, 80, "BP_HARD_GATE"),
    (120, 90, None),
    (120, 91, "BP_SOFT_GATE"),
    (120, 99, "BP_SOFT_GATE"),
    (120, 100, "BP_HARD_GATE"),
    (120, 101, "BP_HARD_GATE"),
    (140, 90, None),
    (150, 95, "BP_SOFT_GATE"),
    (185, 112, "BP_HARD_GATE"),       # both gates apply: only the hard one is reported
    (130, 100, "BP_HARD_GATE"),
])
def test_blood_pressure_gates(systolic, diastolic, expected):
    found = stopping(answers(vitals=vitals(systolic=systolic, diastolic=diastolic)))
    severity = {"BP_SOFT_GATE": Severity.NEEDS_PHYSICIAN, "BP_HARD_GATE": Severity.BLOCK}
    assert found == ({expected: severity[expected]} if expected else {})


@pytest.mark.parametrize("systolic,diastolic,message", [
    # The component at or above its limit is named, never the whole reading against the whole limit.
    (185, 95, "Blood pressure 185/95: systolic 185 is at or above 180. Do not start; call the physician."),
    (165, 100, "Blood pressure 165/100: diastolic 100 is at or above 100. Do not start; call the physician."),
    (185, 112, "Blood pressure 185/112: systolic 185 is at or above 180 and diastolic 112 is at or above 100. "
               "Do not start; call the physician."),
    (150, 85, "Blood pressure 150/85: systolic 150 is above 140. A physician must review before the dose."),
    (130, 95, "Blood pressure 130/95: diastolic 95 is above 90. A physician must review before the dose."),
    (150, 95, "Blood pressure 150/95: systolic 150 is above 140 and diastolic 95 is above 90. "
              "A physician must review before the dose."),
])
def test_bp_message_names_each_component_over_its_limit(systolic, diastolic, message):
    (finding,) = [f for f in evaluate(answers(vitals=vitals(systolic=systolic, diastolic=diastolic)))
                  if f.code.startswith("BP_")]
    assert finding.message == message


@pytest.mark.parametrize("changes,code,in_the_form", [
    ({"weight_kg": None}, "WEIGHT_UNANSWERED", True),                        # answer below
    ({"escort_name": "", "escort_phone": ""}, "ESCORT_MISSING", True),        # the escort's fields are below
    ({"vitals": vitals(systolic=185)}, "BP_HARD_GATE", False),               # a physician, not the form
    ({"consent_reconfirmed": False}, "CONSENT_NOT_RECONFIRMED", False),      # answered: a stop, not a question
])
def test_findings_the_form_below_answers(changes, code, in_the_form):
    assert is_answered_in_the_form(only(answers(**changes), code)) is in_the_form


def test_bp_finding_carries_the_reading_and_the_limits():
    finding = only(answers(vitals=vitals(systolic=150, diastolic=95)), "BP_SOFT_GATE")
    assert finding.values == {"systolic": 150, "diastolic": 95, "soft_systolic": 140, "soft_diastolic": 90}
    assert "150/95" in finding.message


@pytest.mark.parametrize("heart_rate,flagged", [
    (49, True), (50, False), (51, False), (119, False), (120, False), (121, True),
])
def test_heart_rate_gate(heart_rate, flagged):
    found = stopping(answers(vitals=vitals(heart_rate=heart_rate)))
    assert found == ({"HEART_RATE_OUT_OF_RANGE": Severity.NEEDS_PHYSICIAN} if flagged else {})


@pytest.mark.parametrize("spo2,flagged", [(94, True), (95, False), (96, False)])
def test_spo2_gate(spo2, flagged):
    found = stopping(answers(vitals=vitals(spo2=spo2)))
    assert found == ({"SPO2_LOW": Severity.NEEDS_PHYSICIAN} if flagged else {})


# --------------------------------------------------------------------------------------------
# Fasting
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("base,field,minutes,expected", [
    (CLEAR, "last_solid_food_at", 359, "FASTING_SOLIDS_SHORT"),
    (CLEAR, "last_solid_food_at", 360, None),
    (CLEAR, "last_solid_food_at", 361, None),
    (CLEAR, "last_clear_liquid_at", 119, "FASTING_LIQUIDS_SHORT"),
    (CLEAR, "last_clear_liquid_at", 120, None),
    (CLEAR, "last_clear_liquid_at", 121, None),
    (CLEAR_ESKETAMINE, "last_solid_food_at", 119, "FASTING_SOLIDS_SHORT"),
    (CLEAR_ESKETAMINE, "last_solid_food_at", 120, None),
    (CLEAR_ESKETAMINE, "last_solid_food_at", 121, None),
    (CLEAR_ESKETAMINE, "last_clear_liquid_at", 29, "FASTING_LIQUIDS_SHORT"),
    (CLEAR_ESKETAMINE, "last_clear_liquid_at", 30, None),
    (CLEAR_ESKETAMINE, "last_clear_liquid_at", 31, None),
], ids=lambda v: v.route if isinstance(v, ChecklistAnswers) else None)
def test_fasting_times_by_route(base, field, minutes, expected):
    found = stopping(answers(base, **{field: NOW - minutes * MINUTE}))
    assert found == ({expected: Severity.NEEDS_PHYSICIAN} if expected else {})


@pytest.mark.parametrize("base,field,required", [
    (CLEAR, "last_solid_food_at", 360), (CLEAR, "last_clear_liquid_at", 120),
    (CLEAR_ESKETAMINE, "last_solid_food_at", 120), (CLEAR_ESKETAMINE, "last_clear_liquid_at", 30),
])
def test_short_fast_says_minutes_since_and_required(base, field, required):
    [finding] = [f for f in evaluate(answers(base, **{field: NOW - 10 * MINUTE})) if f.stops_start]
    assert finding.values == {"item": field, "minutes_since": 10, "required_minutes": required}


@pytest.mark.parametrize("field", ["last_solid_food_at", "last_clear_liquid_at"])
def test_a_fasting_time_in_the_future_is_refused(field):
    finding = only(answers(**{field: NOW + MINUTE}), "FASTING_TIME_IN_FUTURE")
    assert (finding.severity, finding.values["item"]) == (Severity.ABSOLUTE, field)


# --------------------------------------------------------------------------------------------
# Medication changes and the contraindication recheck
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change", ["started", "stopped"])
@pytest.mark.parametrize("med_class", sorted(MEDICATION_CLASSES))
def test_medication_changes_flag_the_listed_classes(med_class, change):
    findings = evaluate(answers(medication_changes=(MedicationChange("Drug X", med_class, change),)))
    [finding] = [f for f in findings if f.code.startswith("MEDICATION_CHANGE")]
    flagged = med_class in FLAGGED_MEDICATION_CLASSES
    assert finding.code == ("MEDICATION_CHANGE_FLAGGED" if flagged else "MEDICATION_CHANGE")
    assert finding.severity == (Severity.NEEDS_PHYSICIAN if flagged else Severity.INFO)
    assert finding.values == {"name": "Drug X", "med_class": med_class, "change": change}
    assert "Drug X" in finding.message


def test_flagged_classes_are_the_six_the_reference_names():
    assert sorted(FLAGGED_MEDICATION_CLASSES) == [
        "benzodiazepine", "lamotrigine", "maoi", "opioid", "psychostimulant", "sedative_hypnotic"]


def test_each_medication_change_gives_its_own_finding():
    changes = (MedicationChange("Lorazepam", "benzodiazepine", "started"),
               MedicationChange("Lamotrigine", "lamotrigine", "stopped"),
               MedicationChange("Sertraline", "ssri_snri", "started"))
    found = [(f.code, f.values["name"]) for f in evaluate(answers(medication_changes=changes))
             if f.code.startswith("MEDICATION")]
    assert found == [("MEDICATION_CHANGE_FLAGGED", "Lorazepam"), ("MEDICATION_CHANGE_FLAGGED", "Lamotrigine"),
                     ("MEDICATION_CHANGE", "Sertraline")]


@pytest.mark.parametrize("field,code,severity", [
    ("new_diagnoses", "NEW_DIAGNOSES", Severity.NEEDS_PHYSICIAN),
    ("cardio_cerebrovascular_event", "CARDIO_CEREBROVASCULAR_EVENT", Severity.NEEDS_PHYSICIAN),
    ("psychosis_symptoms", "PSYCHOSIS_SYMPTOMS", Severity.ABSOLUTE),
    ("mania_symptoms", "MANIA_SYMPTOMS", Severity.NEEDS_PHYSICIAN),
    ("substance_use_in_window", "SUBSTANCE_USE_RECENT", Severity.NEEDS_PHYSICIAN),
])
@pytest.mark.parametrize("answer", [True, False])
def test_recheck_question_yes_gives_its_finding(field, code, severity, answer):
    assert stopping(answers(**{field: answer})) == ({code: severity} if answer else {})


def test_substance_use_finding_names_the_window():
    finding = only(answers(substance_use_in_window=True), "SUBSTANCE_USE_RECENT")
    assert finding.values["window_hours"] == 24 and "24 hours" in finding.message
    policy = replace(DEFAULT_POLICY, substance_window_hours=12)
    [finding] = [f for f in evaluate(answers(substance_use_in_window=True), policy) if f.stops_start]
    assert finding.values["window_hours"] == 12


@pytest.mark.parametrize("possible,status,expected", [
    (True, "positive", {"PREGNANCY_POSITIVE": Severity.ABSOLUTE}),
    (True, "unknown", {"PREGNANCY_STATUS_UNKNOWN": Severity.NEEDS_PHYSICIAN}),
    (True, "test_negative", {}),
    (True, "reported_not_pregnant", {}),
    (True, None, {"PREGNANCY_STATUS_UNANSWERED": Severity.ABSOLUTE}),
    (False, None, {}),
    (False, "unknown", {}),
])
def test_pregnancy_status(possible, status, expected):
    assert stopping(answers(pregnancy_possible=possible, pregnancy_status=status)) == expected


def test_a_reported_but_untested_pregnancy_status_is_noted():
    assert only(answers(pregnancy_status="reported_not_pregnant"), "PREGNANCY_NOT_TESTED").severity == Severity.INFO


@pytest.mark.parametrize("base,answer,expected", [
    (CLEAR_ESKETAMINE, True, {"VASCULAR_CONTRAINDICATION": Severity.ABSOLUTE}),
    (CLEAR_ESKETAMINE, False, {}),
    (CLEAR_ESKETAMINE, None, {"VASCULAR_CONTRAINDICATION_UNANSWERED": Severity.ABSOLUTE}),
    (CLEAR, None, {}),                         # not asked for IV
    (CLEAR, False, {}),
    (CLEAR, True, {"VASCULAR_CONDITION_REPORTED": Severity.NEEDS_PHYSICIAN}),
], ids=["esk-yes", "esk-no", "esk-unanswered", "iv-not-asked", "iv-no", "iv-yes"])
def test_vascular_contraindication(base, answer, expected):
    assert stopping(answers(base, vascular_contraindication=answer)) == expected


# --------------------------------------------------------------------------------------------
# Escort, consent, scales, suicide risk, willingness
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,phone,missing", [
    ("Sam Rivera", "+1 555 0100", False),
    ("", "+1 555 0100", True),
    ("Sam Rivera", "", True),
    ("   ", "+1 555 0100", True),
    ("Sam Rivera", " \t", True),
    ("", "", True),
])
def test_escort_needs_a_name_and_a_phone(name, phone, missing):
    found = stopping(answers(escort_name=name, escort_phone=phone))
    assert found == ({"ESCORT_MISSING": Severity.ABSOLUTE} if missing else {})


ARRANGED = {"ESCORT_ALTERNATIVE_ARRANGEMENT": Severity.BLOCK}
MISSING = {"ESCORT_MISSING": Severity.ABSOLUTE}


@pytest.mark.parametrize("name,phone,arrangement,expected", [
    ("", "", None, MISSING),                                     # nothing answered
    ("", "", "", MISSING),
    ("", "", "Taxi", MISSING),                                   # 4 characters: just outside "a few words"
    ("", "", " T a x i \t", MISSING),                            # spaces are not counted
    ("", "", "Taxi!", ARRANGED),                                 # 5 characters: just inside
    ("", "", "Medical transport booked, Ride Co., pick-up 14:00", ARRANGED),
    ("Sam Rivera", "", "Medical transport booked", ARRANGED),    # half an escort and a way home
    ("Sam Rivera", "+1 555 0100", None, {}),
    ("Sam Rivera", "+1 555 0100", "Medical transport booked", {}),  # an escort with a phone is enough
], ids=["none", "empty", "taxi-4", "spaced-4", "taxi-5", "transport", "half-escort", "escort", "escort-wins"])
def test_no_escort_today_with_another_way_home_is_blocked_not_absolute(name, phone, arrangement, expected):
    assert stopping(answers(escort_name=name, escort_phone=phone, escort_arrangement=arrangement)) == expected


def test_the_arrangement_is_in_the_finding_so_an_override_covers_that_arrangement():
    text = "Medical transport booked, Ride Co., pick-up 14:00"
    finding = only(answers(escort_name="", escort_phone="", escort_arrangement=f"  {text} "),
                   "ESCORT_ALTERNATIVE_ARRANGEMENT")
    assert finding.values == {"arrangement": text} and text in finding.message
    assert outcome_of((finding,)) == Outcome.BLOCKED
    assert not may_proceed((finding,), ())
    assert not may_proceed((finding,), (Override(finding.code, "nurse", "Transport is booked"),))
    assert may_proceed((finding,), (Override(finding.code, "physician", "Transport confirmed by phone"),))


def test_a_clinic_that_accepts_no_other_way_home_makes_the_arrangement_not_allowed():
    strict = ClinicalPolicy(severities={"ESCORT_ALTERNATIVE_ARRANGEMENT": "absolute"})
    findings = evaluate(answers(escort_name="", escort_phone="", escort_arrangement="Medical transport"), strict)
    assert {f.code: f.severity for f in findings if f.stops_start} == {
        "ESCORT_ALTERNATIVE_ARRANGEMENT": Severity.ABSOLUTE}
    assert not may_proceed(findings, (Override("ESCORT_ALTERNATIVE_ARRANGEMENT", "physician", "Transport ok"),))


@pytest.mark.parametrize("on_file,reconfirmed,expected", [
    (True, True, {}),
    (False, True, {"CONSENT_NOT_ON_FILE": Severity.ABSOLUTE}),
    (True, False, {"CONSENT_NOT_RECONFIRMED": Severity.ABSOLUTE}),
    (False, False, {"CONSENT_NOT_ON_FILE": Severity.ABSOLUTE, "CONSENT_NOT_RECONFIRMED": Severity.ABSOLUTE}),
    (True, None, {"CONSENT_RECONFIRMED_UNANSWERED": Severity.ABSOLUTE}),
])
def test_consent_on_file_and_reconfirmed_today(on_file, reconfirmed, expected):
    assert stopping(answers(consent_on_file=on_file, consent_reconfirmed=reconfirmed)) == expected


@pytest.mark.parametrize("item9,positive", [(0, False), (1, True), (3, True)])
def test_phq9_item9_above_zero_needs_a_physician_and_a_same_day_task(item9, positive):
    findings = evaluate(answers(phq9_items=(1, 1, 1, 1, 1, 1, 1, 1, item9)))
    assert {f.code: f.severity for f in findings if f.stops_start} == (
        {"PHQ9_ITEM9_POSITIVE": Severity.NEEDS_PHYSICIAN} if positive else {})
    assert required_tasks(findings) == (("same_day_physician_review",) if positive else ())
    if positive:
        assert only(answers(phq9_items=(1,) * 8 + (item9,)), "PHQ9_ITEM9_POSITIVE").values == {
            "item9": item9, "threshold": 0, "task": "same_day_physician_review"}


#: (threshold, PHQ-9 items, does PHQ9_ITEM9_POSITIVE fire?): item 9 alone decides, answered or not the rest.
ITEM9_CASES = [
    (0, (1,) * 8 + (0,), False),                     # on the default threshold: 0 is not above 0
    (0, (1,) * 8 + (1,), True),                      # just outside
    (1, (1,) * 8 + (0,), False),                     # just inside a raised threshold
    (1, (1,) * 8 + (1,), False),                     # on it
    (1, (1,) * 8 + (2,), True),                      # just outside it
    (0, (None,) * 8 + (0,), False),                  # only item 9 answered: on
    (0, (None,) * 8 + (1,), True),                   # only item 9 answered: just outside
    (0, (1, 1, 1, None, 1, 1, 1, 1, 2), True),       # one other item missing
    (1, (None,) * 8 + (1,), False),                  # partial, on a raised threshold
    (1, (None,) * 8 + (2,), True),                   # partial, just outside it
    (0, (3,) * 8 + (None,), False),                  # item 9 itself not answered yet
    (0, None, False),                                # nothing answered yet
]


@pytest.mark.parametrize("threshold,items,fires", ITEM9_CASES)
def test_phq9_item9_above_the_threshold_fires_as_soon_as_item9_is_answered(threshold, items, fires):
    findings = evaluate(answers(phq9_items=items), ClinicalPolicy(phq9_item9_threshold=threshold))
    positive = [f for f in findings if f.code == "PHQ9_ITEM9_POSITIVE"]
    assert bool(positive) is fires
    assert required_tasks(findings) == (("same_day_physician_review",) if fires else ())
    if fires:
        assert positive[0].severity == Severity.NEEDS_PHYSICIAN
        assert positive[0].values == {"item9": items[8], "threshold": threshold, "task": "same_day_physician_review"}
    complete = items is not None and None not in items
    assert ("PHQ9_UNANSWERED" in [f.code for f in findings]) is not complete, "a partial PHQ-9 stays unanswered"


def test_a_partly_answered_phq9_with_item9_needs_the_physician_and_still_blocks_until_complete():
    findings = evaluate(answers(phq9_items=(None,) * 8 + (2,), phq9_difficulty=None))
    assert stopping(answers(phq9_items=(None,) * 8 + (2,), phq9_difficulty=None)) == {
        "PHQ9_UNANSWERED": Severity.ABSOLUTE, "PHQ9_ITEM9_POSITIVE": Severity.NEEDS_PHYSICIAN}
    assert outcome_of(findings) == Outcome.BLOCKED


@pytest.mark.parametrize("items", [(None,) * 8 + (4,), (None,) * 8 + (-1,), (None,) * 8 + ("1",), (None,) * 8])
def test_an_impossible_item9_in_a_partial_phq9_is_a_programming_error(items):
    with pytest.raises(ValueError):
        evaluate(answers(phq9_items=items))


def test_phq9_difficulty_is_required_once_any_problem_is_checked():
    assert stopping(answers(phq9_difficulty=None)) == {"PHQ9_DIFFICULTY_UNANSWERED": Severity.ABSOLUTE}
    assert stopping(answers(phq9_items=(0,) * 9, phq9_difficulty=None)) == {}


@pytest.mark.parametrize("risk,expected", [
    ("negative", {}),
    ("low", {}),
    ("moderate", {"SUICIDE_RISK_ELEVATED": Severity.BLOCK}),
    ("high", {"SUICIDE_RISK_ELEVATED": Severity.BLOCK}),
    (None, {"SUICIDE_RISK_UNANSWERED": Severity.ABSOLUTE}),
])
def test_suicide_risk_screen(risk, expected):
    assert stopping(answers(suicide_risk=risk)) == expected


def test_elevated_suicide_risk_calls_the_physician_and_low_risk_is_recorded():
    assert required_tasks(evaluate(answers(suicide_risk="high"))) == ("call_physician",)
    assert only(answers(suicide_risk="low"), "SUICIDE_RISK_LOW").severity == Severity.INFO


@pytest.mark.parametrize("willingness,expected", [
    ("yes", {}),
    ("unsure", {"WILLINGNESS_NOT_CONFIRMED": Severity.NEEDS_PHYSICIAN}),
    ("no", {"WILLINGNESS_NOT_CONFIRMED": Severity.NEEDS_PHYSICIAN}),
    (None, {"WILLINGNESS_UNANSWERED": Severity.ABSOLUTE}),
])
def test_willingness_today(willingness, expected):
    assert stopping(answers(willingness=willingness)) == expected


# --------------------------------------------------------------------------------------------
# Nothing defaults: every unanswered item is an absolute finding
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("base,field,code", [
    (CLEAR, "vitals", "VITALS_UNANSWERED"),
    (CLEAR, "weight_kg", "WEIGHT_UNANSWERED"),
    (CLEAR, "medication_changes", "MEDICATION_CHANGES_UNANSWERED"),
    (CLEAR, "new_diagnoses", "NEW_DIAGNOSES_UNANSWERED"),
    (CLEAR, "pregnancy_possible", "PREGNANCY_POSSIBLE_UNANSWERED"),
    (CLEAR, "pregnancy_status", "PREGNANCY_STATUS_UNANSWERED"),
    (CLEAR, "cardio_cerebrovascular_event", "CARDIO_CEREBROVASCULAR_EVENT_UNANSWERED"),
    (CLEAR, "psychosis_symptoms", "PSYCHOSIS_SYMPTOMS_UNANSWERED"),
    (CLEAR, "mania_symptoms", "MANIA_SYMPTOMS_UNANSWERED"),
    (CLEAR, "substance_use_in_window", "SUBSTANCE_USE_IN_WINDOW_UNANSWERED"),
    (CLEAR_ESKETAMINE, "vascular_contraindication", "VASCULAR_CONTRAINDICATION_UNANSWERED"),
    (CLEAR, "last_solid_food_at", "LAST_SOLID_FOOD_AT_UNANSWERED"),
    (CLEAR, "last_clear_liquid_at", "LAST_CLEAR_LIQUID_AT_UNANSWERED"),
    (CLEAR, "consent_reconfirmed", "CONSENT_RECONFIRMED_UNANSWERED"),
    (CLEAR, "phq9_items", "PHQ9_UNANSWERED"),
    (CLEAR, "phq9_difficulty", "PHQ9_DIFFICULTY_UNANSWERED"),
    (CLEAR, "gad7_items", "GAD7_UNANSWERED"),
    (CLEAR, "suicide_risk", "SUICIDE_RISK_UNANSWERED"),
    (CLEAR, "willingness", "WILLINGNESS_UNANSWERED"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_each_unanswered_item_is_absolute(base, field, code):
    findings = evaluate(answers(base, **{field: None}))
    assert {f.code: f.severity for f in findings if f.stops_start} == {code: Severity.ABSOLUTE}
    assert outcome_of(findings) == Outcome.BLOCKED


@pytest.mark.parametrize("field", ["systolic", "diastolic", "heart_rate", "spo2", "temperature_c",
                                   "respiratory_rate", "taken_at"])
def test_each_missing_vital_sign_is_unanswered(field):
    finding = only(answers(vitals=vitals(**{field: None})), "VITALS_UNANSWERED")
    assert (finding.severity, finding.values["missing"]) == (Severity.ABSOLUTE, field)


@pytest.mark.parametrize("field,items,answered", [
    ("phq9_items", (1, 1, 1, None, 1, 1, 1, 1, 0), 8),
    ("gad7_items", (None,) * 7, 0),
])
def test_a_partly_answered_scale_is_unanswered(field, items, answered):
    [finding] = [f for f in evaluate(answers(**{field: items})) if f.stops_start]
    assert finding.code.endswith("_UNANSWERED") and finding.values["answered"] == answered


def test_an_empty_checklist_is_blocked_by_every_item():
    empty = ChecklistAnswers(
        route="esketamine", vitals=None, weight_kg=None, medication_changes=None, new_diagnoses=None,
        pregnancy_possible=True, pregnancy_status=None, cardio_cerebrovascular_event=None,
        psychosis_symptoms=None, mania_symptoms=None, substance_use_in_window=None, vascular_contraindication=None,
        last_solid_food_at=None, last_clear_liquid_at=None, escort_name="", escort_phone="",
        consent_on_file=False, consent_reconfirmed=None, phq9_items=None, phq9_difficulty=None, gad7_items=None,
        suicide_risk=None, willingness=None, intention="",
    )
    findings = evaluate(empty)
    assert all(f.severity == Severity.ABSOLUTE for f in findings)
    assert [f.code for f in findings] == [
        "VITALS_UNANSWERED", "WEIGHT_UNANSWERED", "MEDICATION_CHANGES_UNANSWERED", "NEW_DIAGNOSES_UNANSWERED",
        "CARDIO_CEREBROVASCULAR_EVENT_UNANSWERED", "PSYCHOSIS_SYMPTOMS_UNANSWERED", "MANIA_SYMPTOMS_UNANSWERED",
        "SUBSTANCE_USE_IN_WINDOW_UNANSWERED", "PREGNANCY_STATUS_UNANSWERED", "VASCULAR_CONTRAINDICATION_UNANSWERED",
        "LAST_SOLID_FOOD_AT_UNANSWERED", "LAST_CLEAR_LIQUID_AT_UNANSWERED", "ESCORT_MISSING", "CONSENT_NOT_ON_FILE",
        "CONSENT_RECONFIRMED_UNANSWERED", "PHQ9_UNANSWERED", "GAD7_UNANSWERED", "SUICIDE_RISK_UNANSWERED",
        "WILLINGNESS_UNANSWERED",
    ]
    assert outcome_of(findings) == Outcome.BLOCKED


# --------------------------------------------------------------------------------------------
# Combined cases, overrides, the policy, and the shape of every finding
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes,outcome", [
    ({}, Outcome.CLEARED),
    ({"suicide_risk": "low", "medication_changes": (MedicationChange("Sertraline", "ssri_snri", "started"),)},
     Outcome.CLEARED),
    ({"vitals": vitals(systolic=150), "willingness": "unsure"}, Outcome.NEEDS_PHYSICIAN),
    ({"vitals": vitals(systolic=150, heart_rate=125), "phq9_items": (1,) * 9}, Outcome.NEEDS_PHYSICIAN),
    ({"vitals": vitals(systolic=150), "suicide_risk": "moderate"}, Outcome.BLOCKED),
    ({"vitals": vitals(systolic=185), "mania_symptoms": True}, Outcome.BLOCKED),
    ({"vitals": vitals(spo2=93), "escort_phone": ""}, Outcome.BLOCKED),
    ({"willingness": "no", "psychosis_symptoms": True}, Outcome.BLOCKED),
])
def test_combined_findings_give_the_worst_outcome(changes, outcome):
    assert outcome_of(evaluate(answers(**changes))) == outcome


def test_the_issue_path_150_over_95_is_cleared_by_a_physician_override():
    findings = evaluate(answers(vitals=vitals(systolic=150, diastolic=95)))
    assert outcome_of(findings) == Outcome.NEEDS_PHYSICIAN
    assert not may_proceed(findings, ())
    assert may_proceed(findings, (Override("BP_SOFT_GATE", "physician", "Known hypertensive, asymptomatic"),))


def test_absolute_findings_stay_open_despite_an_override():
    findings = evaluate(answers(escort_name=""))
    assert not may_proceed(findings, (Override("ESCORT_MISSING", "physician", "Taxi booked by the clinic"),))


@pytest.mark.parametrize("policy,outcome", [
    (DEFAULT_POLICY, Outcome.CLEARED),
    (ClinicalPolicy(bp_soft_systolic=130), Outcome.NEEDS_PHYSICIAN),
    (ClinicalPolicy(bp_hard_systolic=135), Outcome.BLOCKED),
])
def test_blood_pressure_limits_come_from_the_policy(policy, outcome):
    assert outcome_of(evaluate(answers(vitals=vitals(systolic=135)), policy)) == outcome


@pytest.mark.parametrize("policy,changes,code", [
    (ClinicalPolicy(hr_low=60), {"vitals": vitals(heart_rate=55)}, "HEART_RATE_OUT_OF_RANGE"),
    (ClinicalPolicy(spo2_min=99), {}, "SPO2_LOW"),
    (ClinicalPolicy(vitals_max_age_minutes=4), {}, "VITALS_STALE"),
    (ClinicalPolicy(iv_fast_solids_minutes=600), {}, "FASTING_SOLIDS_SHORT"),
    (ClinicalPolicy(iv_fast_liquids_minutes=240), {}, "FASTING_LIQUIDS_SHORT"),
])
def test_other_thresholds_come_from_the_policy(policy, changes, code):
    assert code not in codes(answers(**changes))
    assert code in codes(answers(**changes), policy)


def test_a_raised_item9_threshold_lets_item9_of_1_through():
    assert "PHQ9_ITEM9_POSITIVE" in codes(answers(phq9_items=(1,) * 9))
    assert "PHQ9_ITEM9_POSITIVE" not in codes(answers(phq9_items=(1,) * 9), ClinicalPolicy(phq9_item9_threshold=1))


@pytest.mark.parametrize("a", [
    CLEAR,
    answers(vitals=vitals(systolic=190, heart_rate=40, spo2=90, taken_at=NOW - timedelta(hours=1)),
            pregnancy_status="unknown", substance_use_in_window=True, suicide_risk="high", willingness="no",
            medication_changes=(MedicationChange("Diazepam", "benzodiazepine", "started"),),
            last_solid_food_at=NOW - MINUTE, phq9_items=(3,) * 9, consent_on_file=False),
    answers(CLEAR_ESKETAMINE, vascular_contraindication=True, vitals=None, escort_name=""),
], ids=["clear", "everything-wrong-iv", "esketamine"])
def test_every_finding_has_a_stable_code_a_plain_message_and_scalar_values(a):
    for finding in evaluate(a):
        assert re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*", finding.code)
        assert isinstance(finding.severity, Severity)
        assert finding.message and "{" not in finding.message
        assert all(isinstance(v, str | int | float | bool | None) for v in finding.values.values())


@pytest.mark.parametrize("changes", [
    {"route": "im"}, {"pregnancy_status": "maybe"}, {"suicide_risk": "severe"}, {"willingness": "yes please"},
])
def test_an_invalid_choice_is_a_programming_error(changes):
    with pytest.raises(ValueError):
        answers(**changes)


@pytest.mark.parametrize("med_class,change", [("ketamine", "started"), ("opioid", "increased")])
def test_an_invalid_medication_change_is_a_programming_error(med_class, change):
    with pytest.raises(ValueError):
        MedicationChange("Drug X", med_class, change)


def test_invalid_scale_items_are_a_programming_error():
    with pytest.raises(ValueError):
        evaluate(answers(phq9_items=(4,) * 9))
