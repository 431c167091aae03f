"""Physician tasks: raised from checklist findings, listed oldest first, resolved by a physician.

A finding asks for a task through its `task` value (PHQ-9 item 9 above the threshold: a
same-day review; a moderate or high suicide-risk screen: call the physician). Each session gets
one task per finding code, however often the checklist is saved (a PHQ-9 taken by phone: one per
score): a resolved task is not raised
again, and a task stays open when a later save no longer gives its finding (a corrected answer
is the physician's to close, with a note). Resolving a task is not an override: the finding
still needs the physician's override, with their password, before the dose.
"""
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update

from opsmgr.audit.service import record
from opsmgr.core.clock import clinic_zone
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.patients.models import Patient
from opsmgr.rules.findings import Problem, resolution_problem
from opsmgr.scores.models import Score
from opsmgr.sessions.models import InfusionSession
from opsmgr.tasks.models import PhysicianTask


class TaskError(DomainError):
    """A refused resolution; the rule's message names no field (the resolve form has only the note)."""

    def __init__(self, message, field=None):
        super().__init__([Problem(field, message)])


def _audit(event, task, actor, now, **details):
    origin = {"session_id": task.session_id} if task.score_id is None else {"score_id": task.score_id}
    record(event, actor=actor, now=now, object_type="physician_task", object_id=task.id,
           patient_id=task.patient_id, details={**origin, "code": task.code, **details})


def raise_task(visit, finding, *, actor, now):
    """The task `finding` asks for, raised now and due today (clinic time); the existing one if
    this session already has a task for this code, open or resolved."""
    return _raise(finding, actor=actor, now=now, patient_id=visit.patient_id, session_id=visit.id)


def raise_score_task(score, finding, *, actor, now):
    """The task a phone score's finding asks for (PHQ-9 item 9), as raise_task does for a session."""
    return _raise(finding, actor=actor, now=now, patient_id=score.patient_id, score_id=score.id)


def _raise(finding, *, actor, now, patient_id, session_id=None, score_id=None):
    origin = (PhysicianTask.session_id == session_id if score_id is None else PhysicianTask.score_id == score_id)
    existing = db.session.scalar(select(PhysicianTask).where(origin, PhysicianTask.code == finding.code))
    if existing is not None:
        return existing
    task = PhysicianTask(session_id=session_id, score_id=score_id, patient_id=patient_id, code=finding.code,
                         kind=finding.values["task"], message=finding.message[:300], created_at=now,
                         due_on=now.astimezone(clinic_zone()).date())
    db.session.add(task)
    db.session.flush()
    _audit("physician_task.raised", task, actor, now, kind=task.kind, due_on=task.due_on.isoformat())
    return task


def raise_tasks(visit, findings, *, actor, now):
    """Raise the task of every finding that asks for one (see raise_task)."""
    return [raise_task(visit, finding, actor=actor, now=now) for finding in findings if "task" in finding.values]


def resolve_task(task, *, actor, note, now):
    """A physician closes an open task with a note; a task closed by someone else meanwhile is refused."""
    problem = resolution_problem(note, actor.role)
    if problem:
        raise TaskError(problem)
    done = db.session.execute(
        update(PhysicianTask).where(PhysicianTask.id == task.id, PhysicianTask.resolved_at.is_(None))
        .values(resolved_at=now, resolved_by_id=actor.user_id, resolution_note=note.strip()[:2000]))
    if done.rowcount != 1:
        raise TaskError("This task has already been resolved (perhaps by a colleague just now).")
    _audit("physician_task.resolved", task, actor, now, late=now.astimezone(clinic_zone()).date() > task.due_on)
    return task


@dataclass(frozen=True)
class OpenTask:
    task: PhysicianTask
    patient: Patient
    #: The session's time, or None for a task raised by a phone score (then `score_taken_at`).
    session_starts_at: datetime | None
    #: Past its due day (clinic time).
    is_overdue: bool
    score_taken_at: datetime | None = None


def open_tasks(*, today: date):
    """Every open task, oldest first, with its patient and session time: one statement whatever their number."""
    rows = db.session.execute(
        select(PhysicianTask, Patient, InfusionSession.starts_at, Score.taken_at)
        .outerjoin(InfusionSession, InfusionSession.id == PhysicianTask.session_id)
        .outerjoin(Score, Score.id == PhysicianTask.score_id)
        .join(Patient, Patient.id == PhysicianTask.patient_id)
        .where(PhysicianTask.resolved_at.is_(None))
        .order_by(PhysicianTask.created_at, PhysicianTask.id)).all()
    return tuple(OpenTask(task, patient, starts_at, task.due_on < today, taken_at)
                 for task, patient, starts_at, taken_at in rows)
