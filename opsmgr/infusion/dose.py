"""The dose: its start through the gate, the end of the infusion, and the controlled-substance record.

Esketamine: the dose is one instant (self-administered devices), so starting it also ends it
(infusion_ended_at = dose_started_at) and the session goes on to recovery in the same step; the
observation and the vitals timepoints run from the dose, as the rules expect.
"""

from sqlalchemy import select

from opsmgr.auth.models import StaffUser
from opsmgr.auth.passwords import spend_verify_time
from opsmgr.auth.service import reauthenticate
from opsmgr.core.clock import clinic_zone
from opsmgr.extensions import db
from opsmgr.infusion.gate import refuse, start_gate
from opsmgr.infusion.models import (
    ControlledSubstanceEntry,
    DoseRecord,
)
from opsmgr.infusion.orders import check_shown
from opsmgr.infusion.service import AT_THE_CHAIR, InfusionError, S, audit, dose_for, events_for, one_row, pauses_for
from opsmgr.rules import dosing, monitoring
from opsmgr.schedule.service import change_status

#: A second person who may witness a controlled substance: licensed staff at the chair.
WITNESS_ROLES = ("nurse", "physician")
WITNESS_REFUSED = "The witness's username or password is not correct, or they cannot witness."


# --- the dose ------------------------------------------------------------------------------------


def start_dose(visit, *, infusion_minutes, actor, now, shown_order_id=None):
    """Start the dose in force (the physician's order, else the series dose): only from 'cleared', only
    if the start gate passes now (rules 1-10), and only if it is the dose the page showed."""
    if visit.state != S.CLEARED:
        raise InfusionError(f"The dose starts only when the session is cleared; it is {visit.state.label.lower()}.")
    route = visit.series.protocol.route
    order = check_shown(visit, shown_order_id)
    gate, plan = start_gate(visit, now=now, infusion_minutes=infusion_minutes if route == "iv" else None,
                            persist=True, order=order)
    if not gate.may_proceed:
        refuse("dose.start_refused", visit, gate, actor, now, "The dose was not started")
    dose = DoseRecord(session_id=visit.id, mg_per_kg=plan.mg_per_kg, weight_kg=plan.weight_kg,
                      dose_mg=plan.dose_mg, infusion_minutes=plan.infusion_minutes,
                      change_reason=order.reason if order else "", changed_by_id=order.ordered_by_id if order else None,
                      dose_order_id=order.id if order else None, dose_started_at=now,
                      infusion_ended_at=now if route == "esketamine" else None,
                      policy_version=gate.policy_version, recorded_at=now, recorded_by_id=actor.user_id)
    db.session.add(dose)
    db.session.flush()
    audit("dose.started", visit, actor, now, route=route, mg_per_kg=_text(plan.mg_per_kg),
           weight_kg=_text(plan.weight_kg), dose_mg=_text(plan.dose_mg), infusion_minutes=plan.infusion_minutes,
           changed=plan.is_changed, order_id=plan.order_id or None, overrides=[row.code for row in gate.overrides],
           policy_version=gate.policy_version)
    change_status(visit, S.INFUSING, reason="", actor=actor, now=now, gate_passed=True)
    if route == "esketamine":
        change_status(visit, S.RECOVERY, reason="", actor=actor, now=now, gate_passed=True)
    return dose


def _text(value):
    return None if value is None else str(value)


def end_infusion(visit, *, actor, now, reason=""):
    """End a running IV infusion: the recovery observation starts now.

    A session moved to recovery by a bare status change (recovery is not a gated state yet) has
    no end time, which the discharge gate needs; ending it now records one, later than the truth,
    so the observation is never shortened.
    """
    dose = dose_for(visit)
    unended = dose is not None and dose.infusion_ended_at is None
    if not (visit.state == S.INFUSING or (visit.state == S.RECOVERY and unended)):
        raise InfusionError(f"Only a running infusion can be ended; the session is {visit.state.label.lower()}.")
    dose.infusion_ended_at = now
    db.session.flush()
    minutes = int((now - dose.dose_started_at).total_seconds() // 60)
    paused = monitoring.paused_time(pauses_for(dose, events_for(visit)), until=now)
    audit("infusion.ended", visit, actor, now, minutes=minutes, paused_minutes=int(paused.total_seconds() // 60),
           reason=reason)
    if visit.state == S.INFUSING:
        change_status(visit, S.RECOVERY, reason=reason, actor=actor, now=now, gate_passed=True)


# --- controlled substance ------------------------------------------------------------------------

#: Which form field a controlled-substance problem belongs to: the first keyword found in it.
PROBLEM_FIELDS = (("expir", "expiry_on"), ("witness", "witness_username"), ("drawn", "drawn_mg"),
                  ("given", "given_mg"), ("wasted", "wasted_mg"), ("lot", "lot"), ("product", "product"))


def _problem_field(message):
    lowered = message.lower()
    return next((name for word, name in PROBLEM_FIELDS if word in lowered), None)


def record_controlled_substance(visit, *, product, lot, expiry_on, drawn_mg, given_mg, wasted_mg,
                                witness_username, witness_password, actor, now, shortfall_reason=""):
    """The controlled-substance record: drawn = given + wasted, witnessed by a second staff member, and
    given = the session's dose, or less with a reason (dosing.given_amount_problem)."""
    dose = dose_for(visit)
    if visit.state not in {*AT_THE_CHAIR, S.DISCHARGED} or dose is None:
        raise InfusionError("The controlled substance is recorded once the dose has started.")
    if one_row(ControlledSubstanceEntry, visit) is not None:
        raise InfusionError("The controlled-substance record for this session is already complete.")
    second = (witness_username or "").strip().lower() != (actor.username or "").lower()
    entry = dosing.ControlledSubstanceRecord(product, lot, expiry_on, drawn_mg, given_mg, wasted_mg, second,
                                             dose_mg=dose.dose_mg, shortfall_reason=shortfall_reason or "")
    problems = dosing.controlled_substance_problems(entry, today=now.astimezone(clinic_zone()).date())
    if problems:
        raise InfusionError(problems[0], errors=[(_problem_field(p), p) for p in problems])
    witness = _witness(visit, witness_username, witness_password, actor, now)
    short = given_mg < dose.dose_mg
    row = ControlledSubstanceEntry(session_id=visit.id, product=product.strip(), lot=lot.strip(),
                                   expiry_on=expiry_on, drawn_mg=drawn_mg, given_mg=given_mg, wasted_mg=wasted_mg,
                                   shortfall_reason=shortfall_reason.strip()[:300] if short else "",
                                   recorded_by_id=actor.user_id, witness_id=witness.id, recorded_at=now)
    db.session.add(row)
    db.session.flush()
    audit("controlled_substance.recorded", visit, actor, now, product=row.product, lot=row.lot,
           drawn_mg=str(drawn_mg), given_mg=str(given_mg), wasted_mg=str(wasted_mg), witness=witness.username,
           dose_mg=str(dose.dose_mg), less_than_dose=short)
    return row


def _witness(visit, username, password, actor, now):
    """The witness, confirmed by their own password; any failure is audited and reads the same."""
    witness = db.session.scalar(select(StaffUser).where(StaffUser.username == (username or "").strip().lower()))
    if witness is None:
        spend_verify_time()
    usable = witness is not None and reauthenticate(witness, password, ip=actor.ip, now=now,
                                                    purpose="controlled_substance_witness")
    if not usable or witness.role not in WITNESS_ROLES or witness.id == actor.user_id:
        audit("controlled_substance.witness_refused", visit, actor, now, outcome="denied",
               witness=(username or "").strip().lower()[:64])
        raise InfusionError(WITNESS_REFUSED, "witness_password", audited=True)
    return witness
