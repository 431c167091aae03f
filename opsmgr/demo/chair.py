"""Today's demo sessions at the chair, given the rows their state implies by the chair's own services.

The cleared, infusing, recovery and discharged sessions on today's board are checked in and their
checklist is filled with answers that clear under the current policy; from there, as far as each
state goes, the dose is started through the start gate, the controlled substance is recorded and
witnessed, vitals are taken at every timepoint already passed, the infusion is ended and the
patient discharged. So every chair page is coherent and a nurse can carry it on to discharge.

The steps are taken as the demo nurse, and the demo physician witnesses with their password: the
controlled-substance record needs two staff members (recorded by, witnessed by), and the dose,
readings and audit trail then name the same nurse.

Times run back from the seed's clock, not from the bookings, so a nurse can carry on now whenever
the seed runs. Within clinic hours they fall inside the booked slots; seeded in the evening or
early morning (the board stays between 10:30 and 15:00, see service.board_anchor) they do not.
Check-in and the checklist are refused on another day than the booking's, so in the first hours
after midnight the chair's clock is held at LOOKBACK after midnight, a little ahead of the real one.
"""
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal

from sqlalchemy import select

from opsmgr.auth.models import StaffUser
from opsmgr.auth.service import actor_for
from opsmgr.checklist import service as checklist
from opsmgr.extensions import db
from opsmgr.infusion import discharge as discharge_service
from opsmgr.infusion import dose as dose_service
from opsmgr.infusion import service as infusion
from opsmgr.infusion import vitals as vitals_service
from opsmgr.policy.service import current_policy
from opsmgr.rules import monitoring
from opsmgr.rules.session_states import SessionState
from opsmgr.schedule import service as schedule

S = SessionState
#: Today's board states that have rows at the chair (checked in has none yet).
CHAIR_STATES = frozenset({S.CLEARED, S.INFUSING, S.RECOVERY, S.DISCHARGED})
NURSE, WITNESS = "nurse", "physician"

#: When the dose started, in minutes before the chair's clock (the seed's, see LOOKBACK), with the
#: policy's defaults (40-minute infusions, readings every 10 minutes then every 15, 30 minutes'
#: observation). Infusing: readings at 0, 10 and 20 minutes, the next due 5 minutes after the seed.
#: Recovery: the infusion ended 25 minutes ago, the last reading 10 minutes ago; the observation ends
#: 5 minutes after the seed. Discharged: the whole session, discharged an hour ago.
DOSE_MINUTES_AGO = {S.INFUSING: 25, S.RECOVERY: 65, S.DISCHARGED: 135}
#: The checklist is filled this long before the dose; check-in is this long before the checklist.
CHECKLIST_BEFORE_DOSE, CHECKED_IN_BEFORE_CHECKLIST = timedelta(minutes=10), timedelta(minutes=15)
#: How far before the chair's clock the earliest step lies (the discharged session's check-in).
LOOKBACK = timedelta(minutes=max(DOSE_MINUTES_AGO.values())) + CHECKLIST_BEFORE_DOSE + CHECKED_IN_BEFORE_CHECKLIST
#: Discharged this long after the last timepoint (the end of the minimum observation).
DISCHARGE_AFTER_OBSERVATION = timedelta(minutes=5)

#: Pre-dose vitals within every gate.
PRE_DOSE_VITALS = dict(systolic=124, diastolic=80, heart_rate=72, spo2=98, temperature_c=Decimal("36.7"),
                       respiratory_rate=14)
PHQ9, PHQ9_DIFFICULTY = (2, 2, 1, 2, 1, 1, 1, 0, 0), 1  # total 10 (moderate); item 9 (self-harm) 0
GAD7 = (1, 1, 2, 1, 0, 1, 0)  # total 6 (mild)
INTENTIONS = {
    "DEMO-0004": "To get back to my morning walks and answer my sister's calls.",
    "DEMO-0005": "To feel less flat at work and enjoy cooking again.",
    "DEMO-0007": "To stay open to the therapy sessions this week.",
    "DEMO-0008": "To keep the good months going through the winter.",
}
DEFAULT_INTENTION = "To feel more like myself again."
#: Readings at successive timepoints (systolic, diastolic, heart rate, SpO2, MOAA/S): a modest rise in
#: blood pressure and light sedation while infusing, back to baseline in recovery; none raises an alert.
READINGS = ((126, 80, 74, 98, 5), (134, 84, 78, 97, 4), (138, 86, 80, 97, 4), (134, 84, 78, 98, 4),
            (130, 82, 76, 98, 4), (124, 78, 72, 98, 5), (120, 76, 70, 99, 5))
#: The product drawn per route and the amount one vial or device holds (mg).
PRODUCTS = {"iv": ("Ketamine hydrochloride 50 mg/mL, 10 mL vial (demo)", Decimal(50)),
            "esketamine": ("Esketamine 28 mg nasal device (demo)", Decimal(28))}
LOT = "DEMO-LOT-0001"
CONDITION = "Alert and oriented, steady on their feet, back to baseline; left with their escort."


class AtTheChair:
    """The demo nurse's work at the chair, on the seed's clock (one instance per seed)."""

    def __init__(self, now, passwords, *, day_starts_at):
        if WITNESS not in passwords:
            raise LookupError("The demo chairs need the demo physician's password to witness the controlled "
                              "substance: seed the demo staff first, in the same app context.")
        staff = {user.username: user for user in db.session.scalars(
            select(StaffUser).where(StaffUser.username.in_((NURSE, WITNESS))))}
        self.nurse, self.witness_password = actor_for(staff[NURSE]), passwords[WITNESS]
        self.base = max(now.replace(second=0, microsecond=0), day_starts_at + LOOKBACK)
        self.policy = current_policy()[1]

    def hold(self, visit, target, *, base=None, scales=None):
        """Take a session of today's board from scheduled to `target` (cleared or further).

        A past session is held with `base` at the end of its own visit (checked in as it was booked)
        and `scales` = (PHQ-9 items, GAD-7 items) answered at its checklist."""
        base = base or self.base
        dose_at = base - timedelta(minutes=DOSE_MINUTES_AGO[target]) if target in DOSE_MINUTES_AGO else None
        # Cleared: the checklist (with its vitals) is done as the seed runs, so the start gate is clear
        # then; the vitals go stale after the policy's vitals_max_age_minutes (30 by default) and the
        # page then says VITALS_STALE, as it would for a patient kept waiting: a new set clears it.
        checklist_at = base if dose_at is None else dose_at - CHECKLIST_BEFORE_DOSE
        schedule.change_status(visit, S.CHECKED_IN, reason="", actor=self.nurse,
                               now=checklist_at - CHECKED_IN_BEFORE_CHECKLIST)
        checklist.fill_checklist(visit, checklist_answers(visit, checklist_at, scales),
                                 expected_version=checklist.NOT_SAVED, actor=self.nurse, now=checklist_at)
        if dose_at is not None:
            self.dose(visit, dose_at, until=base)
        if target == S.DISCHARGED:
            self.discharge(visit)

    def hold_past(self, visit, scales):
        """A session before today, from check-in at its booked start to discharge: its dose, readings
        and scores are on the chart, the series page and the summaries as a real one's would be."""
        self.hold(visit, S.DISCHARGED, base=visit.starts_at + LOOKBACK, scales=scales)

    def dose(self, visit, at, *, until):
        """Start the dose, record the controlled substance, and take the readings due up to `until`
        (the chair's clock), ending the infusion when its time comes."""
        dose_service.start_dose(visit, infusion_minutes=visit.series.protocol.min_infusion_minutes or None,
                            actor=self.nurse, now=at)
        dose = infusion.dose_for(visit)
        self.controlled_substance(visit, dose, at)
        ends_at = dose.infusion_ended_at or at + timedelta(minutes=dose.infusion_minutes)
        for number, point in enumerate(self.timepoints(visit, dose, ends_at)):
            if point.at > until:
                break
            if visit.state == S.INFUSING and point.at >= ends_at:
                dose_service.end_infusion(visit, actor=self.nurse, now=ends_at)
            self.reading(visit, point.at, number)

    def timepoints(self, visit, dose, ends_at):
        return monitoring.vitals_timepoints(route=visit.series.protocol.route, dose_started_at=dose.dose_started_at,
                                            infusion_ended_at=ends_at, policy=self.policy)

    def controlled_substance(self, visit, dose, at):
        """The whole dose given from whole vials (devices), the rest wasted, witnessed by the physician."""
        product, unit = PRODUCTS[visit.series.protocol.route]
        drawn = (dose.dose_mg / unit).to_integral_value(rounding=ROUND_CEILING) * unit
        dose_service.record_controlled_substance(
            visit, product=product, lot=LOT, expiry_on=at.date() + timedelta(days=400), drawn_mg=drawn,
            given_mg=dose.dose_mg, wasted_mg=drawn - dose.dose_mg, witness_username=WITNESS,
            witness_password=self.witness_password, actor=self.nurse, now=at)

    def reading(self, visit, at, number):
        systolic, diastolic, heart_rate, spo2, moaas = READINGS[min(number, len(READINGS) - 1)]
        vitals_service.record_vitals(visit, systolic=systolic, diastolic=diastolic, heart_rate=heart_rate, spo2=spo2,
                               moaas=moaas, taken_at=at, actor=self.nurse, now=at)

    def discharge(self, visit):
        """Discharged a few minutes after the minimum observation, after its last reading."""
        at = infusion.readings_for(visit)[-1].taken_at + DISCHARGE_AFTER_OBSERVATION
        discharge_service.discharge(visit, moaas=self.policy.baseline_moaas, escort_present=True,
                                    instructions_given=True, condition=CONDITION, actor=self.nurse, now=at)


def checklist_answers(visit, at, scales=None):
    """Every checklist item answered, nothing to stop the dose: vitals taken `at`, fasting overnight;
    `scales` = (PHQ-9 items, GAD-7 items), by default a moderate PHQ-9 (10) and a mild GAD-7 (6)."""
    patient, route = visit.patient, visit.series.protocol.route
    phq9, gad7 = scales or (None, None)
    phq9, gad7 = phq9 or PHQ9, gad7 or GAD7
    answers = {
        **PRE_DOSE_VITALS, "vitals_taken_at": at, "weight_kg": latest_weight(patient), "medication_changes": [],
        "new_diagnoses": False, "cardio_cerebrovascular_event": False, "psychosis_symptoms": False,
        "mania_symptoms": False, "substance_use_in_window": False,
        "last_solid_food_at": at - timedelta(hours=8), "last_clear_liquid_at": at - timedelta(hours=3),
        "escort_name": patient.escort_name, "escort_phone": patient.escort_phone, "consent_reconfirmed": True,
        "phq9_items": list(phq9), "phq9_difficulty": PHQ9_DIFFICULTY, "gad7_items": list(gad7),
        "suicide_risk": "low", "willingness": "yes", "intention": INTENTIONS.get(patient.mrn, DEFAULT_INTENTION),
    }
    if patient.pregnancy_possible:
        answers["pregnancy_status"] = "test_negative"
    if route == "esketamine":
        answers["vascular_contraindication"] = False
    return answers


def latest_weight(patient):
    return max((weight for weight in patient.weights if not weight.is_entered_in_error),
               key=lambda weight: weight.measured_on).kg
