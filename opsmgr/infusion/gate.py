"""The start and discharge gates at the chair, decided on the server through the one Gate
(opsmgr.gates): the findings of the checklist and the dose, or of the discharge, and a physician's
override of one of them.

Dose and discharge findings are bound: an override covers a finding only as it stood when the
physician overrode it (same code and same values): an override of 0.8 mg/kg does not cover 0.95
mg/kg. A refused discharge keeps the nurse's answers (a pending assessment); the discharge gate and
its overrides read them until discharge.
"""

from sqlalchemy import select

from opsmgr.auth.service import actor_for
from opsmgr.checklist import service as checklist
from opsmgr.extensions import db
from opsmgr.gates import service as gates
from opsmgr.infusion.models import (
    DischargeAssessment,
)
from opsmgr.infusion.orders import check_shown, current_order, plan_dose
from opsmgr.infusion.service import (
    BEFORE_THE_DOSE,
    InfusionError,
    S,
    alerts_for,
    as_reading,
    audit,
    dose_for,
    readings_for,
)
from opsmgr.policy.service import current_policy
from opsmgr.rules import discharge as discharge_rules
from opsmgr.rules import dosing
from opsmgr.rules.checklist import evaluate_readiness
from opsmgr.rules.findings import Finding, Severity


def _checklist_findings(visit, response, now, policy):
    """As checklist.start_gate evaluates them, without storing the evaluation (for showing)."""
    if response is None:
        return (checklist.NOT_STARTED,)
    return evaluate_readiness(checklist.answers_from(response, visit), now=now, policy=policy)


def start_gate(visit, *, now, infusion_minutes=None, persist=False, order=None):
    """(Gate, DosePlan) now: the checklist re-evaluated (vitals go stale) and the findings of the dose
    in force (the physician's order, else the series dose) over `infusion_minutes`.

    `persist` re-evaluates through checklist.start_gate, which stores the evaluation (at the start).
    """
    version, policy = current_policy()
    response = checklist.response_for(visit, now=now)
    if persist:
        result = checklist.start_gate(visit, now=now)
        found, version = result.findings, result.policy_version
    else:
        found = _checklist_findings(visit, response, now, policy)
    order = order if order is not None else current_order(visit)
    plan = plan_dose(visit, response, infusion_minutes=infusion_minutes, order=order)
    dose_found = dosing.dose_findings(route=plan.route, mg_per_kg=plan.mg_per_kg, dose_mg=plan.dose_mg,
                                      infusion_minutes=plan.infusion_minutes, policy=policy)
    return gates.decide(visit, "start", (*found, *dose_found), version, {f.code for f in dose_found}), plan


def discharge_gate(visit, *, now, moaas=None, escort_present=None, instructions_given=None, condition=""):
    """Everything that stops the discharge now, with the overrides that cover a finding."""
    version, policy = current_policy()
    dose, readings = dose_for(visit), readings_for(visit)
    if dose is None or dose.dose_started_at is None:
        found = (Finding("DOSE_NOT_STARTED", Severity.ABSOLUTE, "The dose has not started."),)
    else:
        answers = discharge_rules.DischargeAnswers(
            route=visit.series.protocol.route, dose_started_at=dose.dose_started_at,
            infusion_ended_at=dose.infusion_ended_at, last_vitals=as_reading(readings[-1]) if readings else None,
            moaas=moaas, escort_present=escort_present, instructions_given=instructions_given,
            condition_at_discharge=condition or "")
        found = discharge_rules.evaluate_discharge(answers, now=now, policy=policy)
    unacknowledged = tuple(
        Finding("ALERT_UNACKNOWLEDGED", Severity.ABSOLUTE, f"Acknowledge the alert first: {alert.message}",
                {"alert_id": alert.id}) for alert in alerts_for(visit) if alert.acknowledged_at is None)
    findings = (*found, *unacknowledged)
    return gates.decide(visit, "discharge", findings, version, {f.code for f in findings})


def refuse(action, visit, gate, actor, now, what):
    audit(action, visit, actor, now, outcome="denied", open=[f.code for f in gate.open])
    count = len(gate.open)
    raise InfusionError(f"{what}: {count} {'finding is' if count == 1 else 'findings are'} still open.",
                        findings=gate.open, audited=True)


def override_finding(visit, *, gate, code, physician, password, reason, now, ip=None, shown_order_id=None,
                     infusion_minutes=None, moaas=None, totp_code=None):
    """A physician overrides one open finding at the start or discharge gate (password and reason).

    The finding is worked out again on the server for the dose in force (refused if the page showed
    another: `shown_order_id`), the infusion time and MOAA/S shown on the page. An earlier override
    of the same code for other values no longer covers it; the new one replaces it.
    """
    if gate == "start":
        if visit.state not in BEFORE_THE_DOSE:
            raise InfusionError(f"Start findings are overridden before the dose; the session is "
                                f"{visit.state.label.lower()}.")
        order = check_shown(visit, shown_order_id)
        result, _ = start_gate(visit, now=now, infusion_minutes=infusion_minutes, order=order)
    else:
        if visit.state != S.RECOVERY:
            raise InfusionError("Discharge findings are overridden while the patient is in recovery.")
        pending = pending_assessment(visit)
        answers = assessment_answers(pending) if pending is not None else {"moaas": moaas}
        result = discharge_gate(visit, now=now, **answers)
    row = gates.override(visit, result, code=code, physician=physician, password=password, reason=reason,
                         now=now, ip=ip, totp_code=totp_code)
    if gate == "start" and visit.state == S.CHECKLIST:
        # The same as an override on the checklist page: nothing open in the checklist clears the session.
        response = checklist.response_for(visit, now=now)
        checklist.clear_when_nothing_open(visit, checklist.current_findings(response, visit, now=now),
                                          actor=actor_for(physician, ip), now=now)
    return row


def pending_assessment(visit):
    """The nurse's last refused discharge answers while the patient is still in recovery, or None."""
    if visit.state != S.RECOVERY:
        return None
    return db.session.scalar(select(DischargeAssessment).where(DischargeAssessment.session_id == visit.id)
                             .order_by(DischargeAssessment.id.desc()).limit(1))


def assessment_answers(row):
    """A pending assessment as the discharge gate's answers."""
    return {"moaas": row.moaas, "escort_present": row.escort_present, "instructions_given": row.instructions_given,
            "condition": row.condition}
