"""The discharge, through its gate; a refusal keeps the answers for the physician."""
from opsmgr.extensions import db
from opsmgr.gates.service import finding_to_dict
from opsmgr.infusion.gate import discharge_gate, refuse
from opsmgr.infusion.models import DischargeAssessment, DischargeRecord
from opsmgr.infusion.service import InfusionError, S, audit
from opsmgr.schedule.service import change_status


def discharge(visit, *, moaas, escort_present, instructions_given, condition, actor, now):
    """Discharge through the gate (rules 13-14): every finding clear or overridden, every alert acknowledged.
    A refusal keeps the answers as a pending assessment, which the physician sees with the findings."""
    if visit.state != S.RECOVERY:
        raise InfusionError(f"Only a patient in recovery can be discharged; the session is "
                            f"{visit.state.label.lower()}.")
    gate = discharge_gate(visit, now=now, moaas=moaas, escort_present=escort_present,
                          instructions_given=instructions_given, condition=condition)
    if not gate.may_proceed:
        db.session.add(DischargeAssessment(
            session_id=visit.id, moaas=moaas, escort_present=escort_present, instructions_given=instructions_given,
            condition=condition.strip()[:300], open_findings=[finding_to_dict(f) for f in gate.open],
            policy_version=gate.policy_version, assessed_at=now, assessed_by_id=actor.user_id))
        db.session.flush()
        refuse("discharge.refused", visit, gate, actor, now, "The patient was not discharged")
    row = DischargeRecord(session_id=visit.id, moaas=moaas, escort_present=escort_present,
                          instructions_given=instructions_given, condition=condition.strip()[:300],
                          discharged_at=now, discharged_by_id=actor.user_id, policy_version=gate.policy_version)
    db.session.add(row)
    db.session.flush()
    audit("discharge.recorded", visit, actor, now, moaas=moaas, overrides=[r.code for r in gate.overrides],
           policy_version=gate.policy_version)
    change_status(visit, S.DISCHARGED, reason="", actor=actor, now=now, gate_passed=True)
    return row
