"""What the chair page shows: the gates for the proposed time, the dose, the timeline, alerts, discharge."""
from dataclasses import dataclass
from datetime import timedelta

from opsmgr.checklist import service as checklist
from opsmgr.gates.service import Gate
from opsmgr.infusion.gate import assessment_answers, discharge_gate, start_gate
from opsmgr.infusion.orders import DosePlan
from opsmgr.infusion.service import (
    BEFORE_THE_DOSE,
    S,
    pauses_for,
)
from opsmgr.infusion.vitals import next_vitals_due
from opsmgr.policy.service import current_policy
from opsmgr.rules import discharge as discharge_rules
from opsmgr.rules import monitoring
from opsmgr.sessions.record import load_record

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


def timeline(visit, dose, readings, events=(), *, now):
    """The protocol's timepoints (rule 11), each with the reading taken near it, and the pauses,
    resumes and stops at their times. A running infusion's end is planned later by the time paused."""
    if dose is None or dose.dose_started_at is None:
        return ()
    _, policy = current_policy()
    ended = dose.infusion_ended_at or monitoring.planned_infusion_end(
        dose_started_at=dose.dose_started_at, infusion_minutes=dose.infusion_minutes,
        pauses=pauses_for(dose, events), now=now)
    points = monitoring.vitals_timepoints(route=visit.series.protocol.route, dose_started_at=dose.dose_started_at,
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

    visit: object
    route: str
    dose: object
    plan: DosePlan | None
    start: Gate | None
    controlled: object
    #: Every reading, those marked entered in error included (shown struck through).
    readings: tuple
    timeline: tuple
    alerts: tuple
    #: {alert id: its reading} for alerts withdrawn because their reading was marked entered in error.
    withdrawn: dict
    #: The session's record is signed: readings can no longer be marked entered in error.
    signed: bool
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
    #: Who takes the patient home, as the checklist recorded it (shown at the discharge).
    ride_home: str
    #: The answers the discharge gate was evaluated for.
    discharge_answers: dict
    #: Open discharge findings no answer on the form can clear (the discharge is not offered), and
    #: those that are only a question not answered yet.
    discharge_waiting_on: tuple
    discharge_unanswered: tuple
    staff: dict


def chair_view(visit, *, now, infusion_minutes=None, moaas=None, escort_present=None,
               instructions_given=None, condition=""):
    """The page's data: the session's rows as recorded (load_record), the start gate for the dose in
    force over the proposed time, and the discharge gate for the answers given (else a refused
    discharge's pending answers), both decided now. Nothing is stored."""
    record = load_record(visit.id)
    dose, readings, alerts, events = record.dose, record.vitals, record.alerts, record.infusion_events
    start = plan = discharge_result = None
    if dose is None and visit.state in BEFORE_THE_DOSE:
        start, plan = start_gate(visit, now=now, infusion_minutes=infusion_minutes)
    pending = record.discharge_assessments[-1] if visit.state == S.RECOVERY and record.discharge_assessments else None
    answers = {"moaas": moaas, "escort_present": escort_present, "instructions_given": instructions_given,
               "condition": condition}
    if pending is not None and moaas is None and escort_present is None and instructions_given is None:
        answers = assessment_answers(pending)
    ride_home = ""
    if visit.state == S.RECOVERY:
        discharge_result = discharge_gate(visit, now=now, **answers)
        ride_home = _ride_home(checklist.response_for(visit, now=now))
    controlled, discharged = record.controlled_substance, record.discharge
    found = pauses_for(dose, events) if dose else ()
    return ChairView(
        visit=visit, route=visit.series.protocol.route, dose=dose, plan=plan, start=start,
        controlled=controlled, readings=readings,
        timeline=timeline(visit, dose, record.counted_vitals, events, now=now), alerts=alerts,
        withdrawn=record.withdrawn, signed=record.note is not None and record.note.signed_at is not None,
        events=events, paused_since=found[-1].started_at if monitoring.is_paused(found) else None,
        next_due=next_vitals_due(visit, now) if dose else None, discharge=discharge_result,
        discharged=discharged, instructions=discharge_rules.discharge_instructions(visit.series.protocol.route),
        overrides=record.overrides, orders=record.dose_orders, ride_home=ride_home, pending=pending,
        discharge_answers=answers,
        discharge_waiting_on=discharge_rules.waiting_on(discharge_result.open) if discharge_result else (),
        discharge_unanswered=discharge_rules.unanswered(discharge_result.open, answers) if discharge_result else (),
        staff=record.staff)


def _ride_home(response):
    """The checklist's answer to who takes the patient home, in words ("" when not answered)."""
    if response is None:
        return ""
    if response.escort_arrangement:
        return f"no escort today; arranged: {response.escort_arrangement}"
    if response.escort_name:
        return f"{response.escort_name}" + (f", {response.escort_phone}" if response.escort_phone else "")
    return ""
