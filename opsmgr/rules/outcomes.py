"""The clinic's outcomes: per series, the baseline PHQ-9, response, remission and days to first response;
then rates by protocol and calendar quarter, each with the counts behind it.

Definitions (clinical.md §4; Psychiatric Services 2020, as in opsmgr.rules.scales):
- Dosed session: a session of the series that reached the infusion (infusing, recovery or discharged).
- Baseline: the PHQ-9 taken at the checklist of the series' first dosed session, or of an earlier
  session of the series that did not go ahead (the earliest such score): a score taken before any
  dose of the series. A series whose first dosed session and earlier sessions have no complete PHQ-9
  has no baseline and is counted apart, never in a rate.
- Later scores: the PHQ-9s taken after the baseline, at a checklist of the series or by phone before
  the patient's next series began.
- Response: any later PHQ-9 at least 50 % below the baseline (exactly 50 % counts; a baseline of 0
  cannot respond and is left out of the response rate). Remission: any later PHQ-9 below 5.
- Days to response: clinic calendar days from the baseline to the first responding score.
- Period: the calendar quarter (clinic time) of the series' first dosed session.
"""
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from statistics import median

from opsmgr.rules.scales import PHQ9_REMISSION_BELOW, PHQ9_RESPONSE_MIN_FALL_PERCENT, phq9_remission, phq9_response

DOSED = frozenset({"infusing", "recovery", "discharged"})
NO_SERIES = "no series yet"
NO_SESSIONS = "no sessions yet"
DEFINITIONS = (
    ("Baseline", "the PHQ-9 taken at the checklist before the series' first dose."),
    ("Response", f"a later PHQ-9 at least {PHQ9_RESPONSE_MIN_FALL_PERCENT} % below the baseline (exactly "
                 f"{PHQ9_RESPONSE_MIN_FALL_PERCENT} % counts; a baseline of 0 is left out)."),
    ("Remission", f"a later PHQ-9 below {PHQ9_REMISSION_BELOW} (a total of {PHQ9_REMISSION_BELOW} is not "
                  "remission)."),
    ("Time to response", "clinic calendar days from the baseline to the first responding PHQ-9; the median "
                         "is over the series that responded."),
    ("Counted", "series whose first dose falls in the period, by protocol and calendar quarter; a series "
                "without a baseline or without a later PHQ-9 is shown apart and is in no rate."),
    ("Adverse events per 100 sessions", "adverse events recorded on the group's sessions, per 100 dosed "
                                        "sessions."),
)


@dataclass(frozen=True)
class SessionFact:
    session_id: int
    starts_at: datetime
    status: str


@dataclass(frozen=True)
class ScoreFact:
    taken_at: datetime
    total: int
    #: The session whose checklist took it; None for a phone score.
    session_id: int | None = None


@dataclass(frozen=True)
class SeriesOutcome:
    first_dose_at: datetime | None
    baseline: int | None
    later_scores: int
    is_response: bool | None
    is_remission: bool | None
    days_to_response: int | None

    @property
    def is_evaluable(self):
        """A baseline and at least one later PHQ-9: the series counts in the remission rate."""
        return self.baseline is not None and self.later_scores > 0


@dataclass(frozen=True)
class Rate:
    count: int
    of: int

    @property
    def percent(self):
        """Whole percent, half rounded up, in integers; None for an empty group (no division by zero)."""
        return None if self.of == 0 else (200 * self.count + self.of) // (2 * self.of)

    def __str__(self):
        return NO_SERIES if self.of == 0 else f"{self.count} of {self.of} ({self.percent} %)"


@dataclass(frozen=True)
class GroupOutcome:
    protocol: str
    period: str
    series: int
    no_baseline: int
    no_later_score: int
    response: Rate
    remission: Rate
    median_days_to_response: float | None
    sessions: int
    adverse_events: int

    @property
    def adverse_events_per_100(self):
        return None if self.sessions == 0 else round(100 * self.adverse_events / self.sessions, 1)

    @property
    def adverse_events_text(self):
        if self.sessions == 0:
            return NO_SESSIONS
        return f"{_number(self.adverse_events_per_100)} ({self.adverse_events} in {self.sessions} sessions)"

    @property
    def median_text(self):
        if self.median_days_to_response is None:
            return "no response yet"
        return f"{_number(self.median_days_to_response)} days (of {self.response.count} responding series)"


def series_outcome(sessions, scores, *, zone):
    """The outcome of one series from its sessions and its PHQ-9s (checklist and phone, any order).

    `zone`: the clinic's tzinfo, for calendar days. Returns a SeriesOutcome; without a dosed session
    everything is None, without a baseline or later score response and remission are None.
    """
    dosed = sorted((s for s in sessions if s.status in DOSED), key=lambda s: (s.starts_at, s.session_id))
    if not dosed:
        return SeriesOutcome(None, None, 0, None, None, None)
    first = dosed[0]
    before = {s.session_id for s in sessions
              if (s.starts_at, s.session_id) <= (first.starts_at, first.session_id)}
    ordered = sorted(scores, key=lambda score: score.taken_at)
    baseline = next((score for score in ordered if score.session_id in before), None)
    if baseline is None:
        return SeriesOutcome(first.starts_at, None, 0, None, None, None)
    later = [score for score in ordered if score.taken_at > baseline.taken_at]
    if not later:
        return SeriesOutcome(first.starts_at, baseline.total, 0, None, None, None)
    responding = [score for score in later if phq9_response(baseline.total, score.total).is_response]
    days = None
    if responding:
        days = (_day(responding[0].taken_at, zone) - _day(baseline.taken_at, zone)).days
    return SeriesOutcome(
        first.starts_at, baseline.total, len(later),
        is_response=None if baseline.total == 0 else bool(responding),
        is_remission=any(phq9_remission(score.total).is_remission for score in later),
        days_to_response=days)


def phone_scores_by_series(series_starts, phone_scores):
    """Give each phone PHQ-9 of one patient to the series running when it was taken.

    `series_starts`: {series id: first dose time or None}; `phone_scores`: ScoreFacts. A score goes to
    the latest series that began at or before it; scores before every series go nowhere.
    Returns {series id: [ScoreFact]}.
    """
    begun = sorted((start, series_id) for series_id, start in series_starts.items() if start is not None)
    given = defaultdict(list)
    for score in phone_scores:
        owner = None
        for start, series_id in begun:
            if start <= score.taken_at:
                owner = series_id
        if owner is not None:
            given[owner].append(score)
    return given


def aggregate(rows, *, zone, start=None, end=None):
    """Rates by (protocol, quarter): `rows` are (protocol label, SeriesOutcome, dosed sessions, adverse
    events). Series whose first dose (clinic date) is outside [start, end] are left out; so are series
    never dosed. Returns GroupOutcomes ordered by protocol, then period."""
    groups = defaultdict(list)
    for protocol, outcome, sessions, events in rows:
        if outcome.first_dose_at is None:
            continue
        day = _day(outcome.first_dose_at, zone)
        if (start is not None and day < start) or (end is not None and day > end):
            continue
        groups[(protocol, _quarter_key(day))].append((outcome, sessions, events))
    return [_group(protocol, f"{key[0]} Q{key[1]}", members)
            for (protocol, key), members in sorted(groups.items())]


def _group(protocol, period, members):
    outcomes = [outcome for outcome, _, _ in members]
    evaluable = [outcome for outcome in outcomes if outcome.is_evaluable]
    can_respond = [outcome for outcome in evaluable if outcome.is_response is not None]
    days = [outcome.days_to_response for outcome in can_respond if outcome.is_response]
    return GroupOutcome(
        protocol=protocol, period=period, series=len(outcomes),
        no_baseline=sum(outcome.baseline is None for outcome in outcomes),
        no_later_score=sum(outcome.baseline is not None and not outcome.later_scores for outcome in outcomes),
        response=Rate(sum(bool(outcome.is_response) for outcome in can_respond), len(can_respond)),
        remission=Rate(sum(bool(outcome.is_remission) for outcome in evaluable), len(evaluable)),
        median_days_to_response=median(days) if days else None,
        sessions=sum(sessions for _, sessions, _ in members),
        adverse_events=sum(events for _, _, events in members))


def _quarter_key(day):
    return (day.year, (day.month - 1) // 3 + 1)


def _day(when, zone):
    return when if not isinstance(when, datetime) else when.astimezone(zone).date()


def _number(value):
    return f"{value:g}" if isinstance(value, float) else str(value)

