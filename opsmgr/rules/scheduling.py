"""Planning a series on clinic days and finding a free chair.

Sources: clinical reference §1.11 and rule 17 — IV induction of 6 infusions 2–3 a week,
warn past 21 days or a gap over 7 days [INF]; esketamine twice weekly in weeks 1–4 and
weekly in weeks 5–8 (Spravato label, §2.2). Times are planned as local clock times in the
clinic's zone and converted to UTC per day, so a daylight-saving change keeps the clock time.
"""
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from opsmgr.rules.findings import Problem

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Phase:
    weeks: int
    per_week: int

    @property
    def spacing_days(self):
        """Days from one session to the next: 3 a week → 2, twice → 3, weekly → 7."""
        return 7 // self.per_week


@dataclass(frozen=True)
class PlanWarning:
    code: str
    message: str


def phases_from(raw):
    return tuple(Phase(int(p["weeks"]), int(p["per_week"])) for p in raw)


def next_open_day(day: date, open_weekdays: frozenset[int], closed_days: frozenset[date] = frozenset()) -> date:
    """The first day on or after `day` when the clinic is open (an open weekday that is not a closure)."""
    if not open_weekdays:
        raise ValueError("the clinic has no open days")
    while day.weekday() not in open_weekdays or day in closed_days:
        day += timedelta(days=1)
    return day


def plan_days(start_on: date, phases: tuple[Phase, ...], count: int, open_weekdays: frozenset[int],
              closed_days: frozenset[date] = frozenset()) -> tuple[tuple[date, date], ...]:
    """(day the rhythm asks for, open day it falls on) for each session of a series: the protocol's
    rhythm counted from the day before, each moved forward onto an open day."""
    spacings = [phase.spacing_days for phase in phases for _ in range(phase.weeks * phase.per_week)]
    days, asked = [], start_on
    while len(days) < count:
        day = next_open_day(asked, open_weekdays, closed_days)
        days.append((asked, day))
        spacing = spacings[len(days) - 1] if len(days) - 1 < len(spacings) else phases[-1].spacing_days
        asked = day + timedelta(days=spacing)
    return tuple(days)


def plan_dates(start_on: date, phases: tuple[Phase, ...], count: int, open_weekdays: frozenset[int],
               closed_days: frozenset[date] = frozenset()) -> tuple[date, ...]:
    """The session dates for a series: the protocol's rhythm, moved forward onto open days."""
    return tuple(day for _, day in plan_days(start_on, phases, count, open_weekdays, closed_days))


def plan_warnings(dates, *, max_gap_days: int | None, max_span_days: int | None) -> tuple[PlanWarning, ...]:
    """Where a plan breaks the protocol: a gap over the maximum, or a series longer than allowed.

    A gap of exactly max_gap_days and a span of exactly max_span_days (counting both end
    days) are within the protocol.
    """
    warnings = []
    if max_gap_days is not None:
        for number, (before, after) in enumerate(zip(dates, dates[1:], strict=False), start=1):
            gap = (after - before).days
            if gap > max_gap_days:
                warnings.append(PlanWarning("GAP_TOO_LONG", f"Sessions {number} and {number + 1} are {gap} days "
                                                            f"apart; the protocol allows at most {max_gap_days}."))
    if max_span_days is not None and dates:
        span = (dates[-1] - dates[0]).days + 1
        if span > max_span_days:
            warnings.append(PlanWarning("SERIES_TOO_LONG", f"The series runs over {span} days; the protocol "
                                                           f"expects it within {max_span_days}."))
    return tuple(warnings)


def local_to_utc(day: date, clock: time, zone: str) -> datetime:
    """A clinic-local date and clock time as an aware UTC datetime."""
    return datetime.combine(day, clock, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def overlaps(start_a, end_a, start_b, end_b, gap=timedelta(0)) -> bool:
    """Whether two bookings collide, counting `gap` (chair turnover) between them."""
    return start_a < end_b + gap and start_b < end_a + gap


def fits_hours(start: datetime, end: datetime, opens: datetime, closes: datetime) -> bool:
    return opens <= start and end <= closes


@dataclass(frozen=True)
class SlotRequest:
    """Where and when to look for a free chair on one day (all aware datetimes)."""

    preferred: datetime
    opens: datetime
    closes: datetime
    duration: timedelta
    turnover: timedelta
    step: timedelta = timedelta(minutes=15)


def find_slot(request: SlotRequest, chair_ids, busy_by_chair, patient_busy):
    """The first (chair id, start) free for the chair and the patient, searching from the
    preferred time to closing and then from opening to the preferred time; None if full."""
    later = _candidates(request.preferred, request.closes - request.duration, request.step)
    earlier = _candidates(request.opens, min(request.preferred, request.closes - request.duration) - request.step,
                          request.step)
    for start in (*later, *earlier):
        end = start + request.duration
        if start < request.opens or any(overlaps(start, end, s, e) for s, e in patient_busy):
            continue
        for chair_id in chair_ids:
            if not any(overlaps(start, end, s, e, request.turnover) for s, e in busy_by_chair.get(chair_id, ())):
                return chair_id, start
    return None


def _candidates(first, last, step):
    out, current = [], first
    while current <= last:
        out.append(current)
        current += step
    return out


def shifted_dates(dates, delta_days: int, open_weekdays: frozenset[int],
                  closed_days: frozenset[date] = frozenset()) -> tuple[date, ...]:
    """Later sessions moved by the same number of days, each kept on an open day and in order."""
    out = []
    for day in dates:
        moved = next_open_day(day + timedelta(days=delta_days), open_weekdays, closed_days)
        if out and moved <= out[-1]:
            moved = next_open_day(out[-1] + timedelta(days=1), open_weekdays, closed_days)
        out.append(moved)
    return tuple(out)


def start_problem(start_on: date, today: date) -> str | None:
    """A series cannot start in the past."""
    if start_on < today:
        return "The start date is in the past."
    return None


def clinic_day(moment: datetime, zone: str) -> date:
    """The calendar day an aware moment falls on in the clinic's zone."""
    return moment.astimezone(ZoneInfo(zone)).date()


def is_booked_today(starts_at: datetime, now: datetime, zone: str) -> bool:
    """Whether a session starting at `starts_at` is booked for today: both are read as clinic-local
    days, so 23:59 belongs to the day the clinic sees and a daylight-saving day is one day."""
    return clinic_day(starts_at, zone) == clinic_day(now, zone)


def booked_day_problem(starts_at: datetime, now: datetime, zone: str, *, movable: bool = True) -> str | None:
    """Why a session cannot be checked in, or its checklist changed, now: it is booked for another
    clinic day (the right session on the right day). None on its own day. `movable`: the session
    can still be moved (it is not checked in yet)."""
    if is_booked_today(starts_at, now, zone):
        return None
    when = short_day(clinic_day(starts_at, zone))
    if movable:
        return f"This session is booked for {when}, not today. Move it to today first."
    return (f"This session is booked for {when}, not today, and it is past check-in, so it cannot be moved. "
            "Cancel it from the session page, then check the patient in on a session booked for today.")


def round_up(moment: datetime, step: timedelta) -> datetime:
    """`moment` rounded up to the next whole `step` of its day (10:07 → 10:15 for 15 minutes)."""
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    remainder = (moment - midnight) % step
    return moment + (step - remainder) if remainder else moment


def short_day(day: date) -> str:
    """A day as staff say it: "Tue 8 Dec"."""
    return f"{day:%a} {day.day} {day:%b}"


def clock_text(moment: datetime, zone: str) -> str:
    """An aware moment as the clinic's clock reads it: \"08:00\"."""
    return f"{moment.astimezone(ZoneInfo(zone)):%H:%M}"


# --------------------------------------------------------------------------------------------
# The clinic's calendar: weekly hours and closures
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClinicCalendar:
    """When the clinic is open: local opening hours per open weekday (0 = Monday) and closed dates
    (holidays an administrator entered) with their label."""

    hours: Mapping[int, tuple[time, time]] = field(hash=False)
    closures: Mapping[date, str] = field(hash=False)
    zone: str

    @property
    def open_weekdays(self) -> frozenset[int]:
        return frozenset(self.hours)

    @property
    def closed_days(self) -> frozenset[date]:
        return frozenset(self.closures)

    def is_open(self, day: date) -> bool:
        return day.weekday() in self.hours and day not in self.closures

    def hours_on(self, day: date):
        """(opens, closes) as aware UTC datetimes on `day`, or None when the clinic is closed."""
        if not self.is_open(day):
            return None
        opens, closes = self.hours[day.weekday()]
        return local_to_utc(day, opens, self.zone), local_to_utc(day, closes, self.zone)

    def closed_reason(self, day: date) -> str | None:
        """Why the clinic is closed on `day` (a closure's label, or the weekday), None when open."""
        if day in self.closures:
            return f"The clinic is closed on {short_day(day)} ({self.closures[day]})."
        if day.weekday() not in self.hours:
            return f"The clinic is closed on {WEEKDAY_NAMES[day.weekday()]}s."
        return None


def hours_problem(calendar: ClinicCalendar, starts_at: datetime, ends_at: datetime) -> Problem | None:
    """Why a booking from starts_at to ends_at is outside the clinic's hours (closed day: at the
    day; outside the day's hours: at the time, saying the hours), or None."""
    day = clinic_day(starts_at, calendar.zone)
    closed = calendar.closed_reason(day)
    if closed:
        return Problem("day", closed)
    opens, closes = calendar.hours_on(day)
    if fits_hours(starts_at, ends_at, opens, closes):
        return None
    minutes = int((ends_at - starts_at).total_seconds() // 60)
    open_text = f"{clock_text(opens, calendar.zone)}–{clock_text(closes, calendar.zone)}"
    hours = f"{WEEKDAY_NAMES[day.weekday()]} {day.day} {day:%b} the clinic is open {open_text}"
    if closes - opens < ends_at - starts_at:
        return Problem("start_time", f"That time is outside clinic hours: on {hours}, too short for a "
                                     f"{minutes}-minute session.")
    return Problem("start_time", f"That time is outside clinic hours: on {hours}, so a {minutes}-minute session "
                                 f"starts by {clock_text(closes - (ends_at - starts_at), calendar.zone)}.")
