"""What each role's home lists: the nurse's board of today's chairs, the coordinator's schedule (a day's
time grid within its week), and the physician's open tasks, notes to sign and sessions waiting for an
override. Each list takes a fixed number of statements, whatever the number of rows.

A session waits for an override when a finding a physician may override is open at one of its gates: at the start,
from the checklist's stored evaluation (checked in or on the checklist); at discharge, from the
nurse's refused discharge answers while the patient is in recovery. Overrides already given cover
findings as at the gates themselves.
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import joinedload

from opsmgr.checklist.models import ChecklistResponse
from opsmgr.extensions import db
from opsmgr.gates.models import FindingOverride
from opsmgr.gates.service import as_overrides, covering_overrides, finding_from_dict
from opsmgr.infusion import alerts
from opsmgr.infusion.models import DischargeAssessment
from opsmgr.infusion.vitals import vitals_due_for
from opsmgr.notes.service import status_by_session, unsigned_queue
from opsmgr.rules.findings import open_findings
from opsmgr.rules.session_states import ACTIVE_STATES, SessionState
from opsmgr.schedule import grid
from opsmgr.schedule.clinic import ACTIVE_VALUES, load_calendar
from opsmgr.schedule.models import ClinicSetting
from opsmgr.schedule.service import active_chairs, as_local, local_day_bounds, sessions_between
from opsmgr.sessions.models import InfusionSession
from opsmgr.tasks.service import open_tasks

#: Before the dose, a checklist finding waits for the physician in these states.
CHECKLIST_STATES = (SessionState.CHECKED_IN.value, SessionState.CHECKLIST.value)


@dataclass(frozen=True)
class Waiting:
    infusion_session: InfusionSession
    #: "start" (the checklist) or "discharge".
    gate: str
    #: The open findings a physician may override.
    findings: tuple
    #: Since when the session waits: the checklist's evaluation, or the refused discharge.
    since: datetime


def _with_people(query):
    # Many-to-one: joined into the same statement, so an empty list and a long one cost one statement each.
    return query.options(joinedload(InfusionSession.patient), joinedload(InfusionSession.chair))


def _checklists():
    query = (select(InfusionSession, ChecklistResponse)
             .join(ChecklistResponse, ChecklistResponse.session_id == InfusionSession.id)
             .where(InfusionSession.status.in_(CHECKLIST_STATES), ChecklistResponse.outcome != "cleared"))
    return [(visit, "start", response.findings, response.evaluated_at)
            for visit, response in db.session.execute(_with_people(query)).all()]


def _discharges():
    in_recovery = select(InfusionSession.id).where(InfusionSession.status == SessionState.RECOVERY.value)
    latest = (select(func.max(DischargeAssessment.id)).where(DischargeAssessment.session_id.in_(in_recovery))
              .group_by(DischargeAssessment.session_id)).scalar_subquery()
    query = (select(InfusionSession, DischargeAssessment)
             .join(DischargeAssessment, DischargeAssessment.session_id == InfusionSession.id)
             .where(InfusionSession.status == SessionState.RECOVERY.value, DischargeAssessment.id.in_(latest)))
    return [(visit, "discharge", row.open_findings, row.assessed_at)
            for visit, row in db.session.execute(_with_people(query)).all()]


def waiting_for_override():
    """Every session waiting for a physician's override, oldest first (a Waiting each)."""
    candidates = _checklists() + _discharges()
    # The overrides of every session in a waiting state, asked even when none waits: one statement always,
    # however long the lists (the sessions in these states are today's few).
    waiting_states = (*CHECKLIST_STATES, SessionState.RECOVERY.value)
    overrides = {}
    for row in db.session.scalars(select(FindingOverride).where(FindingOverride.session_id.in_(
            select(InfusionSession.id).where(InfusionSession.status.in_(waiting_states))))):
        overrides.setdefault((row.session_id, row.gate), []).append(row)
    waiting = []
    for visit, gate, stored, since in candidates:
        findings = [finding_from_dict(data) for data in stored or ()]
        bound = {f.code for f in findings} if gate == "discharge" else frozenset()
        rows = covering_overrides(visit, gate, findings, bound, rows=overrides.get((visit.id, gate), []))
        still = [f for f in open_findings(findings, as_overrides(rows)) if f.severity.overridable]
        if still:
            waiting.append(Waiting(visit, gate, tuple(still), since))
    return sorted(waiting, key=lambda row: (row.since, row.infusion_session.id))


@dataclass(frozen=True)
class Board:
    """Today's chairs: every active chair (an empty one too) and any other chair a session today is on."""

    #: {chair id: its sessions today, by start}, the active chairs first in board order.
    by_chair: dict
    #: {chair id: Chair}
    chairs: dict
    #: {visit id: VitalsDue} for the sessions at the chair.
    vitals_due: dict
    #: {visit id: note status}
    note_status: dict
    #: {visit id: its in-chair alerts (infusion.alerts.AlertRow), oldest first}
    alerts: dict
    count: int


def todays_board(today, *, now, zone):
    """The nurse's board: today's sessions by chair, each with its next vitals and its note's status."""
    sessions = sessions_between(*local_day_bounds(today, zone))
    chairs = active_chairs()
    by_chair = {chair.id: [] for chair in chairs}
    for visit in sessions:
        by_chair.setdefault(visit.chair_id, []).append(visit)
    return Board(by_chair=by_chair,
                 chairs={chair.id: chair for chair in chairs} | {visit.chair_id: visit.chair for visit in sessions},
                 vitals_due=vitals_due_for(sessions, now),
                 note_status=status_by_session([visit.id for visit in sessions]),
                 alerts=alerts.alerts_by_session([visit.id for visit in sessions]), count=len(sessions))


@dataclass(frozen=True)
class ScheduleDay:
    """One day of the coordinator's schedule as a time grid, inside its week (Monday to Sunday)."""

    day: date
    monday: date
    days: list
    #: {day of the week: live sessions booked}
    counts: dict
    #: {closed day of the week: the closure's label, or "" on a weekday the clinic never opens}
    closed: dict
    #: The day's (opens, closes) local minutes, or None when the clinic is closed.
    hours: tuple | None
    #: The grid's first and last local minute, the hour labels and one Column per chair.
    first: int
    last: int
    axis: tuple
    columns: list
    #: The day's cancelled and no-show sessions (they hold no chair), by start.
    released: list
    turnover: int
    #: Today: the row and local minute of now on the grid (None on any other day or outside the grid).
    now_row: int | None
    now_minute: int | None
    #: Every session of the day (for confirmations), and how many.
    sessions: list
    count: int


def _local_minutes(moment, day, zone):
    local = as_local(moment, zone)
    if local.date() < day:
        return 0
    if local.date() > day:
        return 24 * 60
    return local.hour * 60 + local.minute


def _week_counts(days, zone):
    """Live sessions per day of the week, in one statement (one conditional count per day)."""
    bounds = [local_day_bounds(day, zone) for day in days]
    live = InfusionSession.status.in_(ACTIVE_VALUES)
    row = db.session.execute(select(*[
        func.count(case((and_(InfusionSession.starts_at >= start, InfusionSession.starts_at < end), 1)))
        for start, end in bounds]).where(live, InfusionSession.starts_at >= bounds[0][0],
                                         InfusionSession.starts_at < bounds[-1][1])).one()
    return dict(zip(days, row, strict=True))


def schedule_day(day, *, now, zone, offer_slots=True):
    """The day's grid: each chair (the active ones, and any other a session that day is on) with its
    sessions sized by their length plus turnover, and free, past and closed time (free time cut into
    half-hour slots to book when `offer_slots`); the week's counts."""
    monday = day - timedelta(days=day.weekday())
    days = [monday + timedelta(days=i) for i in range(7)]
    calendar = load_calendar()
    turnover = db.session.get(ClinicSetting, 1).turnover_minutes
    chairs = active_chairs()
    sessions = sessions_between(*local_day_bounds(day, zone))
    live = [visit for visit in sessions if visit.state in ACTIVE_STATES]
    spans = {visit.id: (_local_minutes(visit.starts_at, day, zone), _local_minutes(visit.ends_at, day, zone))
             for visit in live}
    week_hours = [(opens.hour * 60 + opens.minute, closes.hour * 60 + closes.minute)
                  for opens, closes in calendar.hours.values()]
    first, last = grid.window(week_hours, [(start, end + turnover) for start, end in spans.values()])
    hours = None
    if calendar.is_open(day):
        opens, closes = calendar.hours[day.weekday()]
        hours = (opens.hour * 60 + opens.minute, closes.hour * 60 + closes.minute)
    today = as_local(now, zone).date()
    bookable_from = 0 if day > today else 24 * 60 if day < today else _local_minutes(now, day, zone)
    by_chair = {chair.id: [] for chair in chairs}
    every_chair = {chair.id: chair for chair in chairs}
    for visit in live:
        by_chair.setdefault(visit.chair_id, []).append((visit, *spans[visit.id]))
        every_chair.setdefault(visit.chair_id, visit.chair)
    columns = [grid.column(every_chair[chair_id], items, first=first, last=last, hours=hours, turnover=turnover,
                           bookable_from=bookable_from, slot=grid.SLOT if offer_slots else None)
               for chair_id, items in by_chair.items()]
    now_row = 1 + (bookable_from - first) // grid.STEP if day == today and first <= bookable_from < last else None
    return ScheduleDay(day=day, monday=monday, days=days, counts=_week_counts(days, zone),
                       closed={d: calendar.closures.get(d, "") for d in days if not calendar.is_open(d)},
                       hours=hours, first=first, last=last, axis=grid.axis(first, last), columns=columns,
                       released=[visit for visit in sessions if visit.state not in ACTIVE_STATES],
                       turnover=turnover, now_row=now_row, now_minute=bookable_from if now_row else None,
                       sessions=sessions, count=len(sessions))


@dataclass(frozen=True)
class PhysicianLists:
    #: Open tasks, oldest first.
    tasks: list
    #: Complete notes waiting for a signature, oldest session first.
    unsigned: list
    #: Sessions waiting for an override, oldest first (a Waiting each).
    waiting: list
    #: In-chair alerts not acknowledged yet, oldest first (every physician sees them: no duty roster).
    alerts: list
    #: In-chair alerts acknowledged since the clinic day began, latest first, naming who.
    acknowledged: list


def physician_lists(*, now, today, zone):
    """The physician's home: open in-chair alerts, open tasks, notes to sign and sessions waiting for an override."""
    open_alerts, acknowledged = alerts.open_and_acknowledged(local_day_bounds(today, zone)[0])
    return PhysicianLists(tasks=open_tasks(today=today), unsigned=unsigned_queue(now=now),
                          waiting=waiting_for_override(), alerts=open_alerts, acknowledged=acknowledged)
