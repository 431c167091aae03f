"""Checklist use cases: save answers (partially, with a version check), evaluate them under the
current policy, record physician overrides, and the start gate the dose must pass."""
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from opsmgr.audit.service import record
from opsmgr.auth.passwords import verify_password
from opsmgr.checklist.models import ChecklistResponse, FindingOverride
from opsmgr.extensions import db
from opsmgr.policy.service import current_policy
from opsmgr.rules import checklist as rules
from opsmgr.rules.findings import Finding, Override, Severity, open_findings, outcome_of, override_problem


class ChecklistError(ValueError):
    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


class StaleChecklist(ChecklistError):
    """Someone else saved this checklist after the form was opened."""


def response_for(session, *, now, create=False):
    """The session's checklist row (created empty on first use when `create`)."""
    response = db.session.scalar(select(ChecklistResponse).where(ChecklistResponse.session_id == session.id))
    if response is None and create:
        response = ChecklistResponse(session_id=session.id, findings=[], updated_at=now)
        db.session.add(response)
        db.session.flush()
    return response


def answers_from(response, session):
    """The stored answers as the rules' plain input."""
    patient, protocol = session.patient, session.series.protocol
    vitals = None
    if response.vitals_taken_at is not None or response.systolic is not None:
        vitals = rules.Vitals(
            systolic=response.systolic, diastolic=response.diastolic, heart_rate=response.heart_rate,
            spo2=response.spo2, temperature_c=_float(response.temperature_c),
            respiratory_rate=response.respiratory_rate, taken_at=response.vitals_taken_at)
    changes = None if response.medication_changes is None else tuple(
        rules.MedicationChange(c["name"], c["med_class"], c["change"]) for c in response.medication_changes)
    return rules.ChecklistAnswers(
        route=protocol.route, vitals=vitals, weight_kg=_float(response.weight_kg), medication_changes=changes,
        new_diagnoses=response.new_diagnoses, pregnancy_possible=patient.pregnancy_possible,
        pregnancy_status=response.pregnancy_status,
        cardio_cerebrovascular_event=response.cardio_cerebrovascular_event,
        psychosis_symptoms=response.psychosis_symptoms, mania_symptoms=response.mania_symptoms,
        substance_use_in_window=response.substance_use_in_window,
        vascular_contraindication=response.vascular_contraindication,
        last_solid_food_at=response.last_solid_food_at, last_clear_liquid_at=response.last_clear_liquid_at,
        escort_name=response.escort_name or "", escort_phone=response.escort_phone or "",
        consent_on_file=patient.consent_on is not None, consent_reconfirmed=response.consent_reconfirmed,
        phq9_items=_tuple(response.phq9_items), phq9_difficulty=response.phq9_difficulty,
        gad7_items=_tuple(response.gad7_items), suicide_risk=response.suicide_risk,
        willingness=response.willingness, intention=response.intention or "")


def _float(value):
    return None if value is None else float(value)


def _tuple(value):
    return None if value is None else tuple(value)


def finding_to_dict(finding):
    return {"code": finding.code, "severity": finding.severity.value, "message": finding.message,
            "values": finding.values}


def finding_from_dict(data):
    return Finding(data["code"], Severity(data["severity"]), data["message"], data.get("values", {}))


def evaluate(response, session, *, now):
    """Evaluate the answers under the current policy and keep the result on the response."""
    version, policy = current_policy()
    findings = rules.evaluate_readiness(answers_from(response, session), now=now, policy=policy)
    response.policy_version, response.outcome = version, outcome_of(findings).value
    response.findings, response.evaluated_at = [finding_to_dict(f) for f in findings], now
    db.session.flush()
    return findings


def save_answers(session, values, *, expected_version, actor, now):
    """Store answers (any subset: a nurse may come back later) and re-evaluate; refuse a stale form."""
    response = response_for(session, now=now, create=True)
    if expected_version is not None and response.version != expected_version:
        raise StaleChecklist("Someone else saved this checklist while you were working on it. Nothing was "
                             "saved; the current answers are shown, with yours beside them.")
    for name, value in values.items():
        setattr(response, name, value)
    response.updated_at, response.updated_by_id = now, actor.user_id
    findings = evaluate(response, session, now=now)
    record("checklist.saved", actor=actor, now=now, object_type="infusion_session", object_id=session.id,
           patient_id=session.patient_id, details={"fields": sorted(values), "outcome": response.outcome})
    return response, findings


def overrides_for(session, gate):
    return db.session.scalars(select(FindingOverride).where(FindingOverride.session_id == session.id,
                                                            FindingOverride.gate == gate)
                              .order_by(FindingOverride.id)).all()


def as_overrides(rows):
    return tuple(Override(code=row.code, by_role="physician", reason=row.reason) for row in rows)


def record_override(session, *, gate, finding, physician, password, reason, now, ip=None):
    """A physician overrides one finding after re-entering their password; audited either way."""
    from opsmgr.auth.service import actor_for

    actor = actor_for(physician, ip)
    if not verify_password(physician.password_hash, password):
        record("override.refused", actor=actor, now=now, outcome="denied", object_type="infusion_session",
               object_id=session.id, patient_id=session.patient_id, details={"code": finding.code, "gate": gate,
                                                                              "reason": "password"})
        raise ChecklistError("The password is not correct; the override was not recorded.", field="password")
    problem = override_problem(finding, role=physician.role, reason=reason)
    if problem:
        raise ChecklistError(problem, field="reason")
    existing = db.session.scalar(select(FindingOverride).where(
        FindingOverride.session_id == session.id, FindingOverride.gate == gate, FindingOverride.code == finding.code))
    if existing is not None:
        raise ChecklistError("This finding is already overridden.")
    row = FindingOverride(session_id=session.id, gate=gate, code=finding.code, finding=finding_to_dict(finding),
                          reason=reason.strip()[:500], physician_id=physician.id, created_at=now)
    db.session.add(row)
    db.session.flush()
    record("override.recorded", actor=actor, now=now, object_type="infusion_session", object_id=session.id,
           patient_id=session.patient_id, details={"code": finding.code, "gate": gate,
                                                   "severity": finding.severity.value})
    return row


@dataclass(frozen=True)
class GateResult:
    findings: tuple
    overrides: tuple
    open: tuple
    policy_version: int
    evaluated_at: datetime

    @property
    def may_proceed(self):
        return not self.open


def start_gate(session, *, now):
    """Re-evaluate the checklist now (vitals go stale) and say whether the dose may start."""
    response = response_for(session, now=now)
    if response is None:
        missing = Finding("CHECKLIST_NOT_STARTED", Severity.ABSOLUTE, "The pre-session checklist has not been done.")
        version, _ = current_policy()
        return GateResult((missing,), (), (missing,), version, now)
    findings = evaluate(response, session, now=now)
    overrides = as_overrides(overrides_for(session, "start"))
    return GateResult(findings, overrides, open_findings(findings, overrides), response.policy_version, now)
