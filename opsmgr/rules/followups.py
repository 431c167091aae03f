"""The follow-up plan: which calls, PHQ-9 requests, physician reviews, REMS forms and note reminders
a patient's sessions and scores call for, and when; and how a re-plan meets what is already planned.

Sources (clinical reference): §6 and rule 18 (next-day telephone follow-up, PHQ-9 monitoring,
booster review on a rise), rule 17 (the esketamine week-4 end-of-induction review), rule 15 and
§2.3-2.4 (the REMS Patient Monitoring Form within 7 calendar days), rule 21 (unsigned notes).
Every interval is a policy setting (rules/policy.py); most are [INF] defaults.

Definitions the issue left open:
- Times "after a session" are clinic wall-clock times: a next-day call after a 17:00 discharge is
  due at 17:00 the next day even across a daylight-saving change. Date-based items (PHQ-9
  requests, the REMS form) are due at the start (00:00) of their clinic-local day.
- Every item is overdue from the start of the clinic-local day after its due day (the REMS form
  from its own overdue day), which is what `overdue_words` says.
- Induction: the first `induction_sessions` sessions of a series that were not cancelled or
  missed, in start order. It is over when all of them were discharged, or, once the series is
  completed (not stopped: a stopped induction never ended), when every one it had was; its last
  session is "the last induction session". `induction_size` gives the count (a protocol's week-4
  review makes its first four weeks the induction, so the end-of-induction review is the
  esketamine week-4 review).
- "Since induction" (booster rule): scores taken on or after the clinic day of the last induction
  session of the patient's most recent completed induction (the checklist PHQ-9 of that session,
  taken before its dose, is the first measure of the induction's effect; earlier ones measure the
  induction on its way). A score triggers when it is at least
  `booster_rise_points` above the best (lowest) earlier score of that window, or at or above
  `booster_phq9_at_or_above` while that best was below it. Only scores after the last closed
  booster review can trigger, and only the first of them does: one open review at a time, keyed
  by that score.
- PHQ-9 requests: counted from the clinic day of the patient's latest discharged session (a new
  session resets the clock) once an induction is over, while the patient's care is active or in
  maintenance (`care_phase`). Requests fall on days first, first+7, … (`phq9_weekly_weeks` in all),
  then every `phq9_then_every_days`. One request is open at a time: the first day after the last
  PHQ-9 taken (or the last request closed), and none while a session is booked on or before that
  day (its checklist takes the PHQ-9, rule 16).
"""
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import NamedTuple
from zoneinfo import ZoneInfo

from opsmgr.rules.findings import Problem
from opsmgr.rules.scheduling import ClinicCalendar, clinic_day, local_to_utc, next_open_day
from opsmgr.rules.session_states import ACTIVE_STATES, SessionState


class Kind(StrEnum):
    CHECKIN_CALL = "checkin_call"
    FIRST_SESSION_CALL = "first_session_call"
    PHQ9_REQUEST = "phq9_request"
    INDUCTION_REVIEW = "induction_review"
    BOOSTER_REVIEW = "booster_review"
    REMS_FORM = "rems_form"
    UNSIGNED_NOTE = "unsigned_note"


COORDINATOR, PHYSICIAN = "coordinator", "physician"
#: Who works each kind.
ROLE_FOR = {Kind.CHECKIN_CALL: COORDINATOR, Kind.FIRST_SESSION_CALL: COORDINATOR, Kind.PHQ9_REQUEST: COORDINATOR,
            Kind.REMS_FORM: COORDINATOR, Kind.INDUCTION_REVIEW: PHYSICIAN, Kind.BOOSTER_REVIEW: PHYSICIAN,
            Kind.UNSIGNED_NOTE: PHYSICIAN}
#: Statuses of a stored item that a re-plan may still change; any other status is final and left alone.
OPEN_STATUSES = frozenset({"open", "pending"})
REMS_METHODS = ("portal", "fax")
_LIVE = frozenset(ACTIVE_STATES) - {SessionState.DISCHARGED}


# --------------------------------------------------------------------------------------------
# Facts in, plan out
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SessionFacts:
    """One session of a series, as stored (aware UTC datetimes; status a SessionState value)."""

    id: int
    starts_at: datetime
    ends_at: datetime
    status: str
    discharged_at: datetime | None = None
    #: The session note's status: None (no note yet), "draft", "complete" or "signed".
    note_status: str | None = None

    @property
    def held_at(self) -> datetime:
        """When the session ended for the patient: the discharge, else its booked end."""
        return self.discharged_at or self.ends_at


@dataclass(frozen=True)
class SeriesFacts:
    """A series: its route ("iv" | "esketamine"), status ("planned" | "active" | "completed" |
    "stopped"), how many sessions make its induction (0: not an induction, e.g. a booster) and its sessions."""

    id: int
    route: str
    status: str
    induction_sessions: int
    sessions: tuple[SessionFacts, ...]


@dataclass(frozen=True)
class ScoreFacts:
    """One PHQ-9 total of the patient (from the checklist or a call)."""

    id: int
    taken_at: datetime
    total: int


@dataclass(frozen=True)
class PlannedFollowUp:
    """One wanted item. `key` is stable across re-plans (the same facts give the same key), so a
    re-plan adds nothing twice. `remind_at`: shown from then (None: from `due_at`)."""

    kind: Kind
    key: str
    patient_id: int
    due_at: datetime
    overdue_at: datetime | None
    for_role: str
    session_id: int | None = None
    series_id: int | None = None
    score_id: int | None = None
    remind_at: datetime | None = None
    #: After this moment the item is pointless: never added, and cancelled as expired if still open.
    expires_at: datetime | None = None
    #: Not worth adding once planning happens after this moment (a later item covers it).
    add_until: datetime | None = None


def induction_size(planned_count: int, phases: Sequence[tuple[int, int]], review_week: int | None, *,
                   is_induction: bool = True) -> int:
    """How many sessions make a series' induction: with a review week, those its rhythm places in weeks
    1..review_week (esketamine: 4 weeks twice weekly = 8, rule 17); else the planned count. `phases`
    are (weeks, per_week) pairs; a booster or maintenance protocol passes is_induction=False (0)."""
    if not is_induction:
        return 0
    if not review_week:
        return planned_count
    sessions, weeks_left = 0, review_week
    for weeks, per_week in phases:
        taken = min(weeks, weeks_left)
        sessions, weeks_left = sessions + taken * per_week, weeks_left - taken
    if weeks_left and phases:
        sessions += weeks_left * phases[-1][1]
    return min(sessions, planned_count)


def induction_sessions(series: SeriesFacts) -> tuple[SessionFacts, ...]:
    """The sessions that make the series' induction (cancelled and missed ones do not count)."""
    counted = sorted((s for s in series.sessions if s.status in ACTIVE_STATES), key=lambda s: (s.starts_at, s.id))
    return tuple(counted[:series.induction_sessions])


def last_induction_session(series: SeriesFacts) -> SessionFacts | None:
    """The last induction session once the induction is over; None while it runs (or for a non-induction)."""
    induction = induction_sessions(series)
    if not induction or any(s.status != SessionState.DISCHARGED for s in induction):
        return None
    if len(induction) < series.induction_sessions and series.status != "completed":
        return None
    return induction[-1]


def care_phase(series: Sequence[SeriesFacts]) -> str:
    """"active" while any series is planned or active; else "maintenance" if the most recent series
    was completed; else "closed" (stopped, or nothing held)."""
    if any(s.status in {"planned", "active"} for s in series):
        return "active"
    ended = [s for s in series if s.sessions]
    if not ended:
        return "closed"
    latest = max(ended, key=lambda s: max(x.starts_at for x in s.sessions))
    return "maintenance" if latest.status == "completed" else "closed"


def plan(patient_id: int, series: Sequence[SeriesFacts], scores: Sequence[ScoreFacts], policy, zone: str, *,
         phq9_request_closed_at: datetime | None = None,
         booster_review_closed_at: datetime | None = None) -> tuple[PlannedFollowUp, ...]:
    """Every follow-up the patient's sessions and PHQ-9 scores call for (done ones included: a re-plan
    is the full wanted set, and `reconcile` leaves done items alone). The two `*_closed_at` are when the
    last PHQ-9 request / booster review was closed, from the stored items."""
    items = []
    for one in series:
        items += _session_items(patient_id, one, policy, zone)
        items += _induction_review(patient_id, one, zone)
    items += _phq9_request(patient_id, series, scores, policy, zone, phq9_request_closed_at)
    items += _booster_review(patient_id, series, scores, policy, zone, booster_review_closed_at)
    return tuple(items)


def _session_items(patient_id, series, policy, zone):
    held = sorted((s for s in series.sessions if s.status == SessionState.DISCHARGED),
                  key=lambda s: (s.starts_at, s.id))
    items = []
    for session in held:
        ids = {"patient_id": patient_id, "session_id": session.id, "series_id": series.id}
        due = wall_clock_after(session.held_at, timedelta(hours=policy.checkin_call_hours_after), zone)
        items.append(_item(Kind.CHECKIN_CALL, f"checkin_call:session:{session.id}", due, zone, **ids))
        if session is held[0]:
            due = wall_clock_after(session.held_at, timedelta(hours=policy.first_session_call_hours_after), zone)
            items.append(_item(Kind.FIRST_SESSION_CALL, f"first_session_call:session:{session.id}", due, zone, **ids))
        if series.route == "esketamine":
            items.append(rems_item(patient_id, series.id, session, policy, zone))
        if session.note_status != "signed":
            due = session.ends_at + timedelta(hours=policy.unsigned_note_flag_hours)
            items.append(_item(Kind.UNSIGNED_NOTE, f"unsigned_note:session:{session.id}", due, zone, **ids))
    return items


def _induction_review(patient_id, series, zone):
    last = last_induction_session(series)
    if last is None:
        return []
    return [_item(Kind.INDUCTION_REVIEW, f"induction_review:series:{series.id}", last.held_at, zone,
                  patient_id=patient_id, session_id=last.id, series_id=series.id)]


def _latest_induction_end(series):
    """The last induction session of the patient's most recently ended induction, or None."""
    lasts = [last for last in map(last_induction_session, series) if last is not None]
    return max(lasts, key=lambda s: s.starts_at, default=None)


def next_phq9_request_day(anchor: date, policy, *, after: date) -> date:
    """The first PHQ-9 request day after `after` on the schedule counted from `anchor` (a session day)."""
    weekly = max(policy.phq9_weekly_weeks, 1)
    every = max(policy.phq9_then_every_days, 1)
    offsets = [policy.phq9_first_request_days + 7 * week for week in range(weekly)]
    for offset in offsets:
        if anchor + timedelta(days=offset) > after:
            return anchor + timedelta(days=offset)
    skipped = max((after - anchor).days - offsets[-1], 0) // every + 1
    return anchor + timedelta(days=offsets[-1] + skipped * every)


def _phq9_request(patient_id, series, scores, policy, zone, closed_at):
    if _latest_induction_end(series) is None or care_phase(series) == "closed":
        return []
    sessions = [s for one in series for s in one.sessions]
    held = [s for s in sessions if s.status == SessionState.DISCHARGED]
    anchor = clinic_day(max(s.held_at for s in held), zone)
    done = [score.taken_at for score in scores] + ([closed_at] if closed_at else [])
    after = max([anchor, *(clinic_day(moment, zone) for moment in done)])
    day = next_phq9_request_day(anchor, policy, after=after)
    if any(s.status in _LIVE and clinic_day(s.starts_at, zone) <= day for s in sessions):
        return []
    return [_item(Kind.PHQ9_REQUEST, f"phq9_request:patient:{patient_id}:{day.isoformat()}",
                  local_to_utc(day, time(0), zone), zone, patient_id=patient_id)]


def booster_trigger(total: int, best: int, policy) -> bool:
    """A PHQ-9 total calls for a booster review: `booster_rise_points` or more above the best, or at or
    above `booster_phq9_at_or_above` when the best was below it (rule 18). 4 above is not; 5 is."""
    return total - best >= policy.booster_rise_points or (
        total >= policy.booster_phq9_at_or_above > best)


def _booster_review(patient_id, series, scores, policy, zone, closed_at):
    last = _latest_induction_end(series)
    if last is None:
        return []
    first_day = clinic_day(last.starts_at, zone)
    window = sorted((s for s in scores if clinic_day(s.taken_at, zone) >= first_day), key=lambda s: (s.taken_at, s.id))
    best = None
    for score in window:
        if best is not None and (closed_at is None or score.taken_at > closed_at) and \
                booster_trigger(score.total, best, policy):
            return [_item(Kind.BOOSTER_REVIEW, f"booster_review:patient:{patient_id}:score:{score.id}",
                          score.taken_at, zone, patient_id=patient_id, score_id=score.id)]
        best = score.total if best is None else min(best, score.total)
    return []


def _item(kind, key, due_at, zone, **ids):
    return PlannedFollowUp(kind=kind, key=key, due_at=due_at, overdue_at=start_of_next_day(due_at, zone),
                           for_role=ROLE_FOR[kind], **ids)


# --------------------------------------------------------------------------------------------
# The REMS Patient Monitoring Form (rule 15)
# --------------------------------------------------------------------------------------------

def rems_item(patient_id: int, series_id: int, session: SessionFacts, policy, zone: str) -> PlannedFollowUp:
    """The form for one esketamine session: reminded on day 5, due day 7, overdue from day 8 (calendar
    days from the session's clinic day, each from 00:00; never moved to a clinic day: it is a deadline)."""
    day = clinic_day(session.starts_at, zone)

    def at(days):
        return local_to_utc(day + timedelta(days=days), time(0), zone)

    return PlannedFollowUp(kind=Kind.REMS_FORM, key=f"rems_form:session:{session.id}", patient_id=patient_id,
                           due_at=at(policy.rems_due_days), overdue_at=at(policy.rems_overdue_day),
                           remind_at=at(policy.rems_remind_day), for_role=ROLE_FOR[Kind.REMS_FORM],
                           session_id=session.id, series_id=series_id)


class RemsState(StrEnum):
    UPCOMING = "upcoming"
    REMIND = "remind"
    DUE = "due"
    OVERDUE = "overdue"
    SUBMITTED = "submitted"


@dataclass(frozen=True)
class RemsStatus:
    state: RemsState
    due_on: date
    #: Submitted after the due day (None while not submitted).
    submitted_late: bool | None = None


def rems_status(session_on: date, today: date, policy, *, submitted_on: date | None = None,
                method: str | None = None) -> RemsStatus:
    """Where the form of a session held on `session_on` stands `today`. It is closed (submitted) only
    with both a submission date and a method; before day 5 upcoming, days 5-6 remind, day 7 due,
    day 8 on overdue."""
    due_on = session_on + timedelta(days=policy.rems_due_days)
    if submitted_on is not None and method in REMS_METHODS:
        return RemsStatus(RemsState.SUBMITTED, due_on, submitted_late=submitted_on > due_on)
    age = (today - session_on).days
    if age >= policy.rems_overdue_day:
        state = RemsState.OVERDUE
    elif age >= policy.rems_due_days:
        state = RemsState.DUE
    elif age >= policy.rems_remind_day:
        state = RemsState.REMIND
    else:
        state = RemsState.UPCOMING
    return RemsStatus(state, due_on)


def rems_submission_problems(submitted_on: date | None, method: str | None, *, session_on: date,
                             today: date) -> tuple[Problem, ...]:
    """Why a REMS form cannot be marked submitted: a date (not before the session, not in the future)
    and a method (portal or fax) are both required (rule 15)."""
    problems = []
    if submitted_on is None:
        problems.append(Problem("submitted_on", "Enter the date the form was submitted."))
    elif submitted_on < session_on:
        problems.append(Problem("submitted_on", "The form cannot be submitted before the session it reports."))
    elif submitted_on > today:
        problems.append(Problem("submitted_on", "The submission date is in the future."))
    if method not in REMS_METHODS:
        problems.append(Problem("method", "Choose how the form was submitted: portal or fax."))
    return tuple(problems)


# --------------------------------------------------------------------------------------------
# Re-planning: what to add, cancel and keep
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExistingItem:
    """A stored item as reconcile sees it; `id` is the caller's, passed back untouched."""

    key: str
    status: str
    expires_at: datetime | None = None
    id: int | None = None


class Cancellation(NamedTuple):
    item: ExistingItem
    #: "unwanted" (the facts no longer call for it) or "expired" (too late to be of use).
    reason: str


class Reconciled(NamedTuple):
    to_add: tuple
    to_cancel: tuple[Cancellation, ...]
    to_keep: tuple[ExistingItem, ...]


def reconcile(existing: Iterable[ExistingItem], wanted: Iterable, now: datetime) -> Reconciled:
    """Meet a re-plan (`wanted`: items with `key`, `expires_at`, `add_until`) with what is stored.

    - An open stored item that is still wanted is kept as it is (a retry's new due time survives);
      one no longer wanted is cancelled "unwanted"; one whose `expires_at` has come is cancelled
      "expired" (a reminder is never sent at or after its session's start).
    - A stored item in any other status (done, sent, sending, cancelled, expired, failed) is final:
      never re-opened, never added again, and in none of the three lists.
    - A wanted item with no stored one is added, unless it has expired or its `add_until` has passed.
    """
    wanted_by_key = {}
    for item in wanted:
        if item.key in wanted_by_key:
            raise ValueError(f"two wanted items share the key {item.key!r}")
        wanted_by_key[item.key] = item
    stored = {item.key: item for item in existing}
    to_cancel, to_keep = [], []
    for key, item in stored.items():
        if item.status not in OPEN_STATUSES:
            continue
        want = wanted_by_key.get(key)
        expires_at = want.expires_at if want is not None else item.expires_at
        if expires_at is not None and expires_at <= now:
            to_cancel.append(Cancellation(item, "expired"))
        elif want is None:
            to_cancel.append(Cancellation(item, "unwanted"))
        else:
            to_keep.append(item)
    to_add = tuple(item for key, item in wanted_by_key.items() if key not in stored and _worth_adding(item, now))
    return Reconciled(to_add, tuple(to_cancel), tuple(to_keep))


def _worth_adding(item, now):
    expires_at, add_until = item.expires_at, getattr(item, "add_until", None)
    return (expires_at is None or now < expires_at) and (add_until is None or now <= add_until)


# --------------------------------------------------------------------------------------------
# Working the list: retries after "not reached", and overdue in words
# --------------------------------------------------------------------------------------------

class NextTry(NamedTuple):
    due_at: datetime
    #: This miss reaches the policy's count: the item goes to a physician.
    escalate: bool


def after_not_reached(missed_at: datetime, misses: int, calendar: ClinicCalendar, policy) -> NextTry:
    """After the `misses`-th "not reached" (counting this one), try again at the opening of the next
    clinic day after the one it was missed on (closures skipped); the Nth miss
    (followup_misses_before_escalation, default 3) escalates."""
    day = next_open_day(clinic_day(missed_at, calendar.zone) + timedelta(days=1), calendar.open_weekdays,
                        calendar.closed_days)
    opens, _ = calendar.hours_on(day)
    return NextTry(opens, misses >= max(policy.followup_misses_before_escalation, 1))


def standing(item, now: datetime) -> str:
    """Where an item (with `due_at`, `overdue_at`, `remind_at`) stands at `now`: "later" before it shows
    (its reminder time, else its due time), "due" from then, "overdue" from `overdue_at`."""
    if now < (item.remind_at or item.due_at):
        return "later"
    if item.overdue_at is not None and now >= item.overdue_at:
        return "overdue"
    return "due"


def overdue_words(due_at: datetime, now: datetime, zone: str) -> str:
    """How late an item is, in clinic days: "due today", "due tomorrow", "due in 3 days", "1 day
    overdue", "2 days overdue" (an item is overdue from the day after its due day)."""
    days = (clinic_day(now, zone) - clinic_day(due_at, zone)).days
    if days == 0:
        return "due today"
    if days == -1:
        return "due tomorrow"
    if days < 0:
        return f"due in {-days} days"
    return f"{days} day{'s' if days > 1 else ''} overdue"


# --------------------------------------------------------------------------------------------
# Clinic clock arithmetic
# --------------------------------------------------------------------------------------------

def wall_clock_after(moment: datetime, delta: timedelta, zone: str) -> datetime:
    """`moment` plus `delta` on the clinic's wall clock (24 h after 17:00 is 17:00 the next day, even when
    that day is 23 or 25 hours long), as aware UTC. A time that does not exist (the spring-forward gap)
    resolves forward by the gap."""
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz).replace(tzinfo=None) + delta
    return local.replace(tzinfo=tz).astimezone(UTC)


def start_of_next_day(moment: datetime, zone: str) -> datetime:
    """00:00 of the clinic-local day after the one `moment` falls on, as aware UTC."""
    return local_to_utc(clinic_day(moment, zone) + timedelta(days=1), time(0), zone)
