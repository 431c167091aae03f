"""Seed the demo staff and a clearly fictional clinic: chairs, patients at every stage, today's board.

Every name carries "Demo-", every MRN starts DEMO-, phone numbers are (503) 555-01xx, in the range
kept for fiction, and e-mail addresses use example.org. The seed goes through the services (so everything is
audited: as DEMO_ACTOR, and the work at today's chairs as the demo nurse) except for booking:
order_series will not start a series in the past and picks its own chairs, so courses are built here
with the same shape order_series gives them, each patient in a lane of their own (one chair, one clock
time) so nothing is double-booked. Past sessions are walked through the state machine with
change_status; today's board from 'cleared' on goes through the chair's own services (chair.py), so
those sessions have the rows their state implies. A few series get PHQ-9s and GAD-7s (score service)
so the outcome page has rates, and one completed series has every note signed (SIGNED_SERIES).
"""
import itertools
import secrets
from datetime import date, time, timedelta
from decimal import Decimal

from flask import current_app, g
from sqlalchemy import func, select

from opsmgr.audit.service import Actor, record
from opsmgr.auth import service as auth
from opsmgr.auth.models import Role, StaffUser
from opsmgr.clinic.service import create_chair
from opsmgr.demo.chair import CHAIR_STATES, AtTheChair
from opsmgr.extensions import db
from opsmgr.notes import service as notes
from opsmgr.patients import service as patients
from opsmgr.patients.models import Patient
from opsmgr.rules import scheduling
from opsmgr.rules.session_states import SessionState
from opsmgr.schedule import service as schedule
from opsmgr.schedule.models import Chair, ClinicDay
from opsmgr.scores.models import GAD7, PHONE, PHQ9
from opsmgr.scores.service import record_score
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.series.service import stop_series
from opsmgr.sessions.models import InfusionSession

DEMO_ACTOR = Actor(user_id=None, username="demo-seed", role=None, ip=None)

DEMO_STAFF = (
    ("nurse", "Demo Nurse (fictional)", Role.NURSE, "RN"),
    ("coordinator", "Demo Coordinator (fictional)", Role.COORDINATOR, ""),
    ("physician", "Demo Physician (fictional)", Role.PHYSICIAN, "MD"),
    ("admin", "Demo Admin (fictional)", Role.ADMIN, ""),
)

CHAIRS = ("Chair 1", "Chair 2", "Chair 3", "Window chair")
CONSENT_FORM = "DEMO-CONSENT-v1"

#: The fictional patients: demographics, clinical background and the stage they are at.
#: "weeks" dates the intake (consent, weight) this many weeks before today; a stage of None is a
#: new patient without a series; "done" counts the sessions of an induction already held.
PATIENTS = (
    dict(mrn="DEMO-0001", legal_name="Avery Demo-Lindqvist", preferred_name="Avery", born=date(1986, 3, 14),
         sex="female", pregnancy_possible=True, indication="trd", detail="Recurrent episodes since 2015",
         failed_trials=3, allergies="Penicillin (rash)", kg="68.4", weeks=0, consented=False,
         meds=(("Sertraline 150 mg daily", "ssri_snri"),), contra=(), stage=None),
    dict(mrn="DEMO-0002", legal_name="Jordan Demo-Okafor", preferred_name="", born=date(1979, 8, 2),
         sex="male", indication="ptsd", detail="Service-related PTSD (fictional)", failed_trials=2,
         allergies="", kg="91.2", weeks=1,
         meds=(("Prazosin 2 mg at night", "other"), ("Amlodipine 5 mg daily", "other")),
         contra=(("uncontrolled_hypertension", "168/102 at intake 2024; controlled on amlodipine since", 420),),
         stage=None),
    dict(mrn="DEMO-0003", legal_name="Riley Demo-Castellanos", preferred_name="Riles", born=date(1995, 11, 21),
         sex="female", pregnancy_possible=True, indication="mdd", detail="", failed_trials=1,
         allergies="Sulfonamides", kg="57.9", weeks=1, meds=(("Bupropion XL 300 mg daily", "other"),),
         contra=(), stage=None),
    dict(mrn="DEMO-0004", legal_name="Morgan Demo-Haverford", preferred_name="", born=date(1972, 5, 30),
         sex="male", indication="trd", detail="", failed_trials=4, allergies="", kg="84.0", weeks=3,
         meds=(("Venlafaxine XR 225 mg daily", "ssri_snri"), ("Clonazepam 0.5 mg as needed", "benzodiazepine")),
         contra=(), stage="induction", done=3),
    dict(mrn="DEMO-0005", legal_name="Casey Demo-Nakamura", preferred_name="", born=date(1990, 1, 9),
         sex="female", pregnancy_possible=True, indication="trd", detail="", failed_trials=2,
         allergies="Latex", kg="62.5", weeks=2, meds=(("Escitalopram 20 mg daily", "ssri_snri"),),
         contra=(), stage="induction", done=2),
    dict(mrn="DEMO-0006", legal_name="Taylor Demo-Abernathy", preferred_name="Tay", born=date(1983, 9, 17),
         sex="male", indication="mdd", detail="", failed_trials=2, allergies="", kg="102.3", weeks=2,
         meds=(("Lamotrigine 100 mg daily", "lamotrigine"),), contra=(), stage="induction", done=1),
    dict(mrn="DEMO-0007", legal_name="Quinn Demo-Fairweather", preferred_name="", born=date(1968, 12, 3),
         sex="female", indication="trd", detail="Esketamine with an oral antidepressant", failed_trials=5,
         allergies="Codeine (nausea)", kg="74.8", weeks=4,
         meds=(("Duloxetine 60 mg daily", "ssri_snri"),), contra=(), stage="esketamine"),
    dict(mrn="DEMO-0008", legal_name="Sam Demo-Whitcombe", preferred_name="", born=date(1975, 7, 22),
         sex="male", indication="trd", detail="", failed_trials=3, allergies="", kg="88.6", weeks=14,
         meds=(("Mirtazapine 30 mg at night", "other"),), contra=(), stage="booster_today"),
    dict(mrn="DEMO-0009", legal_name="Drew Demo-Kowalczyk", preferred_name="", born=date(1988, 4, 11),
         sex="female", indication="ptsd", detail="", failed_trials=2, allergies="Ibuprofen (hives)", kg="70.1",
         weeks=24, meds=(("Sertraline 100 mg daily", "ssri_snri"),),
         contra=(("substance_use", "Alcohol use disorder, in sustained remission since 2021", 1500),),
         stage="booster_later_today"),
    dict(mrn="DEMO-0010", legal_name="Harper Demo-Valdés", preferred_name="", born=date(1961, 10, 28),
         sex="female", indication="trd", detail="", failed_trials=6, allergies="", kg="66.0", weeks=16,
         meds=(("Vortioxetine 10 mg daily", "ssri_snri"), ("Zolpidem 5 mg at night", "sedative_hypnotic")),
         contra=(), stage="booster_next_week"),
    dict(mrn="DEMO-0011", legal_name="Rowan Demo-Ashdown", preferred_name="", born=date(1993, 2, 6),
         sex="male", indication="mdd", detail="", failed_trials=2, allergies="", kg="97.4", weeks=5,
         meds=(("Fluoxetine 40 mg daily", "ssri_snri"),),
         contra=(("uncontrolled_hypertension", "182/110 before session 3; referred to primary care", 20),),
         stage="stopped"),
    dict(mrn="DEMO-0012", legal_name="Emerson Demo-Prychodko", preferred_name="Em", born=date(2000, 6, 19),
         sex="female", pregnancy_possible=True, indication="anxiety", detail="With depressive symptoms",
         failed_trials=2, allergies="", kg="59.3", weeks=1, meds=(), contra=(), stage="planned"),
)

#: Past and future sessions of each patient stay on one chair at one clock time, so the demo
#: never double-books a chair: (chair index, local time). Today's sessions go on the board instead.
LANES = {
    "DEMO-0004": (0, time(8, 0)), "DEMO-0005": (2, time(10, 30)), "DEMO-0006": (0, time(13, 0)),
    "DEMO-0007": (3, time(8, 0)), "DEMO-0008": (1, time(8, 0)), "DEMO-0009": (1, time(10, 30)),
    "DEMO-0010": (2, time(8, 0)), "DEMO-0011": (2, time(13, 0)), "DEMO-0012": (1, time(13, 0)),
}

#: Today's board, relative to an anchor near the current clinic time: (chair index, minutes from
#: the anchor, the state the session has reached). From 'cleared' on, chair.py gives each the rows
#: of its state (checklist, dose, controlled substance, vitals, discharge).
BOARD = {
    "DEMO-0004": (0, -150, SessionState.DISCHARGED),
    "DEMO-0006": (0, 0, SessionState.CHECKED_IN),
    "DEMO-0008": (1, -90, SessionState.RECOVERY),
    "DEMO-0009": (1, 60, SessionState.SCHEDULED),
    "DEMO-0005": (2, -30, SessionState.INFUSING),
    "DEMO-0007": (3, -15, SessionState.CLEARED),
}

#: The way through the state machine for past sessions (status only: their chair pages are history)
#: and today's checked-in one, with when each step plausibly happened: minutes after the session's
#: start (discharge: minutes before its end).
PATH = {
    SessionState.CHECKED_IN: -10, SessionState.CHECKLIST: 0, SessionState.CLEARED: 10,
    SessionState.INFUSING: 15, SessionState.RECOVERY: 60, SessionState.DISCHARGED: -10,
}


def has_staff():
    return db.session.scalar(select(func.count()).select_from(StaffUser)) > 0


#: How a demo account is marked: its name ends so, and its username is a demo one (DEMO_STAFF, or
#: the scale data set's staff, whose usernames start with SCALE_STAFF_PREFIX).
DEMO_NAME_MARK = "(fictional)"
SCALE_STAFF_PREFIX = "scale-"


def is_demo_staff(username, full_name):
    demo_username = username in {row[0] for row in DEMO_STAFF} or username.startswith(SCALE_STAFF_PREFIX)
    return demo_username and full_name.endswith(DEMO_NAME_MARK)


def has_real_staff():
    """Whether any staff account is not a demo one (demo data must never mix with a real clinic's)."""
    rows = db.session.execute(select(StaffUser.username, StaffUser.full_name)).all()
    return any(not is_demo_staff(username, full_name) for username, full_name in rows)


def new_demo_password():
    return "demo-" + secrets.token_urlsafe(12)


def seed_demo_staff(*, now, password=None):
    """Create the four demo accounts; returns {username: password}. Flushes, never commits."""
    created = {}
    for username, full_name, role, credentials in DEMO_STAFF:
        chosen = password or new_demo_password()
        auth.create_staff(username=username, full_name=full_name, role=role, credentials=credentials,
                          password=chosen, actor=DEMO_ACTOR, now=now)
        created[username] = chosen
    # Kept for this app context only: the clinic seed's witness confirms with their password.
    g.demo_passwords = created
    return created


def clinic_is_empty():
    return not (db.session.scalar(select(func.count()).select_from(Chair))
                or db.session.scalar(select(func.count()).select_from(Patient)))


def seed_demo_clinic(*, now, passwords=None):
    """Chairs, twelve fictional patients at every stage and today's board; returns counts. Flushes only.

    `passwords` ({username: password}) defaults to those seed_demo_staff just gave in this app context.
    """
    demo = _Seed(now, passwords or g.get("demo_passwords", {}))
    demo.chairs = [create_chair(name=name, position=number, actor=DEMO_ACTOR, now=now).id
                   for number, name in enumerate(CHAIRS, start=1)]
    for values in PATIENTS:
        patient = demo.register(values)
        if values["stage"] is not None:
            getattr(demo, values["stage"])(patient, values)
    demo.sign_past_note(SIGNED_NOTE_MRN)
    demo.sign_series(*SIGNED_SERIES)
    demo.restrict(RESTRICTED_MRN)
    counts = demo.counts()
    record("demo.seeded", actor=DEMO_ACTOR, now=now, details=counts)
    return counts


#: The restricted record (a staff member of the clinic, fictional): only the demo physician is on its care
#: team, so the demo nurse meets "Restricted record" and can try break-glass (README, Restricted records).
RESTRICTED_MRN = "DEMO-0003"
#: The patient whose latest past session carries a signed note (its PDF summary can be verified).
SIGNED_NOTE_MRN = "DEMO-0004"
#: (MRN, protocol) of the series every session of which that took place has a signed note, so a
#: physician can sign its series summary: Harper Demo-Valdés's completed IV induction.
SIGNED_SERIES = ("DEMO-0010", "iv-induction")
#: The series whose past sessions are held at the chair (demo.chair: checklist, dose, readings,
#: discharge), with the PHQ-9 (and GAD-7) totals answered at their checklists, in order (the rest,
#: and every GAD-7 not given, as demo.chair answers today: PHQ-9 10, GAD-7 6), and by phone
#: (days after its last past session, PHQ-9, GAD-7), so the outcome page has real rates: DEMO-0010
#: responds and remits, DEMO-0007 responds without remission, DEMO-0009 does neither; DEMO-0004
#: responds and DEMO-0005 does not at today's checklist (demo.chair.PHQ9, total 10).
SCORES = {
    ("DEMO-0004", "iv-induction"): dict(phq9=(21, 18, 15)),
    ("DEMO-0005", "iv-induction"): dict(phq9=(16, 14)),
    ("DEMO-0010", "iv-induction"): dict(phq9=(19, 16, 12, 9, 6, 4), gad7=(14, 12, 10, 8, 6, 5), phone=(14, 3, 4)),
    ("DEMO-0007", "esketamine-induction"): dict(phq9=(18, 16, 14, 12, 9)),
    ("DEMO-0009", "iv-induction"): dict(phq9=(17, 17, 16, 16, 15, 14)),
}
SIGNED_NOTE = {
    "mindset": "Calm, a little tired after a long week; looking forward to the session.",
    "intention": "To get back to my morning walks and answer my sister's calls.",
    "dissociation_clinician": 4,
    "post_session_state": "Relaxed and oriented; said the session felt lighter than the last one.",
    "narrative": "Uneventful infusion at the protocol dose. Mild dissociation, no nausea. Discharged with "
                 "their escort after the observation period. (Fictional demo record.)",
}


class _Seed:
    """The seed's clock, calendar and helpers (one instance per run)."""

    def __init__(self, now, passwords):
        self.now = now
        self.zone = current_app.config["CLINIC_TIMEZONE"]
        local = schedule.as_local(now, self.zone)
        self.today = local.date()
        self.open_days = frozenset(d.weekday for d in db.session.scalars(select(ClinicDay)) if d.is_open) \
            or frozenset(range(5))
        self.anchor = board_anchor(local, self.zone)
        self.physician_id = db.session.scalar(select(StaffUser.id).where(StaffUser.username == "physician"))
        self.protocols = {p.code: p for p in db.session.scalars(select(Protocol).where(Protocol.is_current))}
        self.chairs = []
        self.passwords = passwords
        self.at_chair = AtTheChair(now, passwords,
                                   day_starts_at=schedule.local_day_bounds(self.today, self.zone)[0])

    # --- patients -------------------------------------------------------------------------------

    def register(self, values):
        intake = self.today - timedelta(weeks=values["weeks"], days=3)
        number = int(values["mrn"].removeprefix("DEMO-"))
        first, surname = values["legal_name"].split(" ", 1)
        patient = patients.register_patient({
            "mrn": values["mrn"], "legal_name": values["legal_name"], "preferred_name": values["preferred_name"],
            "date_of_birth": values["born"], "sex_at_birth": values["sex"],
            "pregnancy_possible": values.get("pregnancy_possible", False),
            "phone": f"(503) 555-01{number:02d}", "email": f"{first.lower()}.{values['mrn'].lower()}@example.org",
            "reminder_channel": "sms" if number % 2 else "email", "contact_consent_on": intake,
            "escort_name": f"Alex {surname}", "escort_phone": f"(503) 555-01{number + 50:02d}",
            "indication": values["indication"], "indication_detail": values["detail"],
            "failed_trials": values["failed_trials"], "allergies": values["allergies"],
        }, actor=DEMO_ACTOR, now=self.now)
        patients.add_weight(patient, kg=Decimal(values["kg"]), measured_on=intake, actor=DEMO_ACTOR, now=self.now)
        for name, med_class in values["meds"]:
            patients.add_medication(patient, name=name, med_class=med_class, started_on=intake - timedelta(days=200),
                                    stopped_on=None, actor=DEMO_ACTOR, now=self.now)
        for kind, detail, days_ago in values["contra"]:
            patients.add_contraindication(patient, kind=kind, detail=detail, noted_on=self.today - timedelta(days_ago),
                                          actor=DEMO_ACTOR, now=self.now)
        if values.get("consented", True):
            patients.record_consent(patient, consent_on=intake, form_version=CONSENT_FORM, actor=DEMO_ACTOR,
                                    now=self.now)
        return patient

    # --- stages ---------------------------------------------------------------------------------

    def induction(self, patient, values):
        """An IV induction under way: earlier sessions discharged, one on today's board, the rest booked."""
        self.course(patient, "iv-induction", self.dates_around(self.today, values["done"] + 1, "iv-induction"))

    def esketamine(self, patient, values):
        self.course(patient, "esketamine-induction", self.dates_around(self.today, 6, "esketamine-induction"))

    def booster_today(self, patient, values):
        self.past_induction(patient, weeks_ago=9)
        self.course(patient, "iv-booster", [self.today])

    def booster_later_today(self, patient, values):
        self.past_induction(patient, weeks_ago=20)
        self.course(patient, "iv-booster", [self._prev_open(self.today - timedelta(weeks=6))])
        self.course(patient, "iv-booster", [self.today])

    def booster_next_week(self, patient, values):
        self.past_induction(patient, weeks_ago=11)
        self.course(patient, "iv-booster", [self._next_open(self.today + timedelta(days=7))])

    def stopped(self, patient, values):
        """Two sessions, then the physician stopped the series for blood pressure."""
        start = self._prev_open(self.today - timedelta(days=24))
        series = self.course(patient, "iv-induction", self.dates_around(start, 1, "iv-induction"), discharged=2)
        stop_series(series, reason="Blood pressure above 180/110 before session 3 on two readings; "
                                   "referred to primary care before any further dosing.",
                    actor=DEMO_ACTOR, now=self.now)

    def planned(self, patient, values):
        """Ordered, not started: the whole course ahead."""
        start = self._next_open(self.today + timedelta(days=4))
        self.course(patient, "iv-induction", self.dates_around(start, 1, "iv-induction"))

    def past_induction(self, patient, weeks_ago):
        last = self._prev_open(self.today - timedelta(weeks=weeks_ago))
        self.course(patient, "iv-induction", self.dates_around(last, 6, "iv-induction"))

    # --- building a course ----------------------------------------------------------------------

    def course(self, patient, code, dates, discharged=None):
        """A series with its sessions as order_series makes them; past ones walked to discharge."""
        protocol = self.protocols[code]
        ordered = scheduling.local_to_utc(dates[0] - timedelta(days=5), time(16, 0), self.zone)
        series = InfusionSeries(
            patient_id=patient.id, protocol=protocol, indication=patient.indication,
            dose_mg_per_kg=protocol.dose_mg_per_kg, dose_mg=protocol.dose_mg,
            planned_count=len(dates), start_on=dates[0], preferred_time=LANES[patient.mrn][1].strftime("%H:%M"),
            reevaluate_on=dates[-1] + timedelta(days=protocol.reevaluate_after_days)
            if protocol.reevaluate_after_days else None,
            status="planned", ordered_by_id=self.physician_id, ordered_at=min(ordered, self.now),
            warnings=[{"code": w.code, "message": w.message} for w in scheduling.plan_warnings(
                dates, max_gap_days=protocol.max_gap_days, max_span_days=protocol.max_span_days)])
        db.session.add(series)
        for sequence, day in enumerate(dates, start=1):
            chair, starts_at = self.place(patient.mrn, day)
            series.sessions.append(InfusionSession(
                patient_id=patient.id, chair_id=chair, sequence=sequence, starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=protocol.chair_minutes), status=SessionState.SCHEDULED.value))
        db.session.flush()
        record("series.ordered", actor=DEMO_ACTOR, now=self.now, object_type="infusion_series", object_id=series.id,
               patient_id=patient.id, details={"protocol": protocol.code, "protocol_version": protocol.version,
                                               "sessions": len(dates), "warnings": [w["code"] for w in series.warnings],
                                               "demo": True})
        plan = SCORES.get((patient.mrn, code))
        past = iter(zip(plan["phq9"], plan.get("gad7") or itertools.repeat(None), strict=False) if plan else ())
        for number, visit in enumerate(series.sessions, start=1):
            day = schedule.as_local(visit.starts_at, self.zone).date()
            if day == self.today:
                self.walk_today(visit, BOARD[patient.mrn][2])
            elif day < self.today and (discharged is None or number <= discharged):
                if plan is None:  # an earlier course of a booster patient: its states only (the seed stays fast)
                    self.walk(visit, SessionState.DISCHARGED)
                    continue
                phq9, gad7 = next(past, (None, None))  # None: as demo.chair answers today
                self.at_chair.hold_past(visit, (scale_items(phq9, PHQ9), scale_items(gad7, GAD7)))
        self.phone_scores(patient, series, plan or {})
        return series

    def phone_scores(self, patient, series, plan):
        """The planned PHQ-9 and GAD-7 by phone, some days after the series' last past session."""
        if "phone" not in plan:
            return
        held = [visit for visit in series.sessions if visit.status == SessionState.DISCHARGED.value]
        days, phq9, gad7 = plan["phone"]
        self.scales(patient, phq9, gad7, taken_at=min(held[-1].starts_at + timedelta(days=days), self.now))

    def scales(self, patient, phq9, gad7, *, taken_at):
        for instrument, total, difficulty in ((PHQ9, phq9, 1), (GAD7, gad7, None)):
            if total is not None:
                record_score(patient, instrument, scale_items(total, instrument), taken_at=taken_at, source=PHONE,
                             difficulty=difficulty, actor=DEMO_ACTOR, now=self.now)

    def place(self, mrn, day):
        """(chair id, start) of a session: on today's board, or in the patient's lane on other days."""
        if day == self.today:
            chair, offset, _state = BOARD[mrn]
            return self.chairs[chair], self.anchor + timedelta(minutes=offset)
        chair, clock = LANES[mrn]
        return self.chairs[chair], scheduling.local_to_utc(day, clock, self.zone)

    def walk_today(self, visit, target):
        if target in CHAIR_STATES:
            self.at_chair.hold(visit, target)
        else:
            self.walk(visit, target)

    def walk(self, visit, target):
        """Take a session through the state machine up to `target`; date the last step when it plausibly
        happened (the audit trail keeps the seed's own time)."""
        if target == SessionState.SCHEDULED:
            return
        steps = list(PATH)
        for state in steps[:steps.index(target) + 1]:
            schedule.change_status(visit, state, reason="", actor=DEMO_ACTOR, now=self.now, gate_passed=True)
        base = visit.ends_at if target == SessionState.DISCHARGED else visit.starts_at
        visit.status_changed_at = min(base + timedelta(minutes=PATH[target]), self.now)
        db.session.flush()

    # --- a signed note ---------------------------------------------------------------------------

    def sign_past_note(self, mrn):
        """The patient's latest session before today gets a complete note, written by the demo nurse and
        signed by the demo physician through the notes service (a real canonical record and SHA-256),
        so its signed session summary can be downloaded and verified."""
        visit = db.session.scalar(
            select(InfusionSession).join(Patient, Patient.id == InfusionSession.patient_id)
            .where(Patient.mrn == mrn, InfusionSession.status == SessionState.DISCHARGED.value,
                   InfusionSession.starts_at < schedule.local_day_bounds(self.today, self.zone)[0])
            .order_by(InfusionSession.starts_at.desc()).limit(1))
        if visit is not None:
            self.sign_note(visit)

    def sign_series(self, mrn, code):
        """Every session of the patient's series that took place (here: was discharged) gets a signed
        note, so the series summary can be signed."""
        held = db.session.scalars(
            select(InfusionSession).join(InfusionSeries, InfusionSeries.id == InfusionSession.series_id)
            .join(Patient, Patient.id == InfusionSession.patient_id)
            .join(Protocol, Protocol.id == InfusionSeries.protocol_id)
            .where(Patient.mrn == mrn, Protocol.code == code, InfusionSession.status == SessionState.DISCHARGED.value)
            .order_by(InfusionSession.starts_at)).all()
        for visit in held:
            self.sign_note(visit)

    def sign_note(self, visit):
        """A complete note, written by the demo nurse and signed by the demo physician (notes service)."""
        physician = db.session.scalar(select(StaffUser).where(StaffUser.username == "physician"))
        if physician is None or "physician" not in self.passwords:
            return
        nurse = self.at_chair.nurse
        saved = notes.save_draft(visit, SIGNED_NOTE, expected_version=0, actor=nurse, now=self.now).row
        notes.complete_note(visit, expected_version=saved.version, actor=nurse, now=self.now)
        notes.sign_note(visit, physician=physician, password=self.passwords["physician"],
                        expected_version=saved.version, ip=None, now=self.now)


    def dates_around(self, day, position, code):
        """Session dates of a full course whose session number `position` falls on `day`."""
        protocol = self.protocols[code]
        phases = scheduling.phases_from(protocol.phases)
        spacings = [p.spacing_days for p in phases for _ in range(p.weeks * p.per_week)]

        def gap(after):  # days from session `after` to the next, as plan_dates spaces them
            return spacings[after - 1] if after - 1 < len(spacings) else phases[-1].spacing_days

        dates = {position: day}
        for number in range(position - 1, 0, -1):
            dates[number] = self._prev_open(dates[number + 1] - timedelta(days=gap(number)))
        for number in range(position + 1, protocol.planned_count + 1):
            dates[number] = self._next_open(dates[number - 1] + timedelta(days=gap(number - 1)))
        return [dates[number] for number in sorted(dates)]

    def _next_open(self, day):
        return scheduling.next_open_day(day, self.open_days)

    def _prev_open(self, day):
        while day.weekday() not in self.open_days:
            day -= timedelta(days=1)
        return day

    def restrict(self, mrn):
        """Restrict `mrn`'s record to a care team of the demo physician (without one: left open)."""
        from opsmgr.restricted.service import set_restriction

        patient = db.session.scalar(select(Patient).where(Patient.mrn == mrn))
        if patient is not None and self.physician_id is not None:
            set_restriction(patient, restricted=True, care_team=[self.physician_id],
                            reason="A staff member of the clinic (fictional demo)", actor=DEMO_ACTOR, now=self.now)

    def counts(self):
        start, end = schedule.local_day_bounds(self.today, self.zone)
        sessions_today = db.session.scalar(select(func.count()).select_from(InfusionSession).where(
            InfusionSession.starts_at >= start, InfusionSession.starts_at < end))
        return {
            "chairs": db.session.scalar(select(func.count()).select_from(Chair)),
            "patients": db.session.scalar(select(func.count()).select_from(Patient)),
            "series": db.session.scalar(select(func.count()).select_from(InfusionSeries)),
            "sessions": db.session.scalar(select(func.count()).select_from(InfusionSession)),
            "sessions_today": sessions_today,
        }


def scale_items(total, instrument):
    """Answers adding up to `total` (None: None), spread evenly; the PHQ-9's item 9 (self-harm) is 0."""
    if total is None:
        return None
    count = 8 if instrument == PHQ9 else 7
    return [total // count + (item < total % count) for item in range(count)] + [0] * (instrument == PHQ9)


def board_anchor(local_now, zone):
    """The clinic time today's board is laid out around: now, on the quarter hour, kept between
    10:30 and 15:00 so the morning's discharged session and the afternoon's booking fit the day
    (seeded at night, the board shows the day as it stood in the early afternoon)."""
    minutes = local_now.hour * 60 + local_now.minute
    minutes = min(max(minutes - minutes % 15, 10 * 60 + 30), 15 * 60)
    return scheduling.local_to_utc(local_now.date(), time(minutes // 60, minutes % 60), zone)
