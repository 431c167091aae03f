"""The start and discharge gates, decided on the server, and a physician's override of one finding.

Overrides of dose and discharge findings cover a finding only as it stood when the physician
overrode it (same code and same values): an override of 0.8 mg/kg does not cover 0.95 mg/kg.
Checklist findings keep the checklist's rule (same code). A refused discharge keeps the nurse's
answers (a pending assessment); the discharge gate and its overrides read them until discharge.
"""
from dataclasses import dataclass

from sqlalchemy import select

from opsmgr.checklist import service as checklist
from opsmgr.extensions import db
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
from opsmgr.rules.findings import Finding, Severity, open_findings

# --- gates ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    findings: tuple
    open: tuple
    #: The FindingOverride rows that cover a finding now.
    overrides: tuple
    policy_version: int

    @property
    def may_proceed(self):
        return not self.open


def _gate(visit, gate, findings, bound_codes, version):
    """Open findings after overrides: by code; readings and `bound_codes` only as they stood."""
    rows = checklist.covering_overrides(visit, gate, findings, bound_codes)
    return Gate(tuple(findings), open_findings(findings, checklist.as_overrides(rows)), rows, version)


def _checklist_findings(visit, response, now, policy):
    """As checklist.start_gate evaluates them, without storing the evaluation (for showing)."""
    if response is None:
        return (Finding("CHECKLIST_NOT_STARTED", Severity.ABSOLUTE, "The pre-session checklist has not been done."),)
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
    return _gate(visit, "start", (*found, *dose_found), {f.code for f in dose_found}, version), plan


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
    return _gate(visit, "discharge", findings, {f.code for f in findings}, version)


def refuse(action, visit, gate, actor, now, what):
    audit(action, visit, actor, now, outcome="denied", open=[f.code for f in gate.open])
    raise InfusionError(f"{what}: {len(gate.open)} finding(s) still open.", findings=gate.open, audited=True)


def override_finding(visit, *, gate, code, physician, password, reason, now, ip=None, shown_order_id=None,
                     infusion_minutes=None, moaas=None):
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
    finding = next((f for f in result.open if f.code == code), None)
    if finding is None:
        raise InfusionError("This finding is not open: it is no longer raised, or it is already overridden.")
    if finding.severity == Severity.ABSOLUTE:
        raise InfusionError(f"{finding.code}: {finding.message} This finding cannot be overridden by anyone.")
    return checklist.record_override(visit, gate=gate, finding=finding, physician=physician, password=password,
                                     reason=reason, now=now, ip=ip, replace=True)




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
