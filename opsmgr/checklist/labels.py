"""How checklist answers read on the page: labels for the conflict table and the previous session."""
from wtforms import SelectChoice

from opsmgr.core.templating import clinic_time
from opsmgr.patients.models import MedicationClass

PREGNANCY = [SelectChoice("test_negative", "Test today: negative"),
             SelectChoice("reported_not_pregnant", "No test; the patient reports not being pregnant"),
             SelectChoice("positive", "Positive (test or known pregnancy)"),
             SelectChoice("unknown", "Unknown")]
LABELS = {
    "pregnancy_status": {c.value: c.label for c in PREGNANCY},
    "med_class": {m.value: m.label for m in MedicationClass},
}

#: Labels for the conflict table.
ANSWER_LABELS = {
    "systolic": "Systolic", "diastolic": "Diastolic", "heart_rate": "Heart rate", "spo2": "SpO2",
    "temperature_c": "Temperature (°C)", "respiratory_rate": "Respiratory rate",
    "vitals_taken_at": "Vitals taken at", "weight_kg": "Weight (kg)", "medication_changes": "Medication changes",
    "new_diagnoses": "New diagnoses", "pregnancy_status": "Pregnancy status",
    "cardio_cerebrovascular_event": "Heart or stroke event", "psychosis_symptoms": "Psychosis symptoms",
    "mania_symptoms": "Mania symptoms", "substance_use_in_window": "Alcohol or drugs in 24 h",
    "vascular_contraindication": "Vascular contraindication", "last_solid_food_at": "Last solid food",
    "last_clear_liquid_at": "Last clear liquid", "escort_name": "Escort's name", "escort_phone": "Escort's phone",
    "escort_arrangement": "No escort today: the way home",
    "consent_reconfirmed": "Consent reconfirmed", "phq9_items": "PHQ-9 items", "phq9_difficulty": "PHQ-9 difficulty",
    "gad7_items": "GAD-7 items", "suicide_risk": "Suicide-risk screen", "willingness": "Willingness",
    "intention": "Intention",
}


def shown(name, value):
    """A stored or typed answer as text, for the conflict table and the previous session's answers."""
    if value is None or value == "":
        return "(not answered)"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if name.endswith("_at"):
        return clinic_time(value)
    if name == "medication_changes":
        return "; ".join(f"{c['name']} ({LABELS['med_class'].get(c['med_class'], c['med_class'])}) {c['change']}"
                         for c in value) or "No changes"
    if name.endswith("_items"):
        return ", ".join("–" if item is None else str(item) for item in value)
    if name == "pregnancy_status":
        return LABELS["pregnancy_status"].get(value, value)
    return str(value)
