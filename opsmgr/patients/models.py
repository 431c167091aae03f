"""The patient record and its dated clinical background."""
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Numeric, String, delete, event, insert
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opsmgr.core.db import EnteredInError, UTCDateTime, entered_in_error_check
from opsmgr.extensions import db
from opsmgr.rules import identity


class Choice(StrEnum):
    @property
    def label(self):
        return LABELS.get(self.value, self.value.replace("_", " ").capitalize())

    @classmethod
    def choices(cls):
        return [(member.value, member.label) for member in cls]


class SexAtBirth(Choice):
    FEMALE = "female"
    MALE = "male"
    INTERSEX = "intersex"
    UNKNOWN = "unknown"


class ReminderChannel(Choice):
    EMAIL = "email"
    SMS = "sms"
    NONE = "none"


class Indication(Choice):
    TRD = "trd"
    MDD = "mdd"
    PTSD = "ptsd"
    ANXIETY = "anxiety"
    CHRONIC_PAIN = "chronic_pain"
    OTHER = "other"


class MedicationClass(Choice):
    BENZODIAZEPINE = "benzodiazepine"
    LAMOTRIGINE = "lamotrigine"
    MAOI = "maoi"
    PSYCHOSTIMULANT = "psychostimulant"
    OPIOID = "opioid"
    SEDATIVE_HYPNOTIC = "sedative_hypnotic"
    SSRI_SNRI = "ssri_snri"
    ANTIPSYCHOTIC = "antipsychotic"
    OTHER = "other"


class Contraindication(Choice):
    PSYCHOSIS = "psychosis"
    UNCONTROLLED_HYPERTENSION = "uncontrolled_hypertension"
    CARDIAC_DISEASE = "cardiac_disease"
    VASCULAR = "vascular"
    PREGNANCY = "pregnancy"
    SUBSTANCE_USE = "substance_use"
    RAISED_ICP = "raised_icp"
    HYPERTHYROIDISM = "hyperthyroidism"
    PRIOR_KETAMINE_REACTION = "prior_ketamine_reaction"
    OTHER = "other"


LABELS = {
    "sms": "SMS", "none": "No reminders", "trd": "Treatment-resistant depression",
    "mdd": "Major depression", "ptsd": "PTSD", "chronic_pain": "Chronic pain",
    "maoi": "MAOI", "ssri_snri": "SSRI/SNRI", "sedative_hypnotic": "Sedative-hypnotic",
    "psychosis": "Psychosis or schizophrenia", "uncontrolled_hypertension": "Uncontrolled hypertension",
    "vascular": "Aneurysmal vascular disease, AVM or intracerebral haemorrhage",
    "substance_use": "Substance use disorder", "raised_icp": "Raised intracranial pressure",
    "prior_ketamine_reaction": "Prior ketamine reaction",
}


def _check(column, enum):
    values = ", ".join(f"'{member.value}'" for member in enum)
    return CheckConstraint(f"{column} IN ({values})", name=f"{column}_known")


def display_name(legal_name, preferred_name):
    """How staff see a patient's name: the legal name, with the preferred one after it when it differs."""
    if preferred_name and preferred_name != legal_name:
        return f"{legal_name} ({preferred_name})"
    return legal_name


class Patient(db.Model):
    __tablename__ = "patient"
    __table_args__ = (
        _check("sex_at_birth", SexAtBirth),
        _check("reminder_channel", ReminderChannel),
        _check("indication", Indication),
        CheckConstraint("failed_trials >= 0", name="failed_trials_positive"),
        Index("ix_patient_family_given", "family_key", "given_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The clinic's medical record number.
    mrn: Mapped[str] = mapped_column(String(32), unique=True)
    legal_name: Mapped[str] = mapped_column(String(120))
    #: The words of the legal and preferred names, folded (identity.search_key), for an order-free search.
    search_name: Mapped[str] = mapped_column(String(250), index=True)
    #: The folded family and given names (identity.family_and_given): the list's sort order.
    family_key: Mapped[str] = mapped_column(String(120), default="", server_default="")
    given_key: Mapped[str] = mapped_column(String(120), default="", server_default="")
    #: The MRN in lower case: an MRN is found whatever the case it is typed in, through an index.
    mrn_key: Mapped[str] = mapped_column(String(32), default="", server_default="", index=True)
    #: The phone number's last ten digits (identity.phone_key), to find a patient registered twice.
    phone_key: Mapped[str] = mapped_column(String(10), default="", server_default="", index=True)
    preferred_name: Mapped[str] = mapped_column(String(120), default="")
    date_of_birth: Mapped[date] = mapped_column(Date, index=True)
    sex_at_birth: Mapped[str] = mapped_column(String(10))
    #: Whether pregnancy is possible, so the checklist asks for status or a test.
    pregnancy_possible: Mapped[bool] = mapped_column(default=False)
    phone: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    reminder_channel: Mapped[str] = mapped_column(String(10), default=ReminderChannel.NONE.value)
    contact_consent_on: Mapped[date | None] = mapped_column(Date)
    #: The patient texted STOP (or a carrier opt-out word): no text is sent until START. Takes effect at once.
    sms_opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escort_name: Mapped[str] = mapped_column(String(120), default="")
    escort_phone: Mapped[str] = mapped_column(String(40), default="")
    indication: Mapped[str] = mapped_column(String(20))
    indication_detail: Mapped[str] = mapped_column(String(200), default="")
    #: Adequate antidepressant trials that failed; two or more is treatment-resistant depression.
    failed_trials: Mapped[int] = mapped_column(default=0)
    allergies: Mapped[str] = mapped_column(String(500), default="")
    consent_on: Mapped[date | None] = mapped_column(Date)
    consent_form_version: Mapped[str] = mapped_column(String(40), default="")
    consent_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Optimistic lock: an edit based on an older version is refused, never silently applied.
    version: Mapped[int] = mapped_column(default=1)

    weights: Mapped[list["PatientWeight"]] = relationship(
        back_populates="patient", order_by="PatientWeight.measured_on.desc()")
    medications: Mapped[list["PatientMedication"]] = relationship(
        back_populates="patient", order_by="PatientMedication.started_on.desc()")
    contraindications: Mapped[list["PatientContraindication"]] = relationship(
        back_populates="patient", order_by="PatientContraindication.noted_on.desc()")

    __mapper_args__ = {"version_id_col": version}

    @property
    def display_name(self):
        return display_name(self.legal_name, self.preferred_name)

    @property
    def is_treatment_resistant(self):
        return self.failed_trials >= 2

    def refresh_keys(self):
        """Derive the search, sort and phone keys from the names and phone as they are now."""
        family, given = identity.family_and_given(self.legal_name)
        keys = {"search_name": identity.search_key(self.legal_name, self.preferred_name or ""),
                "family_key": family[:120], "given_key": given[:120], "phone_key": identity.phone_key(self.phone),
                "mrn_key": mrn_key(self.mrn)}
        for name, value in keys.items():
            if getattr(self, name) != value:
                setattr(self, name, value)


def mrn_key(mrn):
    """An MRN as the patient.mrn_key column holds it, and as a search compares it."""
    return (mrn or "").strip().lower()


@event.listens_for(Patient, "before_insert")
@event.listens_for(Patient, "before_update")
def _keep_keys_current(mapper, connection, patient):
    # Every write path (registration, edit, merge, import) passes here, so no caller maintains the keys.
    patient.refresh_keys()


#: Binary order on PostgreSQL, so that the words starting with "lind" are exactly those from "lind" up to
#: "line" whatever the database's locale (SQLite compares text bytewise already).
SEARCH_WORD = String(250).with_variant(String(250, collation="C"), "postgresql")


class PatientSearchWord(db.Model):
    """One word of a patient's search key (identity.search_key), so that a search finds the names holding a
    word that starts with what was typed through an index range, instead of reading every patient's name
    (``LIKE '% lind%'`` cannot use an index: it read all 20,000 names of a chain for each search)."""
    __tablename__ = "patient_search_word"

    word: Mapped[str] = mapped_column(SEARCH_WORD, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), primary_key=True, index=True)


def search_word_rows(patient_id, search_name):
    """The patient_search_word rows of a search key: each of its words once."""
    return [{"word": word, "patient_id": patient_id} for word in dict.fromkeys(search_name.split())]


@event.listens_for(Patient, "after_insert")
@event.listens_for(Patient, "after_update")
def _keep_words_current(mapper, connection, patient):
    # In the same flush as the name it indexes: a search never sees a name without its words.
    if not db.inspect(patient).attrs.search_name.history.has_changes():
        return
    table = PatientSearchWord.__table__
    connection.execute(delete(table).where(table.c.patient_id == patient.id))
    rows = search_word_rows(patient.id, patient.search_name)
    if rows:
        connection.execute(insert(table), rows)


class PatientWeight(EnteredInError, db.Model):
    __tablename__ = "patient_weight"
    __table_args__ = (CheckConstraint("kg >= 25 AND kg <= 350", name="kg_plausible"), entered_in_error_check())

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    measured_on: Mapped[date] = mapped_column(Date)
    kg: Mapped[Decimal] = mapped_column(Numeric(5, 1))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship(back_populates="weights")

    @property
    def lb(self):
        return (self.kg * Decimal("2.20462")).quantize(Decimal("0.1"))


class PatientMedication(EnteredInError, db.Model):
    __tablename__ = "patient_medication"
    __table_args__ = (_check("med_class", MedicationClass), entered_in_error_check())

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    med_class: Mapped[str] = mapped_column(String(20))
    started_on: Mapped[date | None] = mapped_column(Date)
    stopped_on: Mapped[date | None] = mapped_column(Date)
    #: Who added it (None for entries made before authors were kept: only a physician marks those in error).
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship(back_populates="medications")


class PatientContraindication(EnteredInError, db.Model):
    __tablename__ = "patient_contraindication"
    __table_args__ = (_check("kind", Contraindication), entered_in_error_check())

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str] = mapped_column(String(200), default="")
    noted_on: Mapped[date] = mapped_column(Date)
    #: Who recorded it (None for entries made before authors were kept).
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship(back_populates="contraindications")
