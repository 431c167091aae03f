"""Score use cases: record a PHQ-9 or GAD-7 taken by phone (or elsewhere outside a checklist), keep
a checklist's scores as the nurse answers, and read a patient's scores in time order."""
from collections import namedtuple

from sqlalchemy import select

from opsmgr.audit.service import record
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.policy.service import current_policy
from opsmgr.rules import screening
from opsmgr.rules.findings import Problem
from opsmgr.rules.scales import GAD7_ITEMS, ITEM_MAX, PHQ9_ITEMS, phq9_item9, score_gad7, score_phq9
from opsmgr.scores.models import CHECKLIST, GAD7, INSTRUMENTS, PHQ9, SOURCES, Score
from opsmgr.tasks.service import raise_score_task, raise_task

ITEM_COUNTS = {PHQ9: PHQ9_ITEMS, GAD7: GAD7_ITEMS}
#: What the screening rules read of a PHQ-9 (the checklist's answers have the same two names).
_Phq9Answers = namedtuple("_Phq9Answers", "phq9_items phq9_difficulty")


def record_score(patient, instrument, items, *, taken_at, source, actor, now, session=None, difficulty=None):
    """Record a complete PHQ-9 or GAD-7, scored by the existing rules (opsmgr.rules.scales, §4).

    A PHQ-9 item 9 above the policy threshold raises the same same-day physician task the checklist
    raises (rule 7), through the same screening rule; the task names this score. Bad input is
    refused with one problem per field (items as ``item1`` … ``item9``, ``difficulty``, ``taken_at``).
    """
    problems = _problems(instrument, items, difficulty, taken_at=taken_at, source=source, session=session, now=now)
    if problems:
        raise DomainError(problems)
    items = list(items)
    findings = _findings(instrument, items, difficulty)
    if any(finding.code == "PHQ9_DIFFICULTY_UNANSWERED" for finding in findings):
        raise DomainError([Problem("difficulty", "Ask the difficulty question too: the PHQ-9 asks it whenever "
                                                 "any problem was checked.")])
    [scored] = [finding.values for finding in findings if finding.code.endswith("_SCORE")]
    score = Score(patient_id=patient.id, session_id=None if session is None else session.id, instrument=instrument,
                  items=items, difficulty=difficulty, total=scored["total"], band=scored["band"],
                  taken_at=taken_at, source=source, recorded_by_id=actor.user_id, recorded_at=now)
    db.session.add(score)
    db.session.flush()
    record("score.recorded", actor=actor, now=now, object_type="score", object_id=score.id, patient_id=patient.id,
           details={"instrument": instrument, "source": source, "session_id": score.session_id})
    for finding in findings:
        if "task" in finding.values:
            if session is None:
                raise_score_task(score, finding, actor=actor, now=now)
            else:
                raise_task(session, finding, actor=actor, now=now)
    return score


def _problems(instrument, items, difficulty, *, taken_at, source, session, now):
    if instrument not in INSTRUMENTS:
        return [Problem("instrument", f"Choose the scale: {' or '.join(INSTRUMENTS)}.")]
    if source not in SOURCES:
        return [Problem("source", f"Unknown source {source!r}.")]
    if (session is not None) != (source == CHECKLIST):
        return [Problem(None, "A score has a session only when it was taken at that session's checklist.")]
    count = ITEM_COUNTS[instrument]
    if not isinstance(items, list | tuple) or len(items) != count:
        return [Problem("items", f"The {instrument} has {count} items: answer every one.")]
    problems = [Problem(f"item{number}", f"Answer item {number} (0 to {ITEM_MAX}).")
                for number, item in enumerate(items, 1) if not _is_answer(item)]
    if difficulty is not None and (instrument != PHQ9 or not _is_answer(difficulty)):
        problems.append(Problem("difficulty", f"The difficulty item is answered 0 to {ITEM_MAX}, on the PHQ-9 only."))
    if taken_at is None or taken_at.tzinfo is None:
        problems.append(Problem("taken_at", "Give the day and time the scale was taken."))
    elif taken_at > now:
        problems.append(Problem("taken_at", "The time the scale was taken cannot be in the future."))
    return problems


def _is_answer(value):
    return type(value) is int and 0 <= value <= ITEM_MAX


def _findings(instrument, items, difficulty):
    """The screening rules' findings for these answers (the score, item 9, an unanswered difficulty item)."""
    if instrument == GAD7:
        return screening.gad7_findings(items)
    _, policy = current_policy()
    return screening.phq9_findings(_Phq9Answers(items, difficulty), policy)


def keep_checklist_score(visit, score, instrument, items, difficulty, *, actor, now):
    """A checklist's answers to one scale, kept in its session's score row as the nurse saves them
    (partly answered allowed; the total once every item is). No answer left: no row. Returns the row
    or None. The checklist's evaluation raises the item-9 task (opsmgr.checklist.service.evaluate)."""
    if items is None and difficulty is None:
        if score is not None:
            db.session.delete(score)
        return None
    items = [None] * ITEM_COUNTS[instrument] if items is None else list(items)
    total, band = _scored(instrument, items, difficulty)
    if score is None:
        score = Score(patient_id=visit.patient_id, session_id=visit.id, instrument=instrument, source=CHECKLIST)
        db.session.add(score)
    score.items, score.difficulty, score.total, score.band = items, difficulty, total, band
    score.taken_at = score.recorded_at = now
    score.recorded_by_id = actor.user_id
    return score


def _scored(instrument, items, difficulty):
    """(total, band) of complete answers; (None, None) while an item is unanswered. Bad answers: ValueError."""
    if None in items:
        if instrument == PHQ9:
            phq9_item9(items)
        elif len(items) != GAD7_ITEMS:
            raise ValueError(f"GAD-7 needs exactly {GAD7_ITEMS} item answers, got {items!r}")
        return None, None
    scored = score_phq9(items, difficulty) if instrument == PHQ9 else score_gad7(items)
    return scored.total, scored.band


def scores_for(patient_ids, *, include_in_error=False):
    """The complete scores of these patients (one id or several), oldest first, in one statement;
    scores marked entered in error only when asked for."""
    ids = [patient_ids] if isinstance(patient_ids, int) else list(patient_ids)
    if not ids:
        return ()
    query = select(Score).where(Score.patient_id.in_(ids), Score.total.is_not(None))
    if not include_in_error:
        query = query.where(Score.entered_in_error_at.is_(None))
    return tuple(db.session.scalars(query.order_by(Score.taken_at, Score.id)))


def scores_by_patient(patient_ids, **options):
    """{patient id: that patient's scores, oldest first} for the chart or a list (scores_for)."""
    grouped = {patient_id: [] for patient_id in ([patient_ids] if isinstance(patient_ids, int) else patient_ids)}
    for score in scores_for(list(grouped), **options):
        grouped[score.patient_id].append(score)
    return {patient_id: tuple(rows) for patient_id, rows in grouped.items()}
