"""Dose rules, table-first: the arithmetic, just inside, on and just outside every dose threshold,
the esketamine devices, and the controlled-substance balance. No app needed."""
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from opsmgr.rules.dosing import (
    ControlledSubstanceRecord,
    DoseCalculation,
    controlled_substance_problems,
    dose_findings,
    dose_order_problem,
    given_amount_problem,
    iv_dose,
    iv_dose_mg,
)
from opsmgr.rules.findings import Severity
from opsmgr.rules.policy import DEFAULT_POLICY, ClinicalPolicy

D = Decimal
TODAY = date(2026, 11, 26)


def iv(mg_per_kg="0.5", infusion_minutes=40, dose_mg="36.2", policy=DEFAULT_POLICY):
    found = dose_findings(route="iv", mg_per_kg=None if mg_per_kg is None else D(mg_per_kg),
                          infusion_minutes=infusion_minutes, dose_mg=None if dose_mg is None else D(dose_mg),
                          policy=policy)
    return {f.code: f.severity for f in found}


def esketamine(dose_mg, policy=DEFAULT_POLICY):
    found = dose_findings(route="esketamine", mg_per_kg=None, infusion_minutes=None, dose_mg=dose_mg, policy=policy)
    return {f.code: f.severity for f in found}


# --- arithmetic ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mg_per_kg,weight_kg,expected", [
    ("0.5", "72.4", "36.2"),     # the worked example
    ("0.5", "80", "40.0"),
    ("0.5", "72.5", "36.3"),     # 36.25: half-up (banker's rounding would give 36.2)
    ("0.25", "70.6", "17.7"),    # 17.65: half-up
    ("0.25", "70.2", "17.6"),    # 17.55
    ("0.5", "0.1", "0.1"),       # 0.05 rounds up to 0.1
    ("0.5", "0.09", "0.0"),      # 0.045 rounds down
    ("0.75", "100.3", "75.2"),   # 75.225
    ("1.0", "59.96", "60.0"),    # 59.96
])
def test_iv_dose_is_mg_per_kg_times_weight_rounded_half_up_to_a_tenth(mg_per_kg, weight_kg, expected):
    assert iv_dose_mg(D(mg_per_kg), D(weight_kg)) == D(expected)
    assert str(iv_dose_mg(D(mg_per_kg), D(weight_kg))) == expected


def test_floats_are_taken_at_their_written_value():
    assert iv_dose_mg(0.5, 72.4) == D("36.2")
    assert iv_dose_mg(0.1, 0.5) == D("0.1")  # 0.05 exactly, not 0.05000000000000000277


def test_the_calculation_returns_its_inputs():
    assert iv_dose("0.5", "72.4") == DoseCalculation(D("0.5"), D("72.4"), D("36.2"))


@pytest.mark.parametrize("mg_per_kg,weight_kg", [("0.5", "0"), ("0.5", "-70"), ("-0.1", "70")])
def test_impossible_inputs_raise(mg_per_kg, weight_kg):
    with pytest.raises(ValueError):
        iv_dose_mg(D(mg_per_kg), D(weight_kg))


# --- IV dose findings ---------------------------------------------------------------------------

OUTSIDE = {"DOSE_OUTSIDE_USUAL_RANGE": Severity.NEEDS_PHYSICIAN}
CEILING = {"DOSE_ABOVE_CEILING": Severity.BLOCK}


@pytest.mark.parametrize("mg_per_kg,expected", [
    ("0.09", OUTSIDE),   # just below the usual range
    ("0.1", {}),         # on its lower edge: inside
    ("0.11", {}),
    ("0.5", {}),
    ("0.74", {}),
    ("0.75", {}),        # on its upper edge: inside
    ("0.76", OUTSIDE),
    ("0.99", OUTSIDE),
    ("1.0", OUTSIDE),    # on the ceiling: not above it
    ("1.01", CEILING),   # above the ceiling replaces the usual-range finding
    ("2", CEILING),
    ("0", OUTSIDE),
])
def test_mg_per_kg_against_the_usual_range_and_the_ceiling(mg_per_kg, expected):
    assert iv(mg_per_kg=mg_per_kg) == expected


@pytest.mark.parametrize("minutes,expected", [
    (39, {"INFUSION_TOO_FAST": Severity.NEEDS_PHYSICIAN}),
    (Decimal("39.9"), {"INFUSION_TOO_FAST": Severity.NEEDS_PHYSICIAN}),
    (40, {}),
    (41, {}),
    (100, {}),
])
def test_infusion_shorter_than_forty_minutes_needs_a_physician(minutes, expected):
    assert iv(infusion_minutes=minutes) == expected


@pytest.mark.parametrize("kwargs,code", [
    ({"mg_per_kg": None}, "DOSE_MG_PER_KG_MISSING"),
    ({"dose_mg": None}, "WEIGHT_MISSING"),
    ({"infusion_minutes": None}, "INFUSION_MINUTES_MISSING"),
])
def test_missing_iv_inputs_are_absolute(kwargs, code):
    assert iv(**kwargs) == {code: Severity.ABSOLUTE}


def test_several_iv_findings_come_together():
    assert iv(mg_per_kg="1.2", infusion_minutes=20) == {"DOSE_ABOVE_CEILING": Severity.BLOCK,
                                                        "INFUSION_TOO_FAST": Severity.NEEDS_PHYSICIAN}


def test_iv_finding_carries_the_values_used():
    (finding,) = dose_findings(route="iv", mg_per_kg=D("0.8"), infusion_minutes=40, dose_mg=D("58"),
                               policy=DEFAULT_POLICY)
    assert finding.values == {"mg_per_kg": "0.8", "low": "0.1", "high": "0.75", "ceiling": "1.0"}
    assert "0.8 mg/kg" in finding.message


# --- esketamine ---------------------------------------------------------------------------------

INVALID = {"ESKETAMINE_DOSE_INVALID": Severity.ABSOLUTE}


@pytest.mark.parametrize("dose_mg,expected", [
    (D("27"), INVALID),
    (D("28"), {}),
    (D("29"), INVALID),
    (D("55"), INVALID),
    (D("56"), {}),
    (D("56.0"), {}),
    (D("57"), INVALID),
    (D("83"), INVALID),
    (D("84"), {}),
    (D("85"), INVALID),
    (D("112"), INVALID),   # four devices: above the maximum
    (D("0"), INVALID),
    (D("-28"), INVALID),
    (D("42"), INVALID),    # one and a half devices
    (None, INVALID),
    (56, {}),
])
def test_esketamine_dose_is_whole_devices_up_to_84_mg(dose_mg, expected):
    assert esketamine(dose_mg) == expected


def test_esketamine_ignores_mg_per_kg_and_minutes():
    found = dose_findings(route="esketamine", mg_per_kg=D("5"), infusion_minutes=1, dose_mg=D("56"),
                          policy=DEFAULT_POLICY)
    assert found == ()


def test_unknown_route_raises():
    with pytest.raises(ValueError):
        dose_findings(route="oral", mg_per_kg=None, infusion_minutes=None, dose_mg=None, policy=DEFAULT_POLICY)


# --- the policy decides ---------------------------------------------------------------------------

def test_thresholds_come_from_the_policy():
    policy = ClinicalPolicy(dose_mg_per_kg_low=0.2, dose_mg_per_kg_high=0.6, dose_mg_per_kg_ceiling=0.8,
                            min_infusion_minutes=60, esketamine_device_mg=28, esketamine_max_mg=56)
    assert iv(mg_per_kg="0.15", infusion_minutes=60, policy=policy) == OUTSIDE
    assert iv(mg_per_kg="0.2", infusion_minutes=60, policy=policy) == {}
    assert iv(mg_per_kg="0.65", infusion_minutes=60, policy=policy) == OUTSIDE
    assert iv(mg_per_kg="0.81", infusion_minutes=60, policy=policy) == CEILING
    assert iv(infusion_minutes=59, policy=policy) == {"INFUSION_TOO_FAST": Severity.NEEDS_PHYSICIAN}
    assert esketamine(D("84"), policy=policy) == INVALID
    assert esketamine(D("56"), policy=policy) == {}


# --- controlled-substance record ----------------------------------------------------------------

RECORD = ControlledSubstanceRecord(product="Ketamine 50 mg/mL", lot="KX2291", expiry_on=date(2027, 3, 31),
                                   drawn_mg=D("50"), given_mg=D("36.2"), wasted_mg=D("13.8"),
                                   witness_is_second_person=True)


def cs_problems(**changes):
    return controlled_substance_problems(replace(RECORD, **changes), today=TODAY)


def test_a_balanced_witnessed_record_is_valid():
    assert cs_problems() == ()


@pytest.mark.parametrize("drawn,given,wasted,ok", [
    ("50", "36.2", "13.8", True),     # the worked example
    ("50", "36.2", "13.7", False),    # 0.1 mg unaccounted for
    ("50", "36.2", "13.9", False),    # 0.1 mg too much
    ("50.1", "36.2", "13.8", False),
    ("50.0", "36.20", "13.80", True),  # trailing zeros do not matter
    ("36.2", "36.2", "0", True),      # nothing wasted
    ("50", "0", "50", True),          # nothing given
    ("0", "0", "0", True),
])
def test_drawn_must_equal_given_plus_wasted_exactly(drawn, given, wasted, ok):
    problems = cs_problems(drawn_mg=D(drawn), given_mg=D(given), wasted_mg=D(wasted))
    assert (problems == ()) is ok, problems


def test_the_balance_message_shows_the_arithmetic():
    (problem,) = cs_problems(wasted_mg=D("13.7"))
    assert problem == "Drawn (50 mg) must equal given (36.2 mg) plus wasted (13.7 mg), which is 49.9 mg."


@pytest.mark.parametrize("field", ["drawn_mg", "given_mg", "wasted_mg"])
def test_negative_amounts_are_refused(field):
    assert any("negative" in p for p in cs_problems(**{field: D("-0.1")}))


@pytest.mark.parametrize("field", ["drawn_mg", "given_mg", "wasted_mg"])
def test_missing_amounts_are_refused(field):
    assert any("Record the amount" in p for p in cs_problems(**{field: None}))


@pytest.mark.parametrize("lot,ok", [("KX2291", True), ("", False), ("   ", False), (None, False)])
def test_lot_is_required(lot, ok):
    assert (cs_problems(lot=lot) == ()) is ok


@pytest.mark.parametrize("product,ok", [("Ketamine 50 mg/mL", True), ("", False), (" ", False)])
def test_product_is_required(product, ok):
    assert (cs_problems(product=product) == ()) is ok


@pytest.mark.parametrize("expiry_on,ok", [
    (TODAY - timedelta(days=1), False),   # expired yesterday
    (TODAY, True),                        # expires today: still usable
    (TODAY + timedelta(days=1), True),
    (None, False),
])
def test_expired_product_is_refused(expiry_on, ok):
    assert (cs_problems(expiry_on=expiry_on) == ()) is ok


def test_witness_must_be_a_second_staff_member():
    assert cs_problems(witness_is_second_person=False) == ("A second staff member must witness the record.",)


def test_every_problem_is_listed():
    problems = cs_problems(lot="", expiry_on=TODAY - timedelta(days=1), wasted_mg=D("1"),
                           witness_is_second_person=False)
    assert len(problems) == 4


# --- the amount given against the dose ----------------------------------------------------------

@pytest.mark.parametrize("given,dose,reason,ok", [
    ("36.2", "36.2", "", True),                          # on the dose
    ("36.20", "36.2", "", True),                         # trailing zeros do not matter
    ("36.3", "36.2", "", False),                         # just over
    ("36.3", "36.2", "Physician asked for more", False),  # over: no reason makes it right
    ("36.1", "36.2", "", False),                         # just under, no reason
    ("36.1", "36.2", "abcd", False),                     # four characters: not a reason
    ("36.1", "36.2", "a b c d", False),                  # spaces do not count
    ("36.1", "36.2", "abcde", True),                     # five: on the limit
    ("20", "36.2", "Stopped at 22 min after an alert", True),
    ("0", "36.2", "Line failed before the start", True),
    ("56", "56.0", "", True),                            # esketamine: two devices
    ("84", "56.0", "", False),
    ("40", None, "", True),                              # no dose to compare with
])
def test_the_amount_given_is_the_dose_or_less_with_a_reason(given, dose, reason, ok):
    problem = given_amount_problem(D(given), None if dose is None else D(dose), reason)
    assert (problem is None) is ok, problem


@pytest.mark.parametrize("given,message", [
    ("40", "The amount given (40 mg) is more than this session's dose (36.2 mg)."),
    ("30.0", "The amount given (30 mg) is less than this session's dose (36.2 mg). Say why below"),
])
def test_the_amount_message_names_both_numbers(given, message):
    assert message in given_amount_problem(D(given), D("36.2"), "")


def test_the_record_is_refused_when_the_amount_given_is_not_the_dose():
    assert cs_problems(dose_mg=D("36.2")) == ()
    (problem,) = cs_problems(dose_mg=D("40"))
    assert "less than this session's dose (40 mg)" in problem
    assert cs_problems(dose_mg=D("40"), shortfall_reason="Stopped early after an alert") == ()
    (problem,) = cs_problems(dose_mg=D("30"), shortfall_reason="Stopped early after an alert")
    assert "more than this session's dose (30 mg)" in problem


# --- per-session dose change --------------------------------------------------------------------

@pytest.mark.parametrize("current,new,reason,role,field", [
    ("0.5", "0.6", "Partial response at 0.5", "physician", "ok"),
    ("0.5", "0.6", "Partial response at 0.5", "nurse", None),
    ("0.5", "0.6", "Partial response at 0.5", "coordinator", None),
    ("0.5", "0.6", "", "physician", "reason"),
    ("0.5", "0.6", "    ", "physician", "reason"),
    ("0.5", "0.6", "abcd", "physician", "reason"),      # four characters
    ("0.5", "0.6", "abcde", "physician", "ok"),         # five: on the limit
    ("0.5", "0.6", "a b c d", "physician", "reason"),   # spaces do not count
    ("0.5", "0.6", None, "physician", "reason"),
    ("0.5", "0.5", "Same again", "physician", "dose"),  # already the dose: nothing to order
    ("0.5", "0.50", "Same again", "physician", "dose"),
    ("0.8", "0.5", "Back to the series dose", "physician", "ok"),
    ("0.5", None, "Reason given", "physician", "dose"),
    (None, "0.5", "First order", "physician", "ok"),
    ("56", "84", "Partial response at 56 mg", "physician", "ok"),  # esketamine mg
])
def test_a_session_dose_order_needs_a_physician_a_new_dose_and_a_reason(current, new, reason, role, field):
    problem = dose_order_problem(None if current is None else D(current), None if new is None else D(new),
                                 reason, role)
    assert (problem.field if problem else "ok") == field, problem
    if role != "physician":
        assert problem.message == "Only a physician can change the dose for one session."
