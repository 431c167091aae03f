"""Dose arithmetic, dose findings and the controlled-substance record.

Sources: clinical reference rule 9 and §1.7 (0.5 mg/kg over >= 40 minutes; Andrade 0.1-0.75 mg/kg;
ASKP usual starting range tops at 1.0 mg/kg), rule 10 and §2.2 (esketamine devices of 28 mg,
at most three). Amounts shown to staff are Decimals, so 36.2 mg is exactly 36.2 mg.
"""
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from opsmgr.rules.findings import Finding, Problem, Severity, is_explained
from opsmgr.rules.severities import apply_severities

#: Doses are shown and drawn to a tenth of a milligram.
DOSE_STEP = Decimal("0.1")


def as_decimal(value) -> Decimal:
    """A number as an exact Decimal; a float goes through its shortest text, so 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


@dataclass(frozen=True)
class DoseCalculation:
    """The dose with the inputs it was computed from, for display next to each other."""

    mg_per_kg: Decimal
    weight_kg: Decimal
    dose_mg: Decimal


def iv_dose_mg(mg_per_kg, weight_kg) -> Decimal:
    """mg/kg × weight, rounded half-up to 0.1 mg (0.25 mg/kg × 70.6 kg = 17.65 → 17.7 mg)."""
    mg_per_kg, weight_kg = as_decimal(mg_per_kg), as_decimal(weight_kg)
    if weight_kg <= 0:
        raise ValueError("the weight must be positive")
    if mg_per_kg < 0:
        raise ValueError("the dose per kg must not be negative")
    return (mg_per_kg * weight_kg).quantize(DOSE_STEP, rounding=ROUND_HALF_UP)


def iv_dose(mg_per_kg, weight_kg) -> DoseCalculation:
    """The IV dose in mg together with the mg/kg and weight it came from."""
    return DoseCalculation(as_decimal(mg_per_kg), as_decimal(weight_kg), iv_dose_mg(mg_per_kg, weight_kg))


def dose_findings(*, route, mg_per_kg, infusion_minutes, dose_mg, policy) -> tuple[Finding, ...]:
    """What stands between this dose and the start (rules 9 and 10).

    IV: `dose_mg` is mg/kg × today's weight, so None means there is no usable weight today.
    Esketamine: only whole devices, 28, 56 or 84 mg by default; mg/kg and minutes are ignored.
    """
    if route == "esketamine":
        return apply_severities(_esketamine_findings(dose_mg, policy), policy)
    if route != "iv":
        raise ValueError(f"unknown route {route!r}")
    return apply_severities((*_missing_iv_inputs(mg_per_kg, infusion_minutes, dose_mg),
                             *_mg_per_kg_findings(mg_per_kg, policy),
                             *_infusion_time_findings(infusion_minutes, policy)), policy)


def _missing_iv_inputs(mg_per_kg, infusion_minutes, dose_mg):
    if mg_per_kg is None:
        yield Finding("DOSE_MG_PER_KG_MISSING", Severity.ABSOLUTE, "No dose per kg is set for this session.")
    if dose_mg is None:
        yield Finding("WEIGHT_MISSING", Severity.ABSOLUTE,
                      "No weight is recorded for today, so the dose cannot be computed.")
    if infusion_minutes is None:
        yield Finding("INFUSION_MINUTES_MISSING", Severity.ABSOLUTE, "No infusion time is set for this session.")


def _mg_per_kg_findings(mg_per_kg, policy):
    if mg_per_kg is None:
        return
    value = as_decimal(mg_per_kg)
    low, high = as_decimal(policy.dose_mg_per_kg_low), as_decimal(policy.dose_mg_per_kg_high)
    ceiling = as_decimal(policy.dose_mg_per_kg_ceiling)
    values = {"mg_per_kg": str(value), "low": str(low), "high": str(high), "ceiling": str(ceiling)}
    if value > ceiling:
        yield Finding("DOSE_ABOVE_CEILING", Severity.BLOCK,
                      f"{_mg(value)} mg/kg is above the ceiling of {_mg(ceiling)} mg/kg.", values)
    elif value < low or value > high:
        yield Finding("DOSE_OUTSIDE_USUAL_RANGE", Severity.NEEDS_PHYSICIAN,
                      f"{_mg(value)} mg/kg is outside the usual range of {_mg(low)}–{_mg(high)} mg/kg.", values)


def _infusion_time_findings(infusion_minutes, policy):
    if infusion_minutes is not None and infusion_minutes < policy.min_infusion_minutes:
        yield Finding("INFUSION_TOO_FAST", Severity.NEEDS_PHYSICIAN,
                      f"An infusion over {infusion_minutes} minutes is shorter than the "
                      f"{policy.min_infusion_minutes} minutes of the protocol.",
                      {"infusion_minutes": str(infusion_minutes), "minimum": policy.min_infusion_minutes})


def _esketamine_findings(dose_mg, policy):
    device, most = policy.esketamine_device_mg, policy.esketamine_max_mg
    allowed = tuple(range(device, most + 1, device))
    if dose_mg is not None and as_decimal(dose_mg) in allowed:
        return ()
    shown = ", ".join(str(mg) for mg in allowed)
    return (Finding("ESKETAMINE_DOSE_INVALID", Severity.ABSOLUTE,
                    f"An esketamine dose must be {shown} mg (whole {device} mg devices).",
                    {"dose_mg": None if dose_mg is None else str(dose_mg), "allowed_mg": shown}),)


@dataclass(frozen=True)
class ControlledSubstanceRecord:
    product: str
    lot: str
    expiry_on: date | None
    drawn_mg: Decimal | None
    given_mg: Decimal | None
    wasted_mg: Decimal | None
    #: True when a second staff member (not the one recording) confirmed with their password.
    witness_is_second_person: bool
    #: The session's dose as started through the gate (None: nothing to compare the amount given with).
    dose_mg: Decimal | None = None
    #: Why less than the dose was given, e.g. the infusion was stopped early after an alert.
    shortfall_reason: str = ""


def controlled_substance_problems(record: ControlledSubstanceRecord, *, today: date) -> tuple[str, ...]:
    """Why the controlled-substance record is refused, as plain messages; empty when it is valid.

    Drawn must equal given plus wasted exactly, so no milligram is unaccounted for. The amount
    given is checked against the dose (see `given_amount_problem`).
    """
    problems = []
    if not (record.product or "").strip():
        problems.append("Name the product.")
    if not (record.lot or "").strip():
        problems.append("Record the lot number.")
    if record.expiry_on is None:
        problems.append("Record the expiry date.")
    elif record.expiry_on < today:
        problems.append(f"The product expired on {record.expiry_on.isoformat()}; do not use it.")
    amounts = {"drawn": record.drawn_mg, "given": record.given_mg, "wasted": record.wasted_mg}
    for name, amount in amounts.items():
        if amount is None:
            problems.append(f"Record the amount {name}.")
        elif as_decimal(amount) < 0:
            problems.append(f"The amount {name} cannot be negative.")
    if all(amount is not None and as_decimal(amount) >= 0 for amount in amounts.values()):
        problems.extend(_balance_problem(record))
    if record.given_mg is not None and as_decimal(record.given_mg) >= 0:
        problem = given_amount_problem(record.given_mg, record.dose_mg, record.shortfall_reason)
        problems.extend([problem] if problem else [])
    if not record.witness_is_second_person:
        problems.append("A second staff member must witness the record.")
    return tuple(problems)


def _balance_problem(record):
    drawn, given, wasted = (as_decimal(a) for a in (record.drawn_mg, record.given_mg, record.wasted_mg))
    if drawn != given + wasted:
        yield (f"Drawn ({drawn} mg) must equal given ({given} mg) plus wasted ({wasted} mg), "
               f"which is {given + wasted} mg.")


def given_amount_problem(given_mg, dose_mg, shortfall_reason) -> str | None:
    """Why the amount given does not stand against the session's dose, or None.

    The amount given must be the dose that passed the start gate. More than the dose is refused
    outright: nobody may record a dose larger than the one the gate (and any physician override)
    cleared, so there is no override; the record is corrected instead. Less than the dose is
    accepted only with a reason of at least a few words (an infusion stopped early after an
    alert, a line that failed), which is kept with the record. The message names both amounts.
    """
    if dose_mg is None:
        return None
    given, dose = as_decimal(given_mg), as_decimal(dose_mg)
    if given > dose:
        return (f"The amount given ({_mg(given)} mg) is more than this session's dose ({_mg(dose)} mg). Record the "
                "amount actually given; it cannot be more than the dose.")
    if given < dose and not is_explained(shortfall_reason):
        return (f"The amount given ({_mg(given)} mg) is less than this session's dose ({_mg(dose)} mg). Say why "
                "below (for example, the infusion was stopped early), or correct the amount.")
    return None


def _mg(value):
    """An amount as people write it: 36.2, 50 (not 50.0 or 5E+1)."""
    return format(value.normalize(), "f")


def dose_order_problem(current, new, reason, role) -> Problem | None:
    """Why a physician's order of one session's dose is refused, or None.

    `current` is the dose the session would get now (the series dose or the last order), `new` the
    ordered one, both mg/kg (IV) or mg (esketamine). Only a physician orders, always with a reason
    (the order is read by the nurse who gives it); ordering the dose already in force changes nothing.
    """
    if role != "physician":
        return Problem(None, "Only a physician can change the dose for one session.")
    if new is None:
        return Problem("dose", "Give the new dose.")
    if current is not None and as_decimal(new) == as_decimal(current):
        return Problem("dose", f"{_mg(as_decimal(new))} is already this session's dose: nothing to change.")
    if not is_explained(reason):
        return Problem("reason", "Give the reason for changing this session's dose (at least a few words).")
    return None
