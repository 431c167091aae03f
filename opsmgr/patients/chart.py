"""The patient chart, the hub of a patient's care: series, sessions with their next step, notes with their
signature, open physician tasks, the PHQ-9/GAD-7 trend and every weight, in a fixed number of statements
whatever the patient's history."""
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from markupsafe import Markup
from sqlalchemy import or_, select
from sqlalchemy.orm import defer, joinedload, raiseload, selectinload

from opsmgr.audit.service import record
from opsmgr.extensions import db
from opsmgr.patients.models import Patient, PatientWeight
from opsmgr.patients.service import CLINICAL_COLUMNS
from opsmgr.rules import outcomes
from opsmgr.rules.notes import next_step
from opsmgr.rules.session_states import ACTIVE_STATES, SessionState

#: Booked sessions still to come: live, and not yet discharged.
UPCOMING_STATES = ACTIVE_STATES - {SessionState.DISCHARGED}
#: Sessions the trend marks: those where the patient was dosed.
DOSED_STATES = {SessionState.INFUSING, SessionState.RECOVERY, SessionState.DISCHARGED}


@dataclass(frozen=True)
class NoteState:
    """A session note's signature state, without its content (a coordinator's chart shows it too)."""

    status: str
    signed_at: datetime | None
    signer_name: str

    @property
    def label(self):
        return {"draft": "Draft", "complete": "Complete, not signed", "signed": "Signed"}[self.status]


@dataclass(frozen=True)
class WeightRow:
    """One line of the chart's weights: an entry made on the chart (`entry`, which can be marked entered
    in error) or the weight taken at a session's checklist (`session`; corrected in that checklist)."""

    measured_on: date
    kg: Decimal
    entry: PatientWeight | None = None
    session: object = None

    @property
    def lb(self):
        return (self.kg * Decimal("2.20462")).quantize(Decimal("0.1"))

    @property
    def from_checklist(self):
        return self.session is not None

    @property
    def is_entered_in_error(self):
        return self.entry is not None and self.entry.is_entered_in_error


@dataclass(frozen=True)
class Chart:
    patient: Patient
    series: list
    upcoming: list
    age: int
    #: PHQ-9 and GAD-7 totals, oldest first (clinical charts only: a coordinator's chart never reads them).
    scores: tuple = ()
    #: {session id: NoteState} for the sessions that have a note.
    notes: dict = None
    #: {session id: dose in mg/kg} for the sessions dosed (clinical charts only).
    doses: dict = None
    #: The patient's open physician tasks, oldest first (clinical charts only).
    tasks: tuple = ()
    #: Chart entries and checklist weights, newest first (clinical charts only).
    weights: tuple = ()

    @property
    def sessions(self):
        """{session id: session} over every series."""
        return {visit.id: visit for item in self.series for visit in item.sessions}

    def next_step(self, visit):
        """What the session waits for, in the words the board and the session page use."""
        note = (self.notes or {}).get(visit.id)
        return next_step(visit.state, note.status if note else None)


def load_chart(patient_id, *, clinical=True):
    """A patient with their series and sessions, in a fixed number of statements.

    Without `clinical`, weights, medications, contraindications, allergies and consent are not loaded at all.
    """
    from opsmgr.series.models import InfusionSeries
    from opsmgr.sessions.models import InfusionSession

    if clinical:
        background = (selectinload(Patient.weights), selectinload(Patient.medications),
                      selectinload(Patient.contraindications))
    else:
        background = (raiseload(Patient.weights), raiseload(Patient.medications),
                      raiseload(Patient.contraindications),
                      *(defer(column, raiseload=True) for column in CLINICAL_COLUMNS))
    # Series, their protocol, sessions and chairs in one statement (a long-term patient's 45 series and 50
    # sessions are 50 rows).
    return db.session.scalar(
        select(Patient).where(Patient.id == patient_id).options(*background)
    ), db.session.scalars(
        select(InfusionSeries).where(InfusionSeries.patient_id == patient_id)
        .options(joinedload(InfusionSeries.protocol),
                 joinedload(InfusionSeries.sessions).joinedload(InfusionSession.chair))
        .order_by(InfusionSeries.start_on.desc())
    ).unique().all()


def open_chart(patient_id, *, clinical, actor, now, today, zone):
    """The chart for one patient (None if there is none); every opening is audited."""
    from opsmgr.scores.service import scores_for

    patient, series = load_chart(patient_id, clinical=clinical)
    if patient is None:
        return None
    record("patient.viewed", actor=actor, now=now, object_type="patient", object_id=patient.id,
           patient_id=patient.id, details={"clinical": clinical})
    facts = session_facts(patient.id, clinical=clinical)
    chart = Chart(patient, series, upcoming_sessions(series, now), age_on(patient.date_of_birth, today),
                  notes=facts.notes)
    if not clinical:
        return chart
    return Chart(chart.patient, series, chart.upcoming, chart.age, scores_for(patient.id), chart.notes,
                 doses=facts.doses, tasks=open_tasks(patient.id),
                 weights=weight_rows(patient.weights, facts.weights, chart.sessions, zone))


def upcoming_sessions(series, now: datetime):
    """Sessions of these series that have not ended and still hold a chair, soonest first."""
    sessions = (one for item in series for one in item.sessions)
    return sorted((one for one in sessions if one.state in UPCOMING_STATES and one.ends_at > now),
                  key=lambda one: one.starts_at)


def age_on(born: date, today: date):
    """Age in whole years on `today`."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@dataclass(frozen=True)
class SessionFacts:
    #: {session id: NoteState} for the sessions that have a note.
    notes: dict
    #: {session id: mg/kg} of the doses recorded (clinical charts only).
    doses: dict
    #: [(session id, kg, when taken or None)] of the weights recorded at checklists (clinical charts only).
    weights: list


def session_facts(patient_id, *, clinical=True):
    """What the chart shows of each of the patient's sessions besides the session itself — its note's state
    and, for clinicians, the dose given and the weight taken at the checklist — in one statement (each is
    one row per session at most)."""
    from opsmgr.checklist.models import ChecklistResponse
    from opsmgr.infusion.models import DoseRecord
    from opsmgr.notes.models import SessionNote
    from opsmgr.sessions.models import InfusionSession

    columns = [InfusionSession.id, SessionNote.status, SessionNote.signed_at, SessionNote.signer_name]
    query = select(*columns).outerjoin(SessionNote, SessionNote.session_id == InfusionSession.id)
    present = [SessionNote.session_id.is_not(None)]
    if clinical:
        query = (query.add_columns(DoseRecord.mg_per_kg, ChecklistResponse.weight_kg,
                                   ChecklistResponse.vitals_taken_at)
                 .outerjoin(DoseRecord, DoseRecord.session_id == InfusionSession.id)
                 .outerjoin(ChecklistResponse, ChecklistResponse.session_id == InfusionSession.id))
        present += [DoseRecord.mg_per_kg.is_not(None), ChecklistResponse.weight_kg.is_not(None)]
    facts = SessionFacts({}, {}, [])
    for row in db.session.execute(query.where(InfusionSession.patient_id == patient_id, or_(*present))):
        if row.status is not None:
            facts.notes[row.id] = NoteState(row.status, row.signed_at, row.signer_name)
        if clinical and row.mg_per_kg is not None:
            facts.doses[row.id] = row.mg_per_kg
        if clinical and row.weight_kg is not None:
            facts.weights.append((row.id, row.weight_kg, row.vitals_taken_at))
    return facts


def open_tasks(patient_id):
    """The patient's open physician tasks, oldest first, in one statement."""
    from opsmgr.tasks.models import PhysicianTask

    return tuple(db.session.scalars(
        select(PhysicianTask).where(PhysicianTask.patient_id == patient_id, PhysicianTask.resolved_at.is_(None))
        .order_by(PhysicianTask.created_at, PhysicianTask.id)))


def weight_rows(entries, from_checklists, sessions, zone):
    """The chart's weights, newest first: its own entries and those taken at a checklist (dated the day the
    checklist's vitals were taken, or the session's day)."""
    rows = [WeightRow(entry.measured_on, entry.kg, entry=entry) for entry in entries]
    for session_id, kg, taken_at in from_checklists:
        visit = sessions.get(session_id)
        if visit is not None:
            rows.append(WeightRow((taken_at or visit.starts_at).astimezone(zone).date(), kg, session=visit))
    return tuple(sorted(rows, key=lambda row: (row.measured_on, row.from_checklist), reverse=True))


def trend(chart, zone):
    """The PHQ-9/GAD-7 trend as inline SVG (None without scores), the series page's picture over every series:
    the sessions dosed marked, the mg/kg where it starts or changes, response measured from the first series'
    baseline PHQ-9."""
    from opsmgr.reports.charts import score_trend
    from opsmgr.scores.models import PHQ9

    if not chart.scores:
        return None
    dosed = sorted((visit for item in chart.series for visit in item.sessions if visit.state in DOSED_STATES),
                   key=lambda visit: visit.starts_at)
    scores = [(score.taken_at.astimezone(zone), score.instrument, score.total) for score in chart.scores]
    return Markup(score_trend(  # noqa: S704  # nosec B704  # built by ElementTree, text escaped
        scores, sessions=[visit.starts_at.astimezone(zone) for visit in dosed],
        doses=[(visit.starts_at.astimezone(zone), mg_per_kg) for visit, mg_per_kg in dose_changes(dosed, chart.doses)],
        response_baseline=first_baseline(chart.series, [s for s in chart.scores if s.instrument == PHQ9], zone)))


def dose_changes(dosed, doses):
    """(session, mg/kg) where the dose starts or changes, in session order: a label at every one of a
    long course's sessions would print the same dose on top of itself (and take seconds to draw)."""
    changes, last = [], None
    for visit in dosed:
        mg_per_kg = (doses or {}).get(visit.id)
        if mg_per_kg is not None and mg_per_kg != last:
            changes.append((visit, mg_per_kg))
            last = mg_per_kg
    return changes


def first_baseline(series, phq9, zone):
    """The baseline PHQ-9 of the patient's first series that has one (rules.outcomes), or None."""
    facts = [outcomes.ScoreFact(score.taken_at, score.total, score.session_id) for score in phq9]
    for item in sorted(series, key=lambda item: (item.start_on, item.id)):
        visits = [outcomes.SessionFact(visit.id, visit.starts_at, visit.status) for visit in item.sessions]
        baseline = outcomes.series_outcome(visits, facts, zone=zone).baseline
        if baseline is not None:
            return baseline
    return None
