"""The clinic's outcome report: loads every series, its sessions, PHQ-9s and adverse-event counts in four
statements whatever the clinic's size, then leaves the deciding to opsmgr.rules.outcomes."""
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select

from opsmgr.audit.service import record
from opsmgr.extensions import db
from opsmgr.notes.models import AdverseEvent
from opsmgr.rules import outcomes
from opsmgr.rules.outcomes import ScoreFact, SessionFact
from opsmgr.scores.models import PHQ9
from opsmgr.scores.service import scores_for
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.sessions.models import InfusionSession


@dataclass(frozen=True)
class OutcomeReport:
    groups: list

    @property
    def series(self):
        return sum(group.series for group in self.groups)


def outcome_report(*, actor, now, zone, start=None, end=None):
    """Outcomes by protocol and quarter for series first dosed between `start` and `end` (clinic dates,
    inclusive, either open). Audited with counts only."""
    rows = _series_rows(zone)
    report = OutcomeReport(outcomes.aggregate(rows, zone=zone, start=start, end=end))
    record("reports.outcomes_viewed", actor=actor, now=now,
           details={"groups": len(report.groups), "series": report.series, "filtered": bool(start or end)})
    return report


def _series_rows(zone):
    """(protocol name, SeriesOutcome, dosed sessions, adverse events) per series."""
    series = db.session.execute(
        select(InfusionSeries.id, InfusionSeries.patient_id, Protocol.name)
        .join(Protocol, Protocol.id == InfusionSeries.protocol_id).order_by(InfusionSeries.id)).all()
    sessions = defaultdict(list)
    series_of = {}
    for row in db.session.execute(select(InfusionSession.id, InfusionSession.series_id, InfusionSession.starts_at,
                                         InfusionSession.status)):
        sessions[row.series_id].append(SessionFact(row.id, row.starts_at, row.status))
        series_of[row.id] = row.series_id
    events = dict(db.session.execute(
        select(AdverseEvent.session_id, func.count()).group_by(AdverseEvent.session_id)).all())
    checklist, phone = defaultdict(list), defaultdict(list)
    for score in scores_for(sorted({row.patient_id for row in series})):
        if score.instrument != PHQ9:
            continue
        fact = ScoreFact(score.taken_at, score.total, score.session_id)
        if score.session_id is None:
            phone[score.patient_id].append(fact)
        elif score.session_id in series_of:
            checklist[series_of[score.session_id]].append(fact)
    return _outcomes(series, sessions, events, checklist, phone, zone)


def _outcomes(series, sessions, events, checklist, phone, zone):
    first = {row.id: outcomes.series_outcome(sessions[row.id], checklist[row.id], zone=zone) for row in series}
    by_patient = defaultdict(dict)
    for row in series:
        by_patient[row.patient_id][row.id] = first[row.id].first_dose_at
    rows = []
    for row in series:
        outcome = first[row.id]
        given = outcomes.phone_scores_by_series(by_patient[row.patient_id], phone[row.patient_id]).get(row.id)
        if given:
            outcome = outcomes.series_outcome(sessions[row.id], checklist[row.id] + given, zone=zone)
        dosed = [fact for fact in sessions[row.id] if fact.status in outcomes.DOSED]
        rows.append((row.name, outcome, len(dosed), sum(events.get(fact.session_id, 0) for fact in sessions[row.id])))
    return rows
