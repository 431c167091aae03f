"""Checklist use cases: save answers (partially, with a version check), evaluate them under the
current policy, record physician overrides, and the start gate the dose must pass."""
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from opsmgr.audit.service import SYSTEM, record
from opsmgr.auth.models import StaffUser
from opsmgr.auth.service import actor_for
from opsmgr.checklist.models import ChecklistResponse
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.gates import service as gates
from opsmgr.gates.models import FindingOverride
from opsmgr.policy.service import current_policy
from opsmgr.rules import checklist as rules
from opsmgr.rules.findings import (
    Finding,
    Outcome,
    Problem,
    Severity,
    open_findings,
    outcome_of,
)
from opsmgr.rules.session_states import SessionState
from opsmgr.schedule.service import change_status, other_day_problem
from opsmgr.scores import service as scores
from opsmgr.scores.models import GAD7, PHQ9
from opsmgr.sessions.models import InfusionSession
from opsmgr.tasks.service import raise_tasks


class ChecklistError(DomainError):
    """A refused checklist step: a message and the field it concerns (None: the form)."""

    def __init__(self, message, field=None):
        super().__init__([Problem(field, message)])


#: The start gate before any checklist answer is saved.
NOT_STARTED = Finding("CHECKLIST_NOT_STARTED", Severity.ABSOLUTE, "The pre-session checklist has not been done.")


class StaleChecklist(ChecklistError):
    """Someone else saved this checklist after the form was opened."""


def response_for(visit, *, now, create=False):
    """The session's checklist row (created empty on first use when `create`)."""
    response = db.session.scalar(select(ChecklistResponse).where(ChecklistResponse.session_id == visit.id))
    if response is None and create:
        response = ChecklistResponse(session_id=visit.id, findings=[], updated_at=now)
        db.session.add(response)
        db.session.flush()
    return response


def answers_from(response, visit):
    """The stored answers as the rules' plain input."""
    patient, protocol = visit.patient, visit.series.protocol
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
        willingness=response.willingness, intention=response.intention or "",
        escort_arrangement=response.escort_arrangement)


def _float(value):
    return None if value is None else float(value)


def _tuple(value):
    return None if value is None else tuple(value)


def evaluate(response, visit, *, now, actor=SYSTEM):
    """Evaluate the answers under the current policy, keep the result on the response, and raise
    the physician tasks the findings ask for (PHQ-9 item 9, an elevated suicide-risk screen)."""
    version, policy = current_policy()
    findings = rules.evaluate_readiness(answers_from(response, visit), now=now, policy=policy)
    response.policy_version, response.outcome = version, outcome_of(findings).value
    response.findings, response.evaluated_at = [gates.finding_to_dict(f) for f in findings], now
    db.session.flush()
    raise_tasks(visit, findings, actor=actor, now=now)
    return findings


def save_answers(visit, values, *, expected_version, actor, now):
    """Store answers (any subset: a nurse may come back later) and re-evaluate; refuse a stale form."""
    response = response_for(visit, now=now, create=True)
    if expected_version is not None and response.version != expected_version:
        raise StaleChecklist("Someone else saved this checklist while you were working on it. Nothing was "
                             "saved; the current answers are shown, with yours beside them.")
    for name, value in values.items():
        if name not in SCALE_ANSWERS:
            setattr(response, name, value)
    keep_scores(response, visit, values, actor=actor, now=now)
    response.updated_at, response.updated_by_id = now, actor.user_id
    findings = evaluate(response, visit, now=now, actor=actor)
    record("checklist.saved", actor=actor, now=now, object_type="infusion_session", object_id=visit.id,
           patient_id=visit.patient_id, details={"fields": sorted(values), "outcome": response.outcome})
    return response, findings


#: The answers kept in the score table (opsmgr.scores), not in checklist_response.
SCALE_ANSWERS = frozenset({"phq9_items", "phq9_difficulty", "gad7_items"})


def keep_scores(response, visit, values, *, actor, now):
    """Write the PHQ-9 and GAD-7 answers among `values` to the session's score rows (one per scale)."""
    if "phq9_items" in values or "phq9_difficulty" in values:
        row = scores.keep_checklist_score(
            visit, response.phq9_score, PHQ9, values.get("phq9_items", response.phq9_items),
            values.get("phq9_difficulty", response.phq9_difficulty), actor=actor, now=now)
        set_committed_value(response, "phq9_score", row)
    if "gad7_items" in values:
        row = scores.keep_checklist_score(visit, response.gad7_score, GAD7, values["gad7_items"], None,
                                          actor=actor, now=now)
        set_committed_value(response, "gad7_score", row)


def start_gate(visit, *, now):
    """Re-evaluate the checklist now (vitals go stale) and store it; the Gate says whether the dose may start."""
    response = response_for(visit, now=now)
    if response is None:
        version, _ = current_policy()
        return gates.decide(visit, "start", (NOT_STARTED,), version)
    return gates.decide(visit, "start", evaluate(response, visit, now=now), response.policy_version)


# --- The checklist page: fill, override, and what the nurse compares against ----------------------

#: Before check-in there is no checklist; once the dose has started it is part of the record.
FILLABLE_STATES = frozenset({SessionState.CHECKED_IN, SessionState.CHECKLIST, SessionState.CLEARED})
#: The version a form carries when it was opened before the checklist was first saved.
NOT_SAVED = 0
#: States of a session that was actually held (the dose started).
HELD_STATES = (SessionState.INFUSING.value, SessionState.RECOVERY.value, SessionState.DISCHARGED.value)


def _fillable(visit):
    if visit.state not in FILLABLE_STATES:
        raise ChecklistError(f"The checklist can be changed only after check-in and before the dose starts; "
                             f"this session is {visit.state.label.lower()}.")


def current_findings(response, visit, *, now):
    """The findings the stored answers give now, without storing anything (vitals go stale)."""
    _, policy = current_policy()
    return rules.evaluate_readiness(answers_from(response, visit), now=now, policy=policy)


def fill_checklist(visit, values, *, expected_version, actor, now):
    """Save the nurse's answers: the first save moves a checked-in session to 'checklist', and a
    result with nothing open (cleared, or every open finding overridden) moves it to 'cleared'.
    Answers are taken only on the day the session is booked for (clinic time)."""
    _fillable(visit)
    problem = other_day_problem(visit, now)
    if problem:
        raise ChecklistError(problem, field="day")
    if expected_version == NOT_SAVED:
        if response_for(visit, now=now) is not None:
            raise StaleChecklist("Someone else started this checklist while you were working on it. Nothing "
                                 "was saved; the current answers are shown, with yours beside them.")
        expected_version = None
    response, findings = save_answers(visit, values, expected_version=expected_version, actor=actor, now=now)
    if visit.state == SessionState.CHECKED_IN:
        change_status(visit, SessionState.CHECKLIST, reason="", actor=actor, now=now)
    clear_when_nothing_open(visit, findings, actor=actor, now=now)
    return response, findings


def clear_when_nothing_open(visit, findings, *, actor, now):
    """Enter 'cleared' through the gate when nothing of the checklist stays open, wherever the last
    override was given (the checklist or the chair page); a session already cleared keeps its
    status (the start re-checks)."""
    if visit.state != SessionState.CHECKLIST:
        return
    if not gates.decide(visit, "start", findings, None).may_proceed:
        return
    reason = "Cleared by physician override" if any(f.stops_start for f in findings) else ""
    change_status(visit, SessionState.CLEARED, reason=reason, actor=actor, now=now, gate_passed=True)


def override_finding(visit, *, code, physician, password, reason, now, ip=None, totp_code=None):
    """A physician overrides one open finding of the current evaluation (never an absolute one)."""
    _fillable(visit)
    response = response_for(visit, now=now)
    if response is None:
        raise ChecklistError("The checklist has not been saved yet: there is nothing to override.")
    version, _ = current_policy()
    decided = gates.decide(visit, "start", current_findings(response, visit, now=now), version)
    row = gates.override(visit, decided, code=code, physician=physician, password=password, reason=reason,
                         now=now, ip=ip, totp_code=totp_code)
    clear_when_nothing_open(visit, decided.findings, actor=actor_for(physician, ip), now=now)
    return row


@dataclass(frozen=True)
class OverrideView:
    row: FindingOverride
    physician_name: str


def override_views(visit, gate="start"):
    """The session's overrides at a gate, by code, with the physician's name (two statements)."""
    rows = gates.overrides_for(visit, gate)
    ids = {row.physician_id for row in rows}
    names = {row.id: row.full_name for row in db.session.execute(
        select(StaffUser.id, StaffUser.full_name).where(StaffUser.id.in_(ids)))} if ids else {}
    return {row.code: OverrideView(row, names.get(row.physician_id, "")) for row in rows}


@dataclass(frozen=True)
class MedicationChangeOnRecord:
    name: str
    med_class: str
    change: str
    on: date


@dataclass(frozen=True)
class PreviousVisit:
    """What the contraindication recheck is compared with: the last session that was held."""

    visit: object
    response: ChecklistResponse | None
    since: date | None
    #: Medications on the record started or stopped since the previous session (or, at the first
    #: session, the current ones, as "current").
    medication_changes: tuple


def previous_visit(visit, *, zone):
    """The patient's last held session before this one, its checklist, and the medication changes since."""
    previous = db.session.scalar(
        select(InfusionSession).where(InfusionSession.patient_id == visit.patient_id,
                                      InfusionSession.starts_at < visit.starts_at,
                                      InfusionSession.status.in_(HELD_STATES))
        .order_by(InfusionSession.starts_at.desc()).limit(1))
    medications = [m for m in visit.patient.medications if not m.is_entered_in_error]
    if previous is None:
        current = tuple(MedicationChangeOnRecord(m.name, m.med_class, "current", m.started_on)
                        for m in medications if m.stopped_on is None)
        return PreviousVisit(None, None, None, current)
    since = previous.starts_at.astimezone(zone).date()
    changes = [MedicationChangeOnRecord(m.name, m.med_class, "started", m.started_on)
               for m in medications if m.started_on is not None and m.started_on >= since]
    changes += [MedicationChangeOnRecord(m.name, m.med_class, "stopped", m.stopped_on)
                for m in medications if m.stopped_on is not None and m.stopped_on >= since]
    changes.sort(key=lambda change: change.on)
    return PreviousVisit(previous, response_for(previous, now=None), since, tuple(changes))


@dataclass(frozen=True)
class Evaluation:
    """The checklist as it evaluates now, for the page: outcome, findings, overrides, tasks, scores."""

    outcome: Outcome
    #: Clinical findings, in checklist order; the items not answered yet are apart in `unanswered`.
    findings: tuple
    unanswered: tuple
    open_codes: frozenset
    #: Codes of the findings the form below answers ("answer below", not a stop).
    answer_below: frozenset
    #: code -> OverrideView
    overrides: dict
    #: (task, finding): the same-day physician review and the call to the physician.
    tasks: tuple
    #: "phq9" / "gad7" -> the score finding's values (total, band), when every item is answered.
    scores: dict
    policy_version: int
    evaluated_at: datetime

    @property
    def is_overridden_clear(self):
        return self.outcome != Outcome.CLEARED and not self.open_codes


def evaluation_for(visit, response, *, now):
    """The live evaluation of the saved answers (None before the first save); stores nothing."""
    if response is None:
        return None
    version, policy = current_policy()
    findings = rules.evaluate_readiness(answers_from(response, visit), now=now, policy=policy)
    views = override_views(visit)
    covering = {row.id for row in gates.covering_overrides(visit, "start", findings,
                                                      rows=[view.row for view in views.values()])}
    overrides = {code: view for code, view in views.items() if view.row.id in covering}
    still_open = open_findings(findings, gates.as_overrides(view.row for view in overrides.values()))
    tasks = tuple((f.values["task"], f) for f in findings if "task" in f.values)
    scores = {name: f.values for name, code in (("phq9", "PHQ9_SCORE"), ("gad7", "GAD7_SCORE"))
              for f in findings if f.code == code}
    return Evaluation(
        outcome=outcome_of(findings), findings=tuple(f for f in findings if not f.code.endswith("_UNANSWERED")),
        unanswered=tuple(f for f in findings if f.code.endswith("_UNANSWERED")),
        open_codes=frozenset(f.code for f in still_open),
        answer_below=frozenset(f.code for f in findings if rules.is_answered_in_the_form(f)), overrides=overrides,
        tasks=tasks, scores=scores, policy_version=version, evaluated_at=now)

