"""Booking decisions: no booking in the past, one infusion per patient per clinic day, a series'
count within its protocol, one live series per route, and where each session of a series goes
(with the reason whenever it is not where the physician asked).

Sources: clinical reference §1.11 and rule 17 (series templates); the one-infusion-a-day and
one-series-per-route rules and the count allowance are clinic policy [INF], from issue 9 (three
overlapping inductions gave a patient three infusions in one day).
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from opsmgr.rules.findings import Problem
from opsmgr.rules.scheduling import (
    ClinicCalendar,
    SlotRequest,
    clinic_day,
    clock_text,
    find_slot,
    local_to_utc,
    overlaps,
    round_up,
    short_day,
)

# --------------------------------------------------------------------------------------------
# Booking decisions: the past, two infusions on one day, the count, overlapping series
# --------------------------------------------------------------------------------------------

def past_problem(starts_at: datetime, now: datetime, zone: str) -> Problem | None:
    """A booking starts now or later; a session that already happened is recorded, not booked."""
    if starts_at >= now:
        return None
    field_name = "day" if clinic_day(starts_at, zone) < clinic_day(now, zone) else "start_time"
    today = short_day(clinic_day(now, zone))
    return Problem(field_name, f"That time has passed (it is {clock_text(now, zone)} on {today}). Book a time from "
                              "now on; a physician records a session that already happened with Record a past session.")


def same_day_session(day: date, patient_busy, zone: str) -> datetime | None:
    """The start of the patient's live session on clinic day `day`, if they have one."""
    starts = sorted(start for start, _ in patient_busy if clinic_day(start, zone) == day)
    return starts[0] if starts else None


def same_day_problem(starts_at: datetime, patient_busy, zone: str) -> str | None:
    """One infusion per patient per clinic day: a second is refused unless a physician overrides it
    with a reason (three overlapping inductions once gave a patient three infusions in one day)."""
    day = clinic_day(starts_at, zone)
    other = same_day_session(day, patient_busy, zone)
    if other is None:
        return None
    return (f"The patient already has a session on {short_day(day)} at {clock_text(other, zone)}. Two infusions on "
            "one clinic day need a physician's override with a reason.")


def count_problem(requested: int, protocol_count: int, extra_allowed: int, protocol_name: str) -> str | None:
    """A series plans at most its protocol's count plus the policy's allowance (40 sessions of a
    6-session induction is a typing slip, not an order)."""
    limit = protocol_count + extra_allowed
    if requested <= limit:
        return None
    beyond = f", {extra_allowed} more than the protocol's {protocol_count} as the clinic's policy allows" \
        if extra_allowed else ""
    return (f"{protocol_name} is a {protocol_count}-session protocol: a series of it plans at most {limit} "
            f"sessions{beyond}.")


@dataclass(frozen=True)
class SeriesSpan:
    """Another live series of the patient: its name and the days of its first and last live session."""

    label: str
    first: date
    last: date


def overlap_problem(first: date, last: date, others) -> str | None:
    """A patient has one live series per route at a time: a new one may not share days with another
    planned or active series of the same route (counting both end days)."""
    for other in others:
        if other.first <= last and first <= other.last:
            return (f"The patient already has {other.label} from {short_day(other.first)} to "
                    f"{short_day(other.last)} {other.last.year}, which overlaps this series ({short_day(first)} to "
                    f"{short_day(last)} {last.year}). Stop that series first, or start this one after "
                    f"{short_day(other.last)}.")
    return None


# --------------------------------------------------------------------------------------------
# Placing a series' sessions: where each goes, and why when not as asked
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    """One planned session: the day and time asked, the chair and start it gets (None: nowhere that
    day), and why it is not at the asked day and time (empty: as asked)."""

    asked_on: date
    asked_time: time
    chair_id: int | None
    starts_at: datetime | None
    reasons: tuple[str, ...] = ()

    @property
    def is_placed(self) -> bool:
        return self.starts_at is not None

    @property
    def as_asked(self) -> bool:
        return self.is_placed and not self.reasons


@dataclass(frozen=True)
class Search:
    """What a placement looks for: the calendar, the chair time, turnover, the chairs, and now."""

    calendar: ClinicCalendar
    duration: timedelta
    turnover: timedelta
    chair_ids: tuple
    now: datetime
    step: timedelta = timedelta(minutes=15)


def place_session(search: Search, asked_on: date, day: date, asked_time: time, busy_by_chair,
                  patient_busy) -> Placement:
    """Where a session asked for `asked_on` at `asked_time` goes on open day `day`: the first free chair
    from the asked time (never before now), then earlier that day; with every reason it moved."""
    zone = search.calendar.zone
    reasons = [] if day == asked_on else [search.calendar.closed_reason(asked_on)]
    other = same_day_session(day, patient_busy, zone)
    if other is not None:
        reasons.append(f"The patient already has a session on {short_day(day)} at {clock_text(other, zone)}; "
                       "two infusions on one day are not booked in a series.")
        return Placement(asked_on, asked_time, None, None, tuple(reasons))
    opens, closes = search.calendar.hours_on(day)
    earliest = max(opens, round_up(search.now, search.step))
    asked_at = local_to_utc(day, asked_time, zone)
    request = SlotRequest(preferred=max(asked_at, earliest), opens=earliest, closes=closes,
                          duration=search.duration, turnover=search.turnover, step=search.step)
    found = find_slot(request, search.chair_ids, busy_by_chair, patient_busy)
    if found is None:
        minutes = int(search.duration.total_seconds() // 60)
        reasons.append(f"No chair is free for {minutes} minutes on {short_day(day)} between "
                       f"{clock_text(earliest, zone)} and closing ({clock_text(closes, zone)}).")
        return Placement(asked_on, asked_time, None, None, tuple(reasons))
    chair_id, starts_at = found
    if starts_at != asked_at:
        reasons.append(_time_reason(search, asked_at, (opens, closes), earliest, patient_busy))
    return Placement(asked_on, asked_time, chair_id, starts_at, tuple(reasons))


def _time_reason(search, asked_at, hours, earliest, patient_busy):
    """Why a session could not start at the asked time on its day."""
    opens, closes = hours
    zone, asked = search.calendar.zone, clock_text(asked_at, search.calendar.zone)
    if asked_at < earliest and earliest > opens:
        return f"{asked} has already passed."
    if asked_at < opens:
        return f"The clinic opens at {clock_text(opens, zone)}."
    if asked_at >= closes:
        return f"{asked} is after closing time ({clock_text(closes, zone)})."
    if asked_at + search.duration > closes:
        minutes = int(search.duration.total_seconds() // 60)
        return f"A {minutes}-minute session at {asked} would end after closing ({clock_text(closes, zone)})."
    if any(overlaps(asked_at, asked_at + search.duration, s, e) for s, e in patient_busy):
        return f"The patient has another session at {asked}."
    return f"Every chair is taken at {asked} (with turnover)."


def plan_code(placements) -> str:
    """The plan as the physician saw it (chair and start of each session), carried by the confirm
    form: booking goes ahead only if the plan worked out again is the same."""
    return ";".join(f"{p.chair_id}@{p.starts_at:%Y%m%dT%H%MZ}" if p.is_placed else "-" for p in placements)
