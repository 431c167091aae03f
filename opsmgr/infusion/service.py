"""At the chair: the start gate and the dose, the controlled-substance record, vitals and alerts,
the end of the infusion, and the discharge gate. Both gates are decided here, on the server.

Overrides of dose and discharge findings cover a finding only as it stood when the physician
overrode it (same code and same values): an override of 0.8 mg/kg does not cover 0.95 mg/kg.
Checklist findings keep the checklist's rule (same code).

Esketamine: the dose is one instant (self-administered devices), so starting it also ends it
(infusion_ended_at = dose_started_at) and the session goes on to recovery in the same step; the
observation and the vitals timepoints run from the dose, as the rules expect.

Pauses: an alert acknowledged with "pause" pauses a running IV infusion (an InfusionEvent), and
"Resume infusion" records the resume; the session stays infusing throughout. An alert's "stop"
records a stop event and ends the infusion. The planned end moves back by the time paused; the
vitals cadence does not change (see monitoring.next_vitals_due).
"""
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from opsmgr.audit.service import record
from opsmgr.auth.models import StaffUser
from opsmgr.auth.passwords import spend_verify_time
from opsmgr.auth.service import reauthenticate
from opsmgr.checklist import service as checklist
from opsmgr.checklist.models import FindingOverride
from opsmgr.core.clock import clinic_zone
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.infusion.dose import DosePlan, check_shown, current_order, orders_for, plan_dose
from opsmgr.infusion.models import (
    ControlledSubstanceEntry,
    DischargeAssessment,
    DischargeRecord,
    DoseRecord,
    InChairAlert,
    InfusionEvent,
    VitalSign,
)
from opsmgr.policy.service import current_policy
from opsmgr.rules import discharge as discharge_rules
from opsmgr.rules import dosing, monitoring
from opsmgr.rules.checklist import evaluate_readiness
from opsmgr.rules.findings import Finding, Problem, Severity, open_findings
from opsmgr.rules.session_states import SessionState
from opsmgr.schedule.models import InfusionSession
from opsmgr.schedule.service import change_status
from opsmgr.series.models import InfusionSeries

S = SessionState
AT_THE_CHAIR = (S.INFUSING, S.RECOVERY)
BEFORE_THE_DOSE = (S.CHECKED_IN, S.CHECKLIST, S.CLEARED)
#: A second person who may witness a controlled substance: licensed staff at the chair.
WITNESS_ROLES = ("nurse", "physician")
WITNESS_REFUSED = "The witness's username or password is not correct, or they cannot witness."


class InfusionError(DomainError):
    """A refused step at the chair: a message and the field it concerns, or several `errors`."""

    def __init__(self, message, field=None, *, errors=None, findings=(), audited=False):
        pairs = errors or [(field, message)]
        super().__init__([Problem(name, text) for name, text in pairs], findings=findings, audited=audited)


def load_session(session_id):
    return db.session.scalar(
        select(InfusionSession).where(InfusionSession.id == session_id)
        .options(selectinload(InfusionSession.patient), selectinload(InfusionSession.chair),
                 selectinload(InfusionSession.series).selectinload(InfusionSeries.protocol)))


def _one(model, session):
    return db.session.scalar(select(model).where(model.session_id == session.id))


def dose_for(session):
    return _one(DoseRecord, session)


def readings_for(session):
    return db.session.scalars(select(VitalSign).where(VitalSign.session_id == session.id)
                              .order_by(VitalSign.taken_at, VitalSign.id)).all()


def alerts_for(session):
    return db.session.scalars(select(InChairAlert).where(InChairAlert.session_id == session.id)
                              .order_by(InChairAlert.raised_at, InChairAlert.id)).all()


def events_for(session):
    return db.session.scalars(select(InfusionEvent).where(InfusionEvent.session_id == session.id)
                              .order_by(InfusionEvent.occurred_at, InfusionEvent.id)).all()


def pauses_for(dose, events):
    return monitoring.pauses_of([(e.kind, e.occurred_at) for e in events], infusion_ended_at=dose.infusion_ended_at)


def _audit(event, session, actor, now, outcome="ok", **details):
    record(event, actor=actor, now=now, outcome=outcome, object_type="infusion_session", object_id=session.id,
           patient_id=session.patient_id, details=details)


def as_reading(row):
    return monitoring.Reading(taken_at=row.taken_at, systolic=row.systolic, diastolic=row.diastolic,
                              heart_rate=row.heart_rate, spo2=row.spo2, moaas=row.moaas)


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


def _gate(session, gate, findings, bound_codes, version):
    """Open findings after overrides: by code; readings and `bound_codes` only as they stood."""
    rows = checklist.covering_overrides(session, gate, findings, bound_codes)
    return Gate(tuple(findings), open_findings(findings, checklist.as_overrides(rows)), rows, version)


def _checklist_findings(session, response, now, policy):
    """As checklist.start_gate evaluates them, without storing the evaluation (for showing)."""
    if response is None:
        return (Finding("CHECKLIST_NOT_STARTED", Severity.ABSOLUTE, "The pre-session checklist has not been done."),)
    return evaluate_readiness(checklist.answers_from(response, session), now=now, policy=policy)


def start_gate(session, *, now, infusion_minutes=None, persist=False, order=None):
    """(Gate, DosePlan) now: the checklist re-evaluated (vitals go stale) and the findings of the dose
    in force (the physician's order, else the series dose) over `infusion_minutes`.

    `persist` re-evaluates through checklist.start_gate, which stores the evaluation (at the start).
    """
    version, policy = current_policy()
    response = checklist.response_for(session, now=now)
    if persist:
        result = checklist.start_gate(session, now=now)
        found, version = result.findings, result.policy_version
    else:
        found = _checklist_findings(session, response, now, policy)
    order = order if order is not None else current_order(session)
    plan = plan_dose(session, response, infusion_minutes=infusion_minutes, order=order)
    dose_found = dosing.dose_findings(route=plan.route, mg_per_kg=plan.mg_per_kg, dose_mg=plan.dose_mg,
                                      infusion_minutes=plan.infusion_minutes, policy=policy)
    return _gate(session, "start", (*found, *dose_found), {f.code for f in dose_found}, version), plan


def discharge_gate(session, *, now, moaas=None, escort_present=None, instructions_given=None, condition=""):
    """Everything that stops the discharge now, with the overrides that cover a finding."""
    version, policy = current_policy()
    dose, readings = dose_for(session), readings_for(session)
    if dose is None or dose.dose_started_at is None:
        found = (Finding("DOSE_NOT_STARTED", Severity.ABSOLUTE, "The dose has not started."),)
    else:
        answers = discharge_rules.DischargeAnswers(
            route=session.series.protocol.route, dose_started_at=dose.dose_started_at,
            infusion_ended_at=dose.infusion_ended_at, last_vitals=as_reading(readings[-1]) if readings else None,
            moaas=moaas, escort_present=escort_present, instructions_given=instructions_given,
            condition_at_discharge=condition or "")
        found = discharge_rules.evaluate_discharge(answers, now=now, policy=policy)
    unacknowledged = tuple(
        Finding("ALERT_UNACKNOWLEDGED", Severity.ABSOLUTE, f"Acknowledge the alert first: {alert.message}",
                {"alert_id": alert.id}) for alert in alerts_for(session) if alert.acknowledged_at is None)
    findings = (*found, *unacknowledged)
    return _gate(session, "discharge", findings, {f.code for f in findings}, version)


def _refuse(action, session, gate, actor, now, what):
    _audit(action, session, actor, now, outcome="denied", open=[f.code for f in gate.open])
    raise InfusionError(f"{what}: {len(gate.open)} finding(s) still open.", findings=gate.open, audited=True)


def override_finding(session, *, gate, code, physician, password, reason, now, ip=None, shown_order_id=None,
                     infusion_minutes=None, moaas=None):
    """A physician overrides one open finding at the start or discharge gate (password and reason).

    The finding is worked out again on the server for the dose in force (refused if the page showed
    another: `shown_order_id`), the infusion time and MOAA/S shown on the page. An earlier override
    of the same code for other values no longer covers it; the new one replaces it.
    """
    if gate == "start":
        if session.state not in BEFORE_THE_DOSE:
            raise InfusionError(f"Start findings are overridden before the dose; the session is "
                                f"{session.state.label.lower()}.")
        order = check_shown(session, shown_order_id)
        result, _ = start_gate(session, now=now, infusion_minutes=infusion_minutes, order=order)
    else:
        if session.state != S.RECOVERY:
            raise InfusionError("Discharge findings are overridden while the patient is in recovery.")
        pending = pending_assessment(session)
        answers = assessment_answers(pending) if pending is not None else {"moaas": moaas}
        result = discharge_gate(session, now=now, **answers)
    finding = next((f for f in result.open if f.code == code), None)
    if finding is None:
        raise InfusionError("This finding is not open: it is no longer raised, or it is already overridden.")
    if finding.severity == Severity.ABSOLUTE:
        raise InfusionError(f"{finding.code}: {finding.message} This finding cannot be overridden by anyone.")
    return checklist.record_override(session, gate=gate, finding=finding, physician=physician, password=password,
                                     reason=reason, now=now, ip=ip, replace=True)


# --- the dose ------------------------------------------------------------------------------------


def start_dose(session, *, infusion_minutes, actor, now, shown_order_id=None):
    """Start the dose in force (the physician's order, else the series dose): only from 'cleared', only
    if the start gate passes now (rules 1-10), and only if it is the dose the page showed."""
    if session.state != S.CLEARED:
        raise InfusionError(f"The dose starts only when the session is cleared; it is {session.state.label.lower()}.")
    route = session.series.protocol.route
    order = check_shown(session, shown_order_id)
    gate, plan = start_gate(session, now=now, infusion_minutes=infusion_minutes if route == "iv" else None,
                            persist=True, order=order)
    if not gate.may_proceed:
        _refuse("dose.start_refused", session, gate, actor, now, "The dose was not started")
    dose = DoseRecord(session_id=session.id, mg_per_kg=plan.mg_per_kg, weight_kg=plan.weight_kg,
                      dose_mg=plan.dose_mg, infusion_minutes=plan.infusion_minutes,
                      change_reason=order.reason if order else "", changed_by_id=order.ordered_by_id if order else None,
                      dose_order_id=order.id if order else None, dose_started_at=now,
                      infusion_ended_at=now if route == "esketamine" else None,
                      policy_version=gate.policy_version, recorded_at=now, recorded_by_id=actor.user_id)
    db.session.add(dose)
    db.session.flush()
    _audit("dose.started", session, actor, now, route=route, mg_per_kg=_text(plan.mg_per_kg),
           weight_kg=_text(plan.weight_kg), dose_mg=_text(plan.dose_mg), infusion_minutes=plan.infusion_minutes,
           changed=plan.is_changed, order_id=plan.order_id or None, overrides=[row.code for row in gate.overrides],
           policy_version=gate.policy_version)
    change_status(session, S.INFUSING, reason="", actor=actor, now=now, gate_passed=True)
    if route == "esketamine":
        change_status(session, S.RECOVERY, reason="", actor=actor, now=now, gate_passed=True)
    return dose


def _text(value):
    return None if value is None else str(value)


def end_infusion(session, *, actor, now, reason=""):
    """End a running IV infusion: the recovery observation starts now.

    A session moved to recovery by a bare status change (recovery is not a gated state yet) has
    no end time, which the discharge gate needs; ending it now records one, later than the truth,
    so the observation is never shortened.
    """
    dose = dose_for(session)
    unended = dose is not None and dose.infusion_ended_at is None
    if not (session.state == S.INFUSING or (session.state == S.RECOVERY and unended)):
        raise InfusionError(f"Only a running infusion can be ended; the session is {session.state.label.lower()}.")
    dose.infusion_ended_at = now
    db.session.flush()
    minutes = int((now - dose.dose_started_at).total_seconds() // 60)
    paused = monitoring.paused_time(pauses_for(dose, events_for(session)), until=now)
    _audit("infusion.ended", session, actor, now, minutes=minutes, paused_minutes=int(paused.total_seconds() // 60),
           reason=reason)
    if session.state == S.INFUSING:
        change_status(session, S.RECOVERY, reason=reason, actor=actor, now=now, gate_passed=True)


# --- controlled substance ------------------------------------------------------------------------

#: Which form field a controlled-substance problem belongs to: the first keyword found in it.
PROBLEM_FIELDS = (("expir", "expiry_on"), ("witness", "witness_username"), ("drawn", "drawn_mg"),
                  ("given", "given_mg"), ("wasted", "wasted_mg"), ("lot", "lot"), ("product", "product"))


def _problem_field(message):
    lowered = message.lower()
    return next((name for word, name in PROBLEM_FIELDS if word in lowered), None)


def record_controlled_substance(session, *, product, lot, expiry_on, drawn_mg, given_mg, wasted_mg,
                                witness_username, witness_password, actor, now, shortfall_reason=""):
    """The controlled-substance record: drawn = given + wasted, witnessed by a second staff member, and
    given = the session's dose, or less with a reason (dosing.given_amount_problem)."""
    dose = dose_for(session)
    if session.state not in {*AT_THE_CHAIR, S.DISCHARGED} or dose is None:
        raise InfusionError("The controlled substance is recorded once the dose has started.")
    if _one(ControlledSubstanceEntry, session) is not None:
        raise InfusionError("The controlled-substance record for this session is already complete.")
    second = (witness_username or "").strip().lower() != (actor.username or "").lower()
    entry = dosing.ControlledSubstanceRecord(product, lot, expiry_on, drawn_mg, given_mg, wasted_mg, second,
                                             dose_mg=dose.dose_mg, shortfall_reason=shortfall_reason or "")
    problems = dosing.controlled_substance_problems(entry, today=now.astimezone(clinic_zone()).date())
    if problems:
        raise InfusionError(problems[0], errors=[(_problem_field(p), p) for p in problems])
    witness = _witness(session, witness_username, witness_password, actor, now)
    short = given_mg < dose.dose_mg
    row = ControlledSubstanceEntry(session_id=session.id, product=product.strip(), lot=lot.strip(),
                                   expiry_on=expiry_on, drawn_mg=drawn_mg, given_mg=given_mg, wasted_mg=wasted_mg,
                                   shortfall_reason=shortfall_reason.strip()[:300] if short else "",
                                   recorded_by_id=actor.user_id, witness_id=witness.id, recorded_at=now)
    db.session.add(row)
    db.session.flush()
    _audit("controlled_substance.recorded", session, actor, now, product=row.product, lot=row.lot,
           drawn_mg=str(drawn_mg), given_mg=str(given_mg), wasted_mg=str(wasted_mg), witness=witness.username,
           dose_mg=str(dose.dose_mg), less_than_dose=short)
    return row


def _witness(session, username, password, actor, now):
    """The witness, confirmed by their own password; any failure is audited and reads the same."""
    witness = db.session.scalar(select(StaffUser).where(StaffUser.username == (username or "").strip().lower()))
    if witness is None:
        spend_verify_time()
    usable = witness is not None and reauthenticate(witness, password, ip=actor.ip, now=now,
                                                    purpose="controlled_substance_witness")
    if not usable or witness.role not in WITNESS_ROLES or witness.id == actor.user_id:
        _audit("controlled_substance.witness_refused", session, actor, now, outcome="denied",
               witness=(username or "").strip().lower()[:64])
        raise InfusionError(WITNESS_REFUSED, "witness_password", audited=True)
    return witness


# --- vitals and alerts ---------------------------------------------------------------------------


def record_vitals(session, *, systolic, diastolic, heart_rate, spo2, moaas, taken_at, actor, now):
    """Store one reading from the dose until discharge; raise the alerts it calls for (rule 12)."""
    if session.state not in AT_THE_CHAIR:
        raise InfusionError("Vitals are recorded here from the start of the dose until discharge.")
    if taken_at > now:
        raise InfusionError("This time is in the future.", "taken_at")
    # The form takes the time to the minute: a reading at the minute the dose started is the start reading.
    if taken_at < dose_for(session).dose_started_at.replace(second=0, microsecond=0):
        raise InfusionError("This time is before the dose started; pre-dose vitals belong to the checklist.",
                            "taken_at")
    row = VitalSign(session_id=session.id, taken_at=taken_at, systolic=systolic, diastolic=diastolic,
                    heart_rate=heart_rate, spo2=spo2, moaas=moaas, recorded_by_id=actor.user_id, recorded_at=now)
    db.session.add(row)
    db.session.flush()
    _, policy = current_policy()
    alerts = [InChairAlert(session_id=session.id, vital_sign_id=row.id, code=f.code, message=f.message[:300],
                           raised_at=now) for f in monitoring.reading_alerts(as_reading(row), policy=policy)]
    db.session.add_all(alerts)
    db.session.flush()
    _audit("vitals.recorded", session, actor, now, vital_sign_id=row.id, alerts=[a.code for a in alerts])
    return row, alerts


def acknowledge_alert(alert, *, action, note, drug_given, actor, now):
    """A nurse or physician acknowledges an alert with an action: "pause" pauses the running
    infusion, "stop" ends it now; both are recorded as events with their time."""
    problem = monitoring.acknowledgement_problem(action, note, actor.role)
    if problem:
        raise InfusionError(problem, "action" if "Choose" in problem else "note" if "note" in problem else None)
    session = db.session.get(InfusionSession, alert.session_id)
    if action == "pause" and _running_dose(session) is None:
        raise InfusionError("There is no running infusion to pause (it has ended, or the dose was a single one): "
                            "choose another action.", "action")
    done = db.session.execute(
        update(InChairAlert).where(InChairAlert.id == alert.id, InChairAlert.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by_id=actor.user_id, action=action, note=note.strip(),
                drug_given=(drug_given or "").strip()[:200]))
    if done.rowcount != 1:
        raise InfusionError("This alert has already been acknowledged (perhaps by a colleague just now).")
    _audit("alert.acknowledged", session, actor, now, alert_id=alert.id, code=alert.code, action=action,
           drug_given=bool((drug_given or "").strip()))
    if action == "pause":
        _pause(session, alert, actor=actor, now=now)
    if action == "stop" and session.state == S.INFUSING:
        _record_event(session, "stop", actor=actor, now=now, alert=alert)
        end_infusion(session, actor=actor, now=now, reason="Stopped after an alert")


#: Audit actions of the infusion events.
EVENT_ACTIONS = {"pause": "infusion.paused", "resume": "infusion.resumed", "stop": "infusion.stopped"}


def _running_dose(session, *, lock=False):
    """The dose of a running IV infusion, or None. With `lock` the dose row is locked (FOR UPDATE on
    PostgreSQL; SQLite's write transaction already holds the lock), so pauses and resumes queue."""
    query = select(DoseRecord).where(DoseRecord.session_id == session.id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    dose = db.session.scalar(query)
    if session.state != S.INFUSING or dose is None or dose.infusion_ended_at is not None:
        return None
    return dose


def _record_event(session, kind, *, actor, now, alert=None, note="", **details):
    row = InfusionEvent(session_id=session.id, kind=kind, occurred_at=now, alert_id=alert.id if alert else None,
                        note=(note or "").strip()[:300], recorded_by_id=actor.user_id)
    db.session.add(row)
    db.session.flush()
    _audit(EVENT_ACTIONS[kind], session, actor, now, event_id=row.id, alert_id=row.alert_id, **details)
    return row


def _pause(session, alert, *, actor, now):
    """Pause the running infusion; already paused, it stays paused from the first pause."""
    dose = _running_dose(session, lock=True)
    if dose is None:
        raise InfusionError("The infusion ended just now; it cannot be paused. Choose another action.", "action")
    if monitoring.is_paused(pauses_for(dose, events_for(session))):
        return None
    return _record_event(session, "pause", actor=actor, now=now, alert=alert)


def resume_infusion(session, *, note, actor, now):
    """Resume a paused IV infusion now; the planned end moves back by the time it was paused."""
    dose = _running_dose(session, lock=True)
    if dose is None:
        raise InfusionError(f"Only a paused infusion can be resumed; the session's status is "
                            f"{session.state.label.lower()}.")
    found = pauses_for(dose, events_for(session))
    if not monitoring.is_paused(found):
        raise InfusionError("The infusion is not paused (perhaps a colleague resumed it just now).")
    paused = int((now - found[-1].started_at).total_seconds() // 60)
    return _record_event(session, "resume", actor=actor, now=now, note=note, paused_minutes=paused)


def vitals_due_for(sessions, now):
    """{session id: VitalsDue} for the sessions at the chair, in two statements whatever their number."""
    at_chair = {s.id: s for s in sessions if s.state in AT_THE_CHAIR}
    if not at_chair:
        return {}
    doses = {d.session_id: d for d in db.session.scalars(select(DoseRecord).where(
        DoseRecord.session_id.in_(at_chair), DoseRecord.dose_started_at.is_not(None)))}
    readings = {}
    for row in db.session.scalars(select(VitalSign).where(VitalSign.session_id.in_(list(doses)))):
        readings.setdefault(row.session_id, []).append(as_reading(row))
    _, policy = current_policy()
    return {session_id: monitoring.next_vitals_due(
        route=at_chair[session_id].series.protocol.route, dose_started_at=dose.dose_started_at,
        infusion_ended_at=dose.infusion_ended_at, readings=readings.get(session_id, []), now=now, policy=policy)
        for session_id, dose in doses.items()}


def next_vitals_due(session, now):
    """When the next reading is due for this session (None before the dose and after discharge)."""
    return vitals_due_for([session], now).get(session.id)


# --- discharge -----------------------------------------------------------------------------------


def pending_assessment(session):
    """The nurse's last refused discharge answers while the patient is still in recovery, or None."""
    if session.state != S.RECOVERY:
        return None
    return db.session.scalar(select(DischargeAssessment).where(DischargeAssessment.session_id == session.id)
                             .order_by(DischargeAssessment.id.desc()).limit(1))


def assessment_answers(row):
    """A pending assessment as the discharge gate's answers."""
    return {"moaas": row.moaas, "escort_present": row.escort_present, "instructions_given": row.instructions_given,
            "condition": row.condition}


def discharge(session, *, moaas, escort_present, instructions_given, condition, actor, now):
    """Discharge through the gate (rules 13-14): every finding clear or overridden, every alert acknowledged.
    A refusal keeps the answers as a pending assessment, which the physician sees with the findings."""
    if session.state != S.RECOVERY:
        raise InfusionError(f"Only a patient in recovery can be discharged; the session is "
                            f"{session.state.label.lower()}.")
    gate = discharge_gate(session, now=now, moaas=moaas, escort_present=escort_present,
                          instructions_given=instructions_given, condition=condition)
    if not gate.may_proceed:
        db.session.add(DischargeAssessment(
            session_id=session.id, moaas=moaas, escort_present=escort_present, instructions_given=instructions_given,
            condition=condition.strip()[:300], open_findings=[checklist.finding_to_dict(f) for f in gate.open],
            policy_version=gate.policy_version, assessed_at=now, assessed_by_id=actor.user_id))
        db.session.flush()
        _refuse("discharge.refused", session, gate, actor, now, "The patient was not discharged")
    row = DischargeRecord(session_id=session.id, moaas=moaas, escort_present=escort_present,
                          instructions_given=instructions_given, condition=condition.strip()[:300],
                          discharged_at=now, discharged_by_id=actor.user_id, policy_version=gate.policy_version)
    db.session.add(row)
    db.session.flush()
    _audit("discharge.recorded", session, actor, now, moaas=moaas, overrides=[r.code for r in gate.overrides],
           policy_version=gate.policy_version)
    change_status(session, S.DISCHARGED, reason="", actor=actor, now=now, gate_passed=True)
    return row


# --- the page ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineRow:
    at: object
    label: str
    #: The reading that counts for this timepoint, if any.
    reading: object
    is_past: bool
    #: A pause, resume or stop shown in time order among the timepoints (then the other fields are unused).
    event: object = None


EVENT_LABELS = {"pause": "Infusion paused", "resume": "Infusion resumed", "stop": "Infusion stopped"}


def timeline(session, dose, readings, events=(), *, now):
    """The protocol's timepoints (rule 11), each with the reading taken near it, and the pauses,
    resumes and stops at their times. A running infusion's end is planned later by the time paused."""
    if dose is None or dose.dose_started_at is None:
        return ()
    _, policy = current_policy()
    ended = dose.infusion_ended_at or monitoring.planned_infusion_end(
        dose_started_at=dose.dose_started_at, infusion_minutes=dose.infusion_minutes,
        pauses=pauses_for(dose, events), now=now)
    points = monitoring.vitals_timepoints(route=session.series.protocol.route, dose_started_at=dose.dose_started_at,
                                          infusion_ended_at=ended, policy=policy)
    rows = []
    for point in points:
        near = point.window or timedelta(minutes=5)
        reading = next((r for r in readings if point.at - near <= r.taken_at < point.at + near), None)
        rows.append(TimelineRow(point.at, point.label, reading, now >= point.at + near))
    rows += [TimelineRow(event.occurred_at, EVENT_LABELS[event.kind], None, True, event) for event in events]
    return tuple(sorted(rows, key=lambda row: (row.at, row.event is not None)))


@dataclass(frozen=True)
class ChairView:
    """Everything the infusion page shows for one session."""

    session: object
    route: str
    dose: object
    plan: DosePlan | None
    start: Gate | None
    controlled: object
    readings: tuple
    timeline: tuple
    alerts: tuple
    #: Pauses, resumes and stops, in time order.
    events: tuple
    #: When the running infusion was paused, while it is paused.
    paused_since: object
    next_due: object
    discharge: Gate | None
    discharged: object
    instructions: tuple
    overrides: tuple
    #: The physician's dose orders, oldest first (the last is in force).
    orders: tuple
    #: The nurse's refused discharge answers, waiting for a physician (None when there are none).
    pending: object
    #: The answers the discharge gate was evaluated for.
    discharge_answers: dict
    #: Open discharge findings no answer on the form can clear (the discharge is not offered), and
    #: those that are only a question not answered yet.
    discharge_waiting_on: tuple
    discharge_unanswered: tuple
    staff: dict


def chair_view(session, *, now, infusion_minutes=None, moaas=None, escort_present=None,
               instructions_given=None, condition=""):
    """The page's data; the start gate is shown for the dose in force over the proposed time, the
    discharge gate for the answers given (else a refused discharge's pending answers). Nothing is stored."""
    dose, readings, alerts = dose_for(session), tuple(readings_for(session)), tuple(alerts_for(session))
    start = plan = discharge_result = None
    if dose is None and session.state in BEFORE_THE_DOSE:
        start, plan = start_gate(session, now=now, infusion_minutes=infusion_minutes)
    pending = pending_assessment(session)
    answers = {"moaas": moaas, "escort_present": escort_present, "instructions_given": instructions_given,
               "condition": condition}
    if pending is not None and moaas is None and escort_present is None and instructions_given is None:
        answers = assessment_answers(pending)
    if session.state == S.RECOVERY:
        discharge_result = discharge_gate(session, now=now, **answers)
    orders = tuple(orders_for(session))
    overrides = db.session.scalars(select(FindingOverride).where(FindingOverride.session_id == session.id)
                                   .order_by(FindingOverride.id)).all()
    controlled, discharged = _one(ControlledSubstanceEntry, session), _one(DischargeRecord, session)
    events = tuple(events_for(session))
    found = pauses_for(dose, events) if dose else ()
    return ChairView(
        session=session, route=session.series.protocol.route, dose=dose, plan=plan, start=start,
        controlled=controlled, readings=readings, timeline=timeline(session, dose, readings, events, now=now),
        alerts=alerts, events=events, paused_since=found[-1].started_at if monitoring.is_paused(found) else None,
        next_due=next_vitals_due(session, now) if dose else None, discharge=discharge_result,
        discharged=discharged, instructions=discharge_rules.discharge_instructions(session.series.protocol.route),
        overrides=tuple(overrides), orders=orders, pending=pending, discharge_answers=answers,
        discharge_waiting_on=discharge_rules.waiting_on(discharge_result.open) if discharge_result else (),
        discharge_unanswered=discharge_rules.unanswered(discharge_result.open, answers) if discharge_result else (),
        staff=_staff_names(dose, controlled, discharged, pending, *readings, *alerts, *overrides, *orders, *events))


#: Columns of the chair's rows that name a staff member.
STAFF_COLUMNS = ("recorded_by_id", "changed_by_id", "ordered_by_id", "assessed_by_id", "witness_id",
                 "acknowledged_by_id", "physician_id", "discharged_by_id")


def _staff_names(*rows):
    """{staff id: "Name, credentials"} for everyone named by these rows, in one statement."""
    ids = {getattr(row, name, None) for row in rows if row is not None for name in STAFF_COLUMNS}
    ids.discard(None)
    if not ids:
        return {}
    rows = db.session.execute(select(StaffUser.id, StaffUser.full_name, StaffUser.credentials)
                              .where(StaffUser.id.in_(ids))).all()
    return {row.id: f"{row.full_name}, {row.credentials}" if row.credentials else row.full_name for row in rows}
