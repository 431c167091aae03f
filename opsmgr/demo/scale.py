"""`flask seed scale`: a clinic chain's worth of fictional data, written by bulk inserts.

Everything is fictional and marked so: staff named "… (fictional)" with usernames starting
"scale-", patients "Demo-…" with MRNs DEMO-S…, phones in the 555-01xx range kept for fiction,
e-mail at example.org. The calendar comes from scale_plan; the rows are written day by day, in
time order, one transaction per BATCH_SESSIONS held sessions (the command commits; this module
only executes):
a patient on the day they were registered, a series with all its sessions (as booked) on the day
it was ordered, and a held session's checklist, dose, controlled substance, readings, alerts,
discharge and adverse events on its day, its note last. A signed note stores the canonical text
that opsmgr.sessions.record.serialize gives for those very rows, and its SHA-256, so the lock,
its triggers and signature checks meet real signed sessions. Each batch's audit events are
chained in Python from the head as it stands in that transaction, and the head moves with them.

Ids are given here (the next after the largest in each table), so rows can name each other
without a round trip; on PostgreSQL each batch moves the id sequences past them.
"""
import math
import random
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, insert, select, update

from opsmgr.audit.chain import GENESIS, HEAD_ID, Linker, canonical_details
from opsmgr.audit.models import AuditEvent, AuditHead
from opsmgr.auth.models import Role, StaffUser
from opsmgr.auth.passwords import hash_password
from opsmgr.checklist.models import ChecklistResponse
from opsmgr.demo.scale_plan import SLOTS, plan_clinic
from opsmgr.demo.service import DEMO_NAME_MARK, SCALE_STAFF_PREFIX, has_real_staff
from opsmgr.extensions import db
from opsmgr.infusion.models import ControlledSubstanceEntry, DischargeRecord, DoseRecord, InChairAlert, VitalSign
from opsmgr.notes.models import AdverseEvent, SessionNote
from opsmgr.patients.models import Patient, PatientSearchWord, PatientWeight, mrn_key, search_word_rows
from opsmgr.policy.service import current_policy
from opsmgr.rules import identity
from opsmgr.rules.scales import score_gad7, score_phq9
from opsmgr.rules.scheduling import local_to_utc
from opsmgr.schedule.models import Chair, ClinicClosure, ClinicDay
from opsmgr.scores.models import CHECKLIST, GAD7, PHQ9, Score
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.sessions import record as canonical
from opsmgr.sessions.models import InfusionSession

MRN_PREFIX = "DEMO-S"
#: Held sessions per transaction (with their series, patients and audit events).
BATCH_SESSIONS = 2000
#: Readings per held session: every READING_MINUTES from the dose's start.
READINGS, READING_MINUTES = 12, 8
GIVEN = ("Avery", "Jordan", "Riley", "Morgan", "Casey", "Taylor", "Quinn", "Sam", "Drew", "Harper", "Rowan",
         "Emerson", "Jamie", "Skyler", "Reese", "Parker", "Hayden", "Dakota", "Elliot", "Finley")
FAMILY = ("Lindqvist", "Okafor", "Castellanos", "Haverford", "Nakamura", "Abernathy", "Fairweather", "Whitcombe",
          "Kowalczyk", "Valdés", "Ashdown", "Prychodko", "Marchetti", "Osei", "Delacroix", "Brannigan", "Sørensen",
          "Iwasaki", "Montague", "Quintero", "Hollis", "Achterberg", "Ferreira", "Mbeki", "Larkspur")
INDICATIONS = ("trd", "trd", "trd", "mdd", "ptsd", "anxiety")
PRODUCTS = {"iv": ("Ketamine hydrochloride 50 mg/mL, 10 mL vial (demo)", Decimal(50)),
            "esketamine": ("Esketamine 28 mg nasal device (demo)", Decimal(28))}
#: The tables given ids here, whose PostgreSQL sequences each batch moves on.
ID_MODELS = (StaffUser, Chair, Patient, PatientWeight, InfusionSeries, InfusionSession, ChecklistResponse, Score,
             DoseRecord, ControlledSubstanceEntry, VitalSign, InChairAlert, DischargeRecord, AdverseEvent,
             SessionNote)
#: Insert order within a batch: what a row names is written before it, and the note after its session's rows.
INSERT_ORDER = (Patient, PatientSearchWord, PatientWeight, InfusionSeries, InfusionSession, ChecklistResponse, Score,
                DoseRecord, ControlledSubstanceEntry, VitalSign, InChairAlert, DischargeRecord, AdverseEvent,
                SessionNote)
NOTE_TEXT = dict(mindset="Calm, a little nervous about the first minutes (fictional).",
                 intention="To feel more like myself again.", expectations="Some floating; wants to stay curious.",
                 worries="Nausea.", music="Instrumental playlist, low volume.", lighting="Dimmed",
                 room="Quiet room", support_person="Escort waiting in the lounge.",
                 emotional_tone="Mostly peaceful, moments of sadness that passed.",
                 themes="Family, work, rest.", perceptual_effects="Mild visual patterns; body felt heavy.",
                 quotes="", ending="Gradual return, oriented by the end of recovery.",
                 post_session_state="Alert, steady, back to baseline.",
                 integration_plan="Journal tonight; therapy session this week.",
                 narrative="Uneventful fictional session generated for the scale data set.")


def refusal():
    """Why the scale seed must not run here, or None."""
    if has_real_staff():
        return "This database has real (non-demo) staff accounts; the scale data set is for demo databases only."
    if db.session.scalar(select(func.count()).select_from(Patient).where(Patient.mrn.startswith(MRN_PREFIX))):
        return "The scale data set is here already."
    return None


class ScaleSeed:
    """One run: plan the clinic, then write it batch by batch (`batches()` yields held sessions written)."""

    def __init__(self, patients, *, now, random_seed=2026):
        self.now, self.rng = now, random.Random(random_seed)
        self.zone = current_app.config["CLINIC_TIMEZONE"]
        self.key = current_app.config["AUDIT_KEY"]
        self.today = now.astimezone(ZoneInfo(self.zone)).date()
        open_days = frozenset(d.weekday for d in db.session.scalars(select(ClinicDay)) if d.is_open) \
            or frozenset(range(5))
        closed = frozenset(db.session.scalars(select(ClinicClosure.closed_on)))
        self.chair_count, self.patients = plan_clinic(patients, today=self.today, open_days=open_days,
                                                      closed_days=closed, rng=self.rng)
        self.protocols = {p.code: p for p in db.session.scalars(select(Protocol).where(Protocol.is_current))}
        self.policy_version = current_policy()[0] or None
        self.next_id = {model: (db.session.scalar(select(func.max(model.id))) or 0) + 1 for model in ID_MODELS}
        self.starts = {}
        self.counts = {model.__tablename__: 0 for model in INSERT_ORDER} | {"audit_event": 0}

    @property
    def total(self):
        """Units of progress: every session planned."""
        return sum(len(series.visits) for patient in self.patients for series in patient.series)

    def batches(self):
        """Write the data set; yields after each batch (the caller commits) with the sessions it wrote."""
        self._write_staff_and_chairs()
        batch, written = _Batch(), 0
        for kind, patient, series, index in self._timeline():
            if kind == 0:
                self._register(batch, patient)
            elif kind == 1:
                self._order(batch, patient, series)
                written += len(series.visits)
            else:
                self._hold(batch, patient, series, index)
            if batch.sessions >= BATCH_SESSIONS:
                self._flush(batch)
                yield written
                batch, written = _Batch(), 0
        self._flush(batch)
        yield written

    # --- the order things happened in ----------------------------------------------------------

    def _timeline(self):
        """(kind, patient, series, visit index) in time order; kind 0: registered, 1: a series ordered,
        2: a session held (past days only); on one day in that order."""
        events = []
        for patient in self.patients:
            events.append((patient.registered_on, 0, patient.number, 0, 0, 0))
            for s, series in enumerate(patient.series):
                events.append((series.ordered_on, 1, patient.number, s, 0, 0))
                for v, (day, _slot, _chair) in enumerate(series.visits):
                    if day < self.today:
                        events.append((day, 2, patient.number, s, v, 0))
        events.sort()
        for _day, kind, number, s, v, _ in events:
            patient = self.patients[number - 1]
            yield kind, patient, patient.series[s], v

    # --- staff and chairs -----------------------------------------------------------------------

    def _write_staff_and_chairs(self):
        unusable = hash_password(random.SystemRandom().randbytes(24).hex())  # nobody knows it: an admin resets it
        staff = [("nurse", Role.NURSE, "RN", self.chair_count + 1),
                 ("physician", Role.PHYSICIAN, "MD", max(2, math.ceil(self.chair_count / 4))),
                 ("coordinator", Role.COORDINATOR, "", 2)]
        rows, self.staff = [], {}
        for name, role, credentials, count in staff:
            for number in range(1, count + 1):
                row = self._row(StaffUser, username=f"{SCALE_STAFF_PREFIX}{name}-{number:02d}",
                                full_name=f"Demo Scale {name.capitalize()} {number:02d} {DEMO_NAME_MARK}",
                                credentials=credentials, role=role.value, password_hash=unusable,
                                is_active_account=True, must_change_password=True, failed_login_count=0,
                                locked_until=None, password_changed_at=self.now, created_at=self.now,
                                deactivated_at=None)
                rows.append(row)
                self.staff.setdefault(name, []).append(row)
        first_position = (db.session.scalar(select(func.max(Chair.position))) or 0) + 1
        chairs = [self._row(Chair, name=f"Demo scale chair {n:02d}", is_active=True, position=first_position + n)
                  for n in range(self.chair_count)]
        self.chairs = [row["id"] for row in chairs]
        db.session.execute(insert(StaffUser.__table__), rows)
        db.session.execute(insert(Chair.__table__), chairs)
        self._move_sequences()

    def _actor(self, kind, index):
        row = self.staff[kind][index % len(self.staff[kind])]
        return row["id"], row["username"], row["role"]

    # --- rows -----------------------------------------------------------------------------------

    def _row(self, model, **values):
        """Every column of a new row (the ORM's scalar defaults filled in), with the next id."""
        values.setdefault("id", self.next_id[model])
        self.next_id[model] = values["id"] + 1
        for column in model.__table__.columns:
            if column.key not in values:
                default = column.default
                if default is None or not default.is_scalar:
                    values[column.key] = None
                else:
                    values[column.key] = default.arg
        return values

    def _register(self, batch, patient):
        rng, number = self.rng, patient.number
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        legal = f"{given} Demo-{family}"
        mrn = f"{MRN_PREFIX}{number:06d}"
        phone = f"+150355501{number % 100:02d}"  # E.164, as the patient form stores it
        at = local_to_utc(patient.registered_on, SLOTS[0], self.zone) + timedelta(minutes=rng.randrange(480))
        family_key, given_key = identity.family_and_given(legal)
        sex = rng.choice(("female", "male"))
        row = self._row(
            Patient, mrn=mrn, legal_name=legal, search_name=identity.search_key(legal, ""),
            family_key=family_key[:120], given_key=given_key[:120], phone_key=identity.phone_key(phone),
            mrn_key=mrn_key(mrn),
            preferred_name="", date_of_birth=patient.registered_on - timedelta(days=7305 + rng.randrange(365 * 45)),
            sex_at_birth=sex, pregnancy_possible=sex == "female",
            phone=phone, email=f"{given.lower()}.{mrn.lower()}@example.org",
            reminder_channel=rng.choice(("sms", "email")),
            contact_consent_on=patient.registered_on, escort_name=f"Alex Demo-{family}",
            escort_phone=f"+150355501{(number + 50) % 100:02d}", indication=rng.choice(INDICATIONS),
            indication_detail="", failed_trials=rng.randint(2, 6), allergies="", consent_on=patient.registered_on,
            consent_form_version="DEMO-CONSENT-v1", created_at=at, updated_at=at, version=1)
        coordinator = self._actor("coordinator", number)
        row["consent_recorded_by_id"] = coordinator[0]
        patient.row = row
        patient.kg = Decimal(rng.randrange(500, 1200)) / 10
        weight = self._row(PatientWeight, patient_id=row["id"], measured_on=patient.registered_on, kg=patient.kg,
                           recorded_by_id=coordinator[0], recorded_at=at)
        batch.add(Patient, row)
        for word in search_word_rows(row["id"], row["search_name"]):
            batch.add(PatientSearchWord, word)
        batch.add(PatientWeight, weight)
        for action, object_type, object_id in (("patient.created", "patient", row["id"]),
                                               ("patient.weight_added", "patient_weight", weight["id"]),
                                               ("patient.consent_recorded", "patient", row["id"])):
            batch.audit(at, coordinator, action, object_type, object_id, row["id"], {"demo": True})

    def _order(self, batch, patient, series):
        protocol = self.protocols[series.code]
        physician = self._actor("physician", patient.number)
        ordered_at = local_to_utc(series.ordered_on, SLOTS[-1], self.zone)
        last_day = series.visits[-1][0]
        held = [day < self.today for day, _slot, _chair in series.visits]
        stopped = series.stopped_after is not None and held[series.stopped_after]
        status = "stopped" if stopped else "completed" if all(held) else "planned" if not any(held) else "active"
        row = self._row(
            InfusionSeries, patient_id=patient.row["id"], protocol_id=protocol.id, indication=patient.row["indication"],
            dose_mg_per_kg=protocol.dose_mg_per_kg, dose_mg=protocol.dose_mg, planned_count=len(series.visits),
            start_on=series.visits[0][0], preferred_time=SLOTS[patient.slot].strftime("%H:%M"),
            reevaluate_on=last_day + timedelta(days=protocol.reevaluate_after_days)
            if protocol.reevaluate_after_days else None, status=status,
            stop_reason="Stopped by the physician after a review (fictional)." if stopped else "", warnings=[],
            ordered_by_id=physician[0], ordered_at=ordered_at, version=1)
        batch.add(InfusionSeries, row)
        series.row, series.sessions = row, []
        for sequence, (day, slot, chair) in enumerate(series.visits, start=1):
            starts_at = self._start(day, slot)
            status, reason, changed = "scheduled", "", None
            if held[sequence - 1]:
                after_stop = stopped and sequence > series.stopped_after
                status, reason, changed = self._outcome(starts_at, protocol, after_stop)
            visit = self._row(
                InfusionSession, series_id=row["id"], patient_id=patient.row["id"], chair_id=self.chairs[chair],
                sequence=sequence, starts_at=starts_at, ends_at=starts_at + timedelta(minutes=protocol.chair_minutes),
                status=status, status_reason=reason, status_changed_at=changed, version=1)
            batch.add(InfusionSession, visit)
            series.sessions.append(visit)
        batch.audit(ordered_at, physician, "series.ordered", "infusion_series", row["id"], patient.row["id"],
                    {"protocol": protocol.code, "protocol_version": protocol.version,
                     "sessions": len(series.visits), "demo": True})

    def _start(self, day, slot):
        key = (day, slot)
        if key not in self.starts:
            self.starts[key] = local_to_utc(day, SLOTS[slot], self.zone)
        return self.starts[key]

    def _outcome(self, starts_at, protocol, after_stop):
        """(status, reason, changed at) of a past session."""
        if after_stop:
            return "cancelled", "Series stopped (fictional).", starts_at - timedelta(days=2)
        roll = self.rng.random()
        if roll < 0.03:
            return "no_show", "", starts_at + timedelta(minutes=30)
        if roll < 0.06:
            return "cancelled", "Patient unwell (fictional).", starts_at - timedelta(days=1)
        return "discharged", "", starts_at + timedelta(minutes=protocol.chair_minutes - 10)

    def _hold(self, batch, patient, series, index):
        visit = series.sessions[index]
        if visit["status"] != "discharged":
            return
        batch.sessions += 1
        _HeldSession(self, batch, patient, series, visit).write()

    # --- writing --------------------------------------------------------------------------------

    def _flush(self, batch):
        for model in INSERT_ORDER:
            rows = batch.rows[model]
            if rows:
                db.session.execute(insert(model.__table__), rows)
                self.counts[model.__tablename__] += len(rows)
        self._chain(batch.events)
        self._move_sequences()

    def _chain(self, events):
        """Append the batch's events to the audit chain (in time order), from the head as it stands now."""
        if not events:
            return
        head = db.session.execute(select(AuditHead.last_event_id, AuditHead.last_hash)
                                  .where(AuditHead.id == HEAD_ID).with_for_update()).one_or_none()
        last_id, last_hash = head if head else (0, GENESIS)
        events.sort(key=lambda event: event[0])
        link = Linker(self.key)
        rows = []
        for occurred_at, (user_id, username, role), action, object_type, object_id, patient_id, details in events:
            last_id += 1
            values = {"id": last_id, "occurred_at": occurred_at, "user_id": user_id, "username": username,
                      "role": role, "action": action, "object_type": object_type, "object_id": str(object_id),
                      "patient_id": patient_id, "outcome": "ok", "ip": None, "details": canonical_details(details)}
            row_hash = link(last_hash, values)
            rows.append(values | {"prev_hash": last_hash, "row_hash": row_hash})
            last_hash = row_hash
        db.session.execute(insert(AuditEvent.__table__), rows)
        if head is None:
            db.session.execute(insert(AuditHead).values(id=HEAD_ID, last_event_id=last_id, last_hash=last_hash))
        else:
            db.session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID)
                               .values(last_event_id=last_id, last_hash=last_hash))
        self.counts["audit_event"] += len(rows)

    def _move_sequences(self):
        if db.session.get_bind().dialect.name != "postgresql":
            return
        for model in ID_MODELS:
            table = model.__tablename__
            last = self.next_id[model] - 1
            db.session.execute(select(func.setval(func.pg_get_serial_sequence(table, "id"), max(last, 1), last > 0)))


class _Batch:
    def __init__(self):
        self.rows = {model: [] for model in INSERT_ORDER}
        self.events = []
        self.sessions = 0

    def add(self, model, row):
        self.rows[model].append(row)

    def audit(self, at, actor, action, object_type, object_id, patient_id, details):
        self.events.append((at, actor, action, object_type, object_id, patient_id, details))


class _HeldSession:
    """The rows of one session held and discharged, its note last (signed when the physician got to it)."""

    def __init__(self, seed, batch, patient, series, visit):
        self.seed, self.batch, self.patient, self.visit = seed, batch, patient, visit
        self.protocol = seed.protocols[series.code]
        self.nurse = seed._actor("nurse", visit["chair_id"])
        self.physician = seed._actor("physician", patient.number)
        self.parts = {name: [] for name, _model, _many in canonical.PARTS}
        self.scale_answers = {}

    def add(self, name, model, **values):
        row = self.seed._row(model, session_id=self.visit["id"], **values)
        self.batch.add(model, row)
        self.parts[name].append(row)
        return row

    def audit(self, at, action, details=None, actor=None):
        self.batch.audit(at, actor or self.nurse, action, "infusion_session", self.visit["id"],
                         self.patient.row["id"], details or {})

    def write(self):
        start, seed, rng = self.visit["starts_at"], self.seed, self.seed.rng
        nurse_id, version = self.nurse[0], seed.policy_version
        self.audit(start - timedelta(minutes=10), "session.checked_in", {"status": "checked_in"})
        checklist_at = start + timedelta(minutes=5)
        self.add("checklist", ChecklistResponse, systolic=rng.randint(112, 138), diastolic=rng.randint(70, 88),
                 heart_rate=rng.randint(60, 88), spo2=rng.randint(96, 99), temperature_c=Decimal("36.7"),
                 respiratory_rate=14, vitals_taken_at=checklist_at, weight_kg=self.patient.kg, medication_changes=[],
                 new_diagnoses=False,
                 pregnancy_status="test_negative" if self.patient.row["pregnancy_possible"] else None,
                 cardio_cerebrovascular_event=False, psychosis_symptoms=False, mania_symptoms=False,
                 substance_use_in_window=False,
                 vascular_contraindication=False if self.protocol.route == "esketamine" else None,
                 last_solid_food_at=checklist_at - timedelta(hours=8),
                 last_clear_liquid_at=checklist_at - timedelta(hours=3), escort_name=self.patient.row["escort_name"],
                 escort_phone=self.patient.row["escort_phone"], escort_arrangement=None, consent_reconfirmed=True,
                 suicide_risk="low", willingness="yes",
                 intention="To feel more like myself again.", policy_version=version, outcome="cleared", findings=[],
                 evaluated_at=checklist_at, updated_at=checklist_at, updated_by_id=nurse_id, version=1)
        self.scales(checklist_at, [rng.randint(0, 2) for _ in range(8)] + [0], [rng.randint(0, 2) for _ in range(7)])
        self.audit(checklist_at, "checklist.saved", {"outcome": "cleared"})
        self.audit(start + timedelta(minutes=10), "session.cleared", {"status": "cleared"})
        dose_at = start + timedelta(minutes=15)
        ended_at = self.dose(dose_at)
        readings = self.readings(dose_at)
        discharged_at = self.visit["status_changed_at"]
        self.add("discharge", DischargeRecord, moaas=5, escort_present=True, instructions_given=True,
                 condition="Alert and oriented, steady, back to baseline; left with their escort (fictional).",
                 discharged_at=discharged_at, discharged_by_id=nurse_id, policy_version=version)
        self.audit(discharged_at, "discharge.recorded", {"status": "discharged"})
        if rng.random() < 0.03:
            self.add("adverse_events", AdverseEvent, kind="nausea", other_kind="", onset_at=ended_at,
                     severity="mild", intervention="Ondansetron offered (fictional).", drug_given="Ondansetron 4 mg",
                     outcome="resolved", alert_id=None, recorded_at=discharged_at, recorded_by_id=nurse_id)
        self.note(readings, discharged_at)

    def scales(self, at, phq9, gad7):
        """The checklist's PHQ-9 (difficulty 1) and GAD-7, as score rows of the session."""
        self.scale_answers = {"phq9_items": phq9, "phq9_difficulty": 1, "gad7_items": gad7}
        for instrument, items, difficulty, scored in ((PHQ9, phq9, 1, score_phq9(phq9, 1)),
                                                      (GAD7, gad7, None, score_gad7(gad7))):
            self.batch.add(Score, self.seed._row(
                Score, patient_id=self.patient.row["id"], session_id=self.visit["id"], instrument=instrument,
                items=items, difficulty=difficulty, total=scored.total, band=scored.band, taken_at=at,
                source=CHECKLIST, recorded_by_id=self.nurse[0], recorded_at=at))

    def dose(self, at):
        route, seed = self.protocol.route, self.seed
        if route == "iv":
            per_kg = self.protocol.dose_mg_per_kg
            dose_mg = (per_kg * self.patient.kg).quantize(Decimal("0.1"))
            minutes, weight = self.protocol.min_infusion_minutes, self.patient.kg
        else:
            per_kg, dose_mg, minutes, weight = None, Decimal(self.protocol.dose_mg), None, None
        ended_at = at + timedelta(minutes=minutes or 0)
        self.add("dose", DoseRecord, mg_per_kg=per_kg, weight_kg=weight, dose_mg=dose_mg, infusion_minutes=minutes,
                 change_reason="", changed_by_id=None, dose_order_id=None, dose_started_at=at,
                 infusion_ended_at=ended_at, policy_version=seed.policy_version, recorded_at=at,
                 recorded_by_id=self.nurse[0])
        self.audit(at, "dose.started", {"status": "infusing"})
        product, unit = PRODUCTS[route]
        drawn = (dose_mg / unit).to_integral_value(rounding=ROUND_CEILING) * unit
        self.add("controlled_substance", ControlledSubstanceEntry, product=product, lot="DEMO-LOT-0001",
                 expiry_on=(at + timedelta(days=400)).date(), drawn_mg=drawn, given_mg=dose_mg,
                 wasted_mg=drawn - dose_mg, shortfall_reason="", recorded_by_id=self.nurse[0],
                 witness_id=self.physician[0], recorded_at=at)
        self.audit(at, "controlled_substance.recorded")
        self.audit(ended_at, "infusion.ended", {"status": "recovery"})
        return ended_at

    def readings(self, dose_at):
        rng, rows = self.seed.rng, []
        alert_at = rng.randrange(1, READINGS) if rng.random() < 0.02 else None
        for number in range(READINGS):
            at = dose_at + timedelta(minutes=READING_MINUTES * number)
            systolic = 184 if number == alert_at else rng.randint(112, 142)
            row = self.add("vitals", VitalSign, taken_at=at, systolic=systolic, diastolic=rng.randint(70, 92),
                           heart_rate=rng.randint(60, 95), spo2=rng.randint(95, 99), moaas=rng.choice((3, 4, 4, 5)),
                           recorded_by_id=self.nurse[0], recorded_at=at)
            rows.append(row)
            self.audit(at, "vitals.recorded", {"reading": row["id"]})
            if number == alert_at:
                self.add("alerts", InChairAlert, vital_sign_id=row["id"], code="ALERT_BLOOD_PRESSURE",
                         message="Blood pressure 184 systolic: above the alert threshold.", raised_at=at,
                         acknowledged_at=at + timedelta(minutes=2), acknowledged_by_id=self.physician[0],
                         action="continue", note="Rechecked after 5 minutes, settling (fictional).", drug_given="")
                self.audit(at + timedelta(minutes=2), "alert.acknowledged", {"action": "continue"},
                           actor=self.physician)
        return rows

    def note(self, readings, discharged_at):
        seed = self.seed
        signed_at = discharged_at + timedelta(hours=seed.rng.randint(1, 48))
        signed = signed_at <= seed.now
        physician_id = self.physician[0]
        note = seed._row(
            SessionNote, session_id=self.visit["id"], status="signed" if signed else "complete", eye_mask=True,
            copied_from_session_id=None, dissociation_clinician=seed.rng.randint(2, 7),
            dissociation_patient=seed.rng.randint(2, 8), created_at=discharged_at, created_by_id=self.nurse[0],
            updated_at=discharged_at, updated_by_id=self.nurse[0], completed_at=discharged_at,
            completed_by_id=self.nurse[0], signed_at=signed_at if signed else None,
            signed_by_id=physician_id if signed else None, signer_name="", signer_credentials="",
            content_hash="", signed_content="", version=1, **NOTE_TEXT)
        self.audit(discharged_at, "note.completed", {"version": 1})
        if signed:
            signer = next(row for row in seed.staff["physician"] if row["id"] == physician_id)
            note["signer_name"], note["signer_credentials"] = signer["full_name"], signer["credentials"]
            note["signed_content"], note["content_hash"] = self.canonical(note)
            self.audit(signed_at, "note.signed", {"sha256": note["content_hash"]}, actor=self.physician)
        self.batch.add(SessionNote, note)

    def canonical(self, note):
        """(canonical text, SHA-256) of the rows just built, by the product's own serializer (on their values)."""
        parts = {name: self.parts[name] if many else next(iter(self.parts[name]), None)
                 for name, _model, many in canonical.PARTS}
        parts["checklist"] = {**parts["checklist"], **self.scale_answers}
        data = canonical.canonical_bytes(canonical.serialize_values(self.visit, note, parts))
        return data.decode("utf-8"), canonical.sha256_hex(data)
