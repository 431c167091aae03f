"""Vitals and in-chair alerts, and the pauses, resumes and stops they lead to.

Pauses: an alert acknowledged with "pause" pauses a running IV infusion (an InfusionEvent), and
"Resume infusion" records the resume; the session stays infusing throughout. An alert's "stop"
records a stop event and ends the infusion. The planned end moves back by the time paused; the
vitals cadence does not change (see rules.monitoring.next_vitals_due).
"""

from sqlalchemy import select, update

from opsmgr.extensions import db
from opsmgr.infusion.dose import end_infusion
from opsmgr.infusion.models import (
    DoseRecord,
    InChairAlert,
    InfusionEvent,
    VitalSign,
)
from opsmgr.infusion.service import (
    AT_THE_CHAIR,
    COUNTED,
    InfusionError,
    S,
    as_reading,
    audit,
    dose_for,
    events_for,
    pauses_for,
)
from opsmgr.policy.service import current_policy
from opsmgr.rules import monitoring
from opsmgr.sessions.models import InfusionSession

# --- vitals and alerts ---------------------------------------------------------------------------


def record_vitals(visit, *, systolic, diastolic, heart_rate, spo2, moaas, taken_at, actor, now):
    """Store one reading from the dose until discharge; raise the alerts it calls for (rule 12)."""
    if visit.state not in AT_THE_CHAIR:
        raise InfusionError("Vitals are recorded here from the start of the dose until discharge.")
    if taken_at > now:
        raise InfusionError("This time is in the future.", "taken_at")
    # The form takes the time to the minute: a reading at the minute the dose started is the start reading.
    if taken_at < dose_for(visit).dose_started_at.replace(second=0, microsecond=0):
        raise InfusionError("This time is before the dose started; pre-dose vitals belong to the checklist.",
                            "taken_at")
    row = VitalSign(session_id=visit.id, taken_at=taken_at, systolic=systolic, diastolic=diastolic,
                    heart_rate=heart_rate, spo2=spo2, moaas=moaas, recorded_by_id=actor.user_id, recorded_at=now)
    db.session.add(row)
    db.session.flush()
    _, policy = current_policy()
    alerts = [InChairAlert(session_id=visit.id, vital_sign_id=row.id, code=f.code, message=f.message[:300],
                           raised_at=now) for f in monitoring.reading_alerts(as_reading(row), policy=policy)]
    db.session.add_all(alerts)
    db.session.flush()
    audit("vitals.recorded", visit, actor, now, vital_sign_id=row.id, alerts=[a.code for a in alerts])
    return row, alerts


def acknowledge_alert(alert, *, action, note, drug_given, actor, now):
    """A nurse or physician acknowledges an alert with an action: "pause" pauses the running
    infusion, "stop" ends it now; both are recorded as events with their time."""
    problem = monitoring.acknowledgement_problem(action, note, actor.role)
    if problem:
        raise InfusionError(problem, "action" if "Choose" in problem else "note" if "note" in problem else None)
    visit = db.session.get(InfusionSession, alert.session_id)
    if db.session.get(VitalSign, alert.vital_sign_id).is_entered_in_error:
        raise InfusionError("This alert was withdrawn: the reading that raised it was marked entered in error.")
    if action == "pause" and _running_dose(visit) is None:
        raise InfusionError("There is no running infusion to pause (it has ended, or the dose was a single one): "
                            "choose another action.", "action")
    done = db.session.execute(
        update(InChairAlert).where(InChairAlert.id == alert.id, InChairAlert.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by_id=actor.user_id, action=action, note=note.strip(),
                drug_given=(drug_given or "").strip()[:200]))
    if done.rowcount != 1:
        raise InfusionError("This alert has already been acknowledged (perhaps by a colleague just now).")
    audit("alert.acknowledged", visit, actor, now, alert_id=alert.id, code=alert.code, action=action,
           drug_given=bool((drug_given or "").strip()))
    if action == "pause":
        _pause(visit, alert, actor=actor, now=now)
    if action == "stop" and visit.state == S.INFUSING:
        _record_event(visit, "stop", actor=actor, now=now, alert=alert)
        end_infusion(visit, actor=actor, now=now, reason="Stopped after an alert")


#: Audit actions of the infusion events.
EVENT_ACTIONS = {"pause": "infusion.paused", "resume": "infusion.resumed", "stop": "infusion.stopped"}


def _running_dose(visit, *, lock=False):
    """The dose of a running IV infusion, or None. With `lock` the dose row is locked (FOR UPDATE on
    PostgreSQL; SQLite's write transaction already holds the lock), so pauses and resumes queue."""
    query = select(DoseRecord).where(DoseRecord.session_id == visit.id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    dose = db.session.scalar(query)
    if visit.state != S.INFUSING or dose is None or dose.infusion_ended_at is not None:
        return None
    return dose


def _record_event(visit, kind, *, actor, now, alert=None, note="", **details):
    row = InfusionEvent(session_id=visit.id, kind=kind, occurred_at=now, alert_id=alert.id if alert else None,
                        note=(note or "").strip()[:300], recorded_by_id=actor.user_id)
    db.session.add(row)
    db.session.flush()
    audit(EVENT_ACTIONS[kind], visit, actor, now, event_id=row.id, alert_id=row.alert_id, **details)
    return row


def _pause(visit, alert, *, actor, now):
    """Pause the running infusion; already paused, it stays paused from the first pause."""
    dose = _running_dose(visit, lock=True)
    if dose is None:
        raise InfusionError("The infusion ended just now; it cannot be paused. Choose another action.", "action")
    if monitoring.is_paused(pauses_for(dose, events_for(visit))):
        return None
    return _record_event(visit, "pause", actor=actor, now=now, alert=alert)


def resume_infusion(visit, *, note, actor, now):
    """Resume a paused IV infusion now; the planned end moves back by the time it was paused."""
    dose = _running_dose(visit, lock=True)
    if dose is None:
        raise InfusionError(f"Only a paused infusion can be resumed; the session's status is "
                            f"{visit.state.label.lower()}.")
    found = pauses_for(dose, events_for(visit))
    if not monitoring.is_paused(found):
        raise InfusionError("The infusion is not paused (perhaps a colleague resumed it just now).")
    paused = int((now - found[-1].started_at).total_seconds() // 60)
    return _record_event(visit, "resume", actor=actor, now=now, note=note, paused_minutes=paused)


def vitals_due_for(sessions, now):
    """{session id: VitalsDue} for the sessions at the chair, in two statements whatever their number."""
    at_chair = {s.id: s for s in sessions if s.state in AT_THE_CHAIR}
    if not at_chair:
        return {}
    doses = {d.session_id: d for d in db.session.scalars(select(DoseRecord).where(
        DoseRecord.session_id.in_(at_chair), DoseRecord.dose_started_at.is_not(None)))}
    readings = {}
    for row in db.session.scalars(select(VitalSign).where(VitalSign.session_id.in_(list(doses)), COUNTED)):
        readings.setdefault(row.session_id, []).append(as_reading(row))
    _, policy = current_policy()
    return {session_id: monitoring.next_vitals_due(
        route=at_chair[session_id].series.protocol.route, dose_started_at=dose.dose_started_at,
        infusion_ended_at=dose.infusion_ended_at, readings=readings.get(session_id, []), now=now, policy=policy)
        for session_id, dose in doses.items()}


def next_vitals_due(visit, now):
    """When the next reading is due for this session (None before the dose and after discharge)."""
    return vitals_due_for([visit], now).get(visit.id)
