"""How far the checklist is answered, per section, and where the first open item is (pure; for the page).

An item is open while the saved evaluation says it is not answered (`<ITEM>_UNANSWERED`, or no escort at
all); before the first save every item is open. Items the form does not ask (pregnancy status for a
patient who cannot be pregnant, the vascular question off esketamine) are not counted.
"""
from dataclasses import dataclass

#: (section anchor, title, ((item, form field the item's answer goes in), ...)), in the form's order.
SECTIONS = (
    ("section-vitals", "Vital signs", (("vitals", "systolic"),)),
    ("section-weight", "Weight", (("weight", "weight_kg"),)),
    ("section-recheck", "Contraindication recheck", (
        ("medication_changes", "medication_answer"), ("new_diagnoses", "new_diagnoses"),
        ("pregnancy_status", "pregnancy_status"), ("cardio_cerebrovascular_event", "cardio_cerebrovascular_event"),
        ("psychosis_symptoms", "psychosis_symptoms"), ("mania_symptoms", "mania_symptoms"),
        ("substance_use_in_window", "substance_use_in_window"),
        ("vascular_contraindication", "vascular_contraindication"))),
    ("section-fasting", "Fasting", (("last_solid_food_at", "last_solid_food_at"),
                                    ("last_clear_liquid_at", "last_clear_liquid_at"))),
    ("section-escort", "Escort", (("escort", "escort_source"),)),
    ("section-consent", "Consent", (("consent_reconfirmed", "consent_reconfirmed"),)),
    ("section-phq9", "PHQ-9", (("phq9", "phq9_1"),)),
    ("section-gad7", "GAD-7", (("gad7", "gad7_1"),)),
    ("section-suicide-risk", "Suicide-risk screen", (("suicide_risk", "suicide_risk"),)),
    ("section-wish", "The patient's own wish", (("willingness", "willingness"),)),
)
#: The form field of each missing vital sign, for a jump straight to the first one missing.
VITAL_ANCHORS = {"taken_at": "vitals_taken_at"}


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    total: int
    open: int


@dataclass(frozen=True)
class Progress:
    answered: int
    total: int
    sections: tuple
    #: The form field id of the first item not answered yet, in the form's order; None when all are answered.
    first_open: str | None

    @property
    def summary(self):
        return f"{self.answered} of {self.total} item{'s' if self.total != 1 else ''} answered"


def open_items(evaluation):
    """item -> anchor of the form field to answer it, for every item the saved evaluation has open.
    None before the first save (everything is open)."""
    if evaluation is None:
        return None
    found = {}
    for finding in evaluation.unanswered:
        item = finding.values.get("item", "")
        anchor = None
        if item == "vitals" and finding.values.get("missing"):
            first = finding.values["missing"].split(", ")[0]
            anchor = VITAL_ANCHORS.get(first, first)
        if item == "phq9_difficulty":  # asked only once the nine items show a problem: part of the PHQ-9 item
            item, anchor = "phq9", found.get("phq9", "phq9_difficulty")
        found[item] = anchor
    if any(finding.code == "ESCORT_MISSING" for finding in evaluation.findings):
        found["escort"] = None
    return found


def checklist_progress(evaluation, fields):
    """The progress of the checklist whose form has `fields` (names), from the saved `evaluation`."""
    still_open = open_items(evaluation)
    sections, first_open, answered, total = [], None, 0, 0
    for anchor, title, items in SECTIONS:
        asked = [(item, field) for item, field in items if field in fields]
        if not asked:
            continue
        open_here = [(item, field) for item, field in asked if still_open is None or item in still_open]
        if open_here and first_open is None:
            item, field = open_here[0]
            first_open = (still_open or {}).get(item) or field
        sections.append(Section(anchor, title, len(asked), len(open_here)))
        total += len(asked)
        answered += len(asked) - len(open_here)
    return Progress(answered, total, tuple(sections), first_open)
