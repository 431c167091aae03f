"""What each role's home lists: the nurse's board of today's chairs, the coordinator's week, and the
physician's open tasks, notes to sign and sessions waiting for an override. Each list takes a fixed
number of statements, whatever the number of rows.

A session waits for an override when a finding a physician may override is open at one of its gates: at the start,
from the checklist's stored evaluation (checked in or on the checklist); at discharge, from the
nurse's refused discharge answers while the patient is in recovery. Overrides already given cover
findings as at the gates themselves.
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from opsmgr.checklist.models import ChecklistResponse
from opsmgr.extensions import db
from opsmgr.gates.models import FindingOverride
from opsmgr.gates.service import as_overrides, covering_overrides, finding_from_dict
from opsmgr.infusion.models import DischargeAssessment
from opsmgr.infusion.vitals import vitals_due_for
from opsmgr.notes.service import status_by_session, unsigned_queue
from opsmgr.rules.findings import open_findings
from opsmgr.rules.session_states import SessionState
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
    return query.options(selectinload(InfusionSession.patient), selectinload(InfusionSession.chair))


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
    ids = {visit.id for visit, *_ in candidates}
    overrides = {}
    if ids:
        for row in db.session.scalars(select(FindingOverride).where(FindingOverride.session_id.in_(ids))):
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
                 note_status=status_by_session([visit.id for visit in sessions]), count=len(sessions))


@dataclass(frozen=True)
class Week:
    """Seven days from a Monday, by active chair."""

    monday: date
    days: list
    chairs: list
    #: {(local day, chair id): that chair's sessions that day, by start}
    cells: dict
    count: int


def week_of(day, *, zone):
    """The coordinator's week holding `day`: its sessions by local day and chair."""
    monday = day - timedelta(days=day.weekday())
    days = [monday + timedelta(days=i) for i in range(7)]
    start, _ = local_day_bounds(monday, zone)
    _, end = local_day_bounds(days[-1], zone)
    chairs = active_chairs()
    sessions = sessions_between(start, end)
    cells = {}
    for visit in sessions:
        cells.setdefault((as_local(visit.starts_at, zone).date(), visit.chair_id), []).append(visit)
    return Week(monday=monday, days=days, chairs=chairs, cells=cells, count=len(sessions))


@dataclass(frozen=True)
class PhysicianLists:
    #: Open tasks, oldest first.
    tasks: list
    #: Complete notes waiting for a signature, oldest session first.
    unsigned: list
    #: Sessions waiting for an override, oldest first (a Waiting each).
    waiting: list


def physician_lists(*, now, today):
    """The physician's home: open tasks, notes to sign and sessions waiting for an override."""
    return PhysicianLists(tasks=open_tasks(today=today), unsigned=unsigned_queue(now=now),
                          waiting=waiting_for_override())
