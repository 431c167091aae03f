"""Registering someone who may already be a patient: who matches, and the refusal that shows them."""
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, or_, select

from opsmgr.audit.service import record
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.patients.models import Patient, display_name, mrn_key
from opsmgr.rules import identity
from opsmgr.rules.findings import Problem

DUPLICATE_MRN = "A patient with this MRN already exists."
POSSIBLE_DUPLICATE = "This may be a patient who is already registered. Check the records listed before going on."

#: Why a record matches, in the order shown.
REASONS = {"mrn": "Same MRN", "name_dob": "Same legal name and date of birth", "phone": "Same phone number",
           "email": "Same email"}


@dataclass(frozen=True)
class Match:
    """An existing patient who may be the one being registered; contact shown only in part."""

    patient_id: int
    mrn: str
    legal_name: str
    preferred_name: str
    date_of_birth: date
    phone_hint: str
    email_hint: str
    reasons: tuple[str, ...]

    @property
    def display_name(self):
        return display_name(self.legal_name, self.preferred_name)

    @property
    def reason_labels(self):
        return [REASONS[reason] for reason in REASONS if reason in self.reasons]


class PossibleDuplicate(DomainError):
    """Registration stopped to show existing records that match. A taken MRN cannot be confirmed past;
    the others can, by naming the records the person is different from."""

    def __init__(self, matches):
        self.matches = tuple(matches)
        self.mrn_taken = any("mrn" in match.reasons for match in self.matches)
        super().__init__([Problem("mrn", DUPLICATE_MRN) if self.mrn_taken else Problem(None, POSSIBLE_DUPLICATE)],
                         audited=True)

    @property
    def different_from(self):
        """The value of the "different person" button: the ids of the records shown."""
        return ",".join(str(match.patient_id) for match in self.matches)


def find_matches(values):
    """Patients with the same MRN, legal name and date of birth, phone number or email, by family name."""
    mrn, born = mrn_key(values["mrn"]), values["date_of_birth"]
    phone, email = identity.phone_key(values.get("phone")), identity.email_key(values.get("email"))
    same = [Patient.mrn_key == mrn, Patient.date_of_birth == born]
    same += [Patient.phone_key == phone] if phone else []
    same += [func.lower(Patient.email) == email] if email else []
    rows = db.session.execute(
        select(Patient.id, Patient.mrn, Patient.legal_name, Patient.preferred_name, Patient.date_of_birth,
               Patient.phone, Patient.email, Patient.phone_key, Patient.mrn_key)
        .where(or_(*same)).order_by(Patient.family_key, Patient.given_key, Patient.id)).all()
    name = identity.same_name_key(values["legal_name"])
    matches = []
    for row in rows:
        reasons = tuple(reason for reason, hit in (
            ("mrn", row.mrn_key == mrn),
            ("name_dob", row.date_of_birth == born and identity.same_name_key(row.legal_name) == name),
            ("phone", bool(phone) and row.phone_key == phone),
            ("email", bool(email) and identity.email_key(row.email) == email),
        ) if hit)
        if reasons:
            matches.append(Match(row.id, row.mrn, row.legal_name, row.preferred_name, row.date_of_birth,
                                 identity.phone_hint(row.phone), identity.email_hint(row.email), reasons))
    return matches


def refuse_unconfirmed(matches, *, different_from, actor, now):
    """Stop a registration while any match is not one the user said is a different person (a taken MRN,
    always); the records shown are audited by id only."""
    if not any("mrn" in match.reasons or match.patient_id not in different_from for match in matches):
        return
    record("patient.possible_duplicates_shown", actor=actor, now=now,
           details={"matches": len(matches), "patient_ids": [match.patient_id for match in matches]})
    raise PossibleDuplicate(matches)
