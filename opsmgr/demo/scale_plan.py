"""The scale data set's calendar: which courses each fictional patient has, and when and on which
chair each session falls (plain values; no database). Every chair holds one session per slot, so
the booking never double-books a chair and a patient never has two sessions on one day."""
import math
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from opsmgr.rules.scheduling import next_open_day

#: Local clock times of the sessions on every chair: 150 minutes apart, the longest chair time.
SLOTS = (time(8, 0), time(10, 30), time(13, 0), time(15, 30))
#: One chair per this many patients: 40 chairs for 20,000 patients.
PATIENTS_PER_CHAIR = 500
#: Share of the chairs' slots the plan fills, so few bookings have to move.
UTILISATION = 0.7
#: One patient in this many (the first of each hundred) is a long-term patient: an IV induction, then
#: LONG_TERM_BOOSTERS boosters over the years the data spans (50 sessions: the chart `make bench` reads).
LONG_TERM_EVERY, LONG_TERM_BOOSTERS = 100, 44
#: Days from the first session: an IV induction three times a week for two weeks, and esketamine
#: twice a week for four weeks then weekly (the protocols seeded by the migrations).
COURSE_DAYS = {
    "iv-induction": (0, 2, 4, 7, 9, 11),
    "esketamine-induction": (0, 3, 7, 10, 14, 17, 21, 24, 28, 35, 42, 49),
}


@dataclass
class PlannedSeries:
    code: str
    ordered_on: date
    #: (day, slot index, chair index) of each session, in order.
    visits: list = field(default_factory=list)
    #: Sessions held before the physician stopped the series (None: not stopped).
    stopped_after: int | None = None


@dataclass
class PlannedPatient:
    number: int
    registered_on: date
    slot: int
    series: list = field(default_factory=list)


def chairs_for(patients):
    return max(1, math.ceil(patients / PATIENTS_PER_CHAIR))


def plan_clinic(patients, *, today, open_days, closed_days, rng):
    """The courses of `patients` fictional patients, booked on chairs_for(patients) chairs, ending
    around `today` (later sessions of running courses are booked ahead)."""
    chairs = chairs_for(patients)
    courses = [_course(rng) for _ in range(patients)]
    long_term = set(range(0, patients, LONG_TERM_EVERY))
    for number in long_term:
        courses[number] = [("iv-induction", None)] + [("iv-booster", None)] * LONG_TERM_BOOSTERS
    sessions = sum(len(COURSE_DAYS.get(code, (0,))) for course in courses for code, _ in course)
    open_span = math.ceil(sessions / (chairs * len(SLOTS) * UTILISATION))
    span_days = open_span * 7 // len(open_days)
    first = today - timedelta(days=span_days)
    book = _Book(chairs, open_days, closed_days)
    planned = []
    # A long-term patient starts with the clinic and comes back at even intervals that end about today.
    interval = min(35, max(14, span_days // (LONG_TERM_BOOSTERS + 1)))
    for number, course in enumerate(courses, start=1):
        if number - 1 in long_term:
            start = first + timedelta(days=rng.randrange(14))
            course = [(code, interval if code == "iv-booster" else detail) for code, detail in course]
        else:
            start = first + timedelta(days=rng.randrange(span_days + 14))
        patient = PlannedPatient(number, registered_on=start - timedelta(days=rng.randint(7, 28)),
                                 slot=rng.randrange(len(SLOTS)))
        previous = None
        for code, detail in course:
            desired = start if previous is None else previous + timedelta(days=detail)
            series = PlannedSeries(code, ordered_on=desired - timedelta(days=5),
                                   stopped_after=detail if code != "iv-booster" else None)
            for offset in COURSE_DAYS.get(code, (0,)):
                day = desired + timedelta(days=offset)
                if previous is not None and day <= previous:
                    day = previous + timedelta(days=1)
                visit = book.place(day, patient.slot)
                series.visits.append(visit)
                previous = visit[0]
            patient.series.append(series)
        planned.append(patient)
    return chairs, planned


def _course(rng):
    """[(protocol code, detail)]: detail is, for an induction, the sessions held before it was stopped
    (None: not stopped) and, for a booster, the days after the previous session."""
    if rng.random() < 0.2:
        return [("esketamine-induction", None)]
    if rng.random() < 0.05:
        return [("iv-induction", rng.randint(2, 4))]
    return [("iv-induction", None)] + [("iv-booster", rng.randint(28, 56)) for _ in range(rng.randint(1, 7))]


class _Book:
    """Which slots of which days are taken: the first free chair at the wanted slot, else another slot
    that day, else the next open day."""

    def __init__(self, chairs, open_days, closed_days):
        self.chairs, self.open_days, self.closed_days = chairs, open_days, closed_days
        self.used = {}

    def place(self, day, slot):
        while True:
            day = next_open_day(day, self.open_days, self.closed_days)
            for choice in (slot, *(s for s in range(len(SLOTS)) if s != slot)):
                taken = self.used.get((day, choice), 0)
                if taken < self.chairs:
                    self.used[(day, choice)] = taken + 1
                    return day, choice, taken
            day += timedelta(days=1)
