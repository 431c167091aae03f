"""The pre-session checklist: the nurse's answers in, findings out (clinical reference, rules 1–7, 16).

Every item must be answered: a missing answer is an absolute `<ITEM>_UNANSWERED` finding, never
a default. Thresholds come from the ClinicalPolicy; the overall result is `findings.outcome_of`.
Findings are listed in checklist order.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from opsmgr.rules import screening, wording
from opsmgr.rules.findings import Finding, Severity, is_explained, unanswered
from opsmgr.rules.policy import ClinicalPolicy
from opsmgr.rules.severities import apply_severities

ROUTES = frozenset({"iv", "esketamine"})
MEDICATION_CLASSES = frozenset({
    "benzodiazepine", "lamotrigine", "maoi", "psychostimulant", "opioid", "sedative_hypnotic",
    "ssri_snri", "antipsychotic", "other",
})
#: A start or stop of these needs a physician (rule 6; ketwell, ketwellalaska, Spravato form §2.3, §3).
FLAGGED_MEDICATION_CLASSES = frozenset({
    "benzodiazepine", "lamotrigine", "maoi", "psychostimulant", "opioid", "sedative_hypnotic",
})
MEDICATION_CHANGES = frozenset({"started", "stopped"})
PREGNANCY_STATUSES = frozenset({"test_negative", "reported_not_pregnant", "positive", "unknown"})
SUICIDE_RISKS = frozenset({"negative", "low", "moderate", "high"})
#: Screen outcomes that block the start and call the physician (rule 7; the mapping is [INF]).
WILLINGNESS = frozenset({"yes", "unsure", "no"})
VITAL_FIELDS = ("systolic", "diastolic", "heart_rate", "spo2", "temperature_c", "respiratory_rate", "taken_at")


def _check_choice(value, allowed, name, *, optional=True):
    if value is None and optional:
        return
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")


@dataclass(frozen=True)
class Vitals:
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    spo2: int | None
    temperature_c: float | None
    respiratory_rate: int | None
    taken_at: datetime | None


@dataclass(frozen=True)
class MedicationChange:
    name: str
    med_class: str
    change: str

    def __post_init__(self):
        _check_choice(self.med_class, MEDICATION_CLASSES, "med_class", optional=False)
        _check_choice(self.change, MEDICATION_CHANGES, "change", optional=False)


@dataclass(frozen=True)
class ChecklistAnswers:
    route: str
    vitals: Vitals | None
    weight_kg: float | None
    #: None is "not asked yet"; an empty tuple is "no changes since the last visit".
    medication_changes: tuple[MedicationChange, ...] | None
    new_diagnoses: bool | None
    pregnancy_possible: bool | None
    pregnancy_status: str | None
    cardio_cerebrovascular_event: bool | None
    psychosis_symptoms: bool | None
    mania_symptoms: bool | None
    substance_use_in_window: bool | None
    #: Esketamine only: aneurysmal vascular disease, arteriovenous malformation or intracerebral haemorrhage.
    vascular_contraindication: bool | None
    last_solid_food_at: datetime | None
    last_clear_liquid_at: datetime | None
    escort_name: str
    escort_phone: str
    consent_on_file: bool
    consent_reconfirmed: bool | None
    phq9_items: tuple[int | None, ...] | None
    phq9_difficulty: int | None
    gad7_items: tuple[int | None, ...] | None
    suicide_risk: str | None
    willingness: str | None
    intention: str
    #: "No escort today": how the patient gets home instead (None: an escort, or not answered).
    escort_arrangement: str | None = None

    def __post_init__(self):
        _check_choice(self.route, ROUTES, "route", optional=False)
        _check_choice(self.pregnancy_status, PREGNANCY_STATUSES, "pregnancy_status")
        _check_choice(self.suicide_risk, SUICIDE_RISKS, "suicide_risk")
        _check_choice(self.willingness, WILLINGNESS, "willingness")


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def _vitals_findings(vitals, now, policy):
    if vitals is None:
        return [unanswered("vitals", "pre-dose vital signs")]
    missing = [name for name in VITAL_FIELDS if getattr(vitals, name) is None]
    found = [unanswered("vitals", "pre-dose vital signs", missing=", ".join(missing))] if missing else []
    if vitals.taken_at is not None:
        found += _vitals_age(vitals.taken_at, now, policy)
    if vitals.systolic is not None and vitals.diastolic is not None:
        found += _blood_pressure(vitals.systolic, vitals.diastolic, policy)
    if vitals.heart_rate is not None and not policy.hr_low <= vitals.heart_rate <= policy.hr_high:
        found.append(Finding("HEART_RATE_OUT_OF_RANGE", Severity.NEEDS_PHYSICIAN,
                             f"{wording.heart_rate_outside(vitals.heart_rate, policy.hr_low, policy.hr_high)}. "
                             "A physician must review before the dose.",
                             {"heart_rate": vitals.heart_rate, "low": policy.hr_low, "high": policy.hr_high}))
    if vitals.spo2 is not None and vitals.spo2 < policy.spo2_min:
        found.append(Finding("SPO2_LOW", Severity.NEEDS_PHYSICIAN,
                             f"{wording.spo2_below(vitals.spo2, policy.spo2_min)}. "
                             "A physician must review before the dose.",
                             {"spo2": vitals.spo2, "minimum": policy.spo2_min}))
    return found


def _vitals_age(taken_at, now, policy):
    """Vitals are stale one instant after vitals_max_age_minutes (rule 1); exactly the limit is fresh."""
    age = now - taken_at
    values = {"age_minutes": _minutes(age), "max_age_minutes": policy.vitals_max_age_minutes}
    if age < timedelta(0):
        return [Finding("VITALS_TIME_IN_FUTURE", Severity.ABSOLUTE,
                        "The vital signs are timed in the future: correct the time or take a new set.", values)]
    if age > timedelta(minutes=policy.vitals_max_age_minutes):
        return [Finding("VITALS_STALE", Severity.ABSOLUTE,
                        f"The vital signs are {_minutes(age)} minutes old (limit {policy.vitals_max_age_minutes}): "
                        "take a new set.", values)]
    return []


def _blood_pressure(systolic, diastolic, policy):
    """Hard gate at SBP ≥ 180 or DBP ≥ 100 (Swiss label, §1.6); soft above 140/90 (Spravato, §2.2)."""
    if systolic >= policy.bp_hard_systolic or diastolic >= policy.bp_hard_diastolic:
        bp = wording.blood_pressure(systolic, diastolic, policy.bp_hard_systolic, policy.bp_hard_diastolic,
                                    inclusive=True)
        return [Finding("BP_HARD_GATE", Severity.BLOCK, f"{bp}. Do not start; call the physician.",
                        {"systolic": systolic, "diastolic": diastolic, "hard_systolic": policy.bp_hard_systolic,
                         "hard_diastolic": policy.bp_hard_diastolic})]
    if systolic > policy.bp_soft_systolic or diastolic > policy.bp_soft_diastolic:
        bp = wording.blood_pressure(systolic, diastolic, policy.bp_soft_systolic, policy.bp_soft_diastolic,
                                    inclusive=False)
        return [Finding("BP_SOFT_GATE", Severity.NEEDS_PHYSICIAN, f"{bp}. A physician must review before the dose.",
                        {"systolic": systolic, "diastolic": diastolic, "soft_systolic": policy.bp_soft_systolic,
                         "soft_diastolic": policy.bp_soft_diastolic})]
    return []


def _medication_findings(changes):
    if changes is None:
        return [unanswered("medication_changes", "medications started or stopped since the last visit")]
    found = []
    for change in changes:
        values = {"name": change.name, "med_class": change.med_class, "change": change.change}
        if change.med_class in FLAGGED_MEDICATION_CLASSES:
            found.append(Finding("MEDICATION_CHANGE_FLAGGED", Severity.NEEDS_PHYSICIAN,
                                 f"{change.name} ({change.med_class.replace('_', '-')}) was {change.change}: "
                                 "a physician must review before the dose.", values))
        else:
            found.append(Finding("MEDICATION_CHANGE", Severity.INFO,
                                 f"{change.name} ({change.med_class.replace('_', '-')}) was {change.change}.", values))
    return found


@dataclass(frozen=True)
class _Question:
    field: str
    question: str
    code: str
    severity: Severity
    message: str


#: The yes/no contraindication recheck (rule 5, §1.6); "yes" gives the finding.
RECHECK_QUESTIONS = (
    _Question("new_diagnoses", "any new diagnosis since the last visit", "NEW_DIAGNOSES",
              Severity.NEEDS_PHYSICIAN, "New diagnosis since the last visit: a physician must review before the dose."),
    _Question("cardio_cerebrovascular_event", "any new heart or stroke event", "CARDIO_CEREBROVASCULAR_EVENT",
              Severity.NEEDS_PHYSICIAN, "New heart or stroke event: a physician must review before the dose."),
    _Question("psychosis_symptoms", "any psychosis symptoms", "PSYCHOSIS_SYMPTOMS",
              Severity.ABSOLUTE, "Psychosis symptoms: no dose today."),
    _Question("mania_symptoms", "any mania symptoms", "MANIA_SYMPTOMS",
              Severity.NEEDS_PHYSICIAN, "Mania symptoms: a physician must review before the dose."),
    _Question("substance_use_in_window", "alcohol or drug use in the last {hours} hours", "SUBSTANCE_USE_RECENT",
              Severity.NEEDS_PHYSICIAN,
              "Alcohol or drug use in the last {hours} hours: a physician must review before the dose."),
)


def _recheck_findings(answers, policy):
    hours = policy.substance_window_hours
    found = []
    for q in RECHECK_QUESTIONS:
        answer = getattr(answers, q.field)
        if answer is None:
            found.append(unanswered(q.field, q.question.format(hours=hours)))
        elif answer:
            values = {"answer": True, "window_hours": hours} if "{hours}" in q.message else {"answer": True}
            found.append(Finding(q.code, q.severity, q.message.format(hours=hours), values))
    return found


def _pregnancy_findings(answers):
    if answers.pregnancy_possible is None:
        return [unanswered("pregnancy_possible", "whether pregnancy is possible")]
    if not answers.pregnancy_possible:
        return []
    status = answers.pregnancy_status
    values = {"pregnancy_status": status}
    if status is None:
        return [unanswered("pregnancy_status", "pregnancy status or test result")]
    if status == "positive":
        return [Finding("PREGNANCY_POSITIVE", Severity.ABSOLUTE, "Pregnancy is positive: no dose.", values)]
    if status == "unknown":
        return [Finding("PREGNANCY_STATUS_UNKNOWN", Severity.NEEDS_PHYSICIAN,
                        "Pregnancy status is unknown: a physician must review before the dose.", values)]
    if status == "reported_not_pregnant":
        return [Finding("PREGNANCY_NOT_TESTED", Severity.INFO,
                        "The patient reports not being pregnant; no test today.", values)]
    return []


def _vascular_findings(answers):
    """Esketamine label contraindications: aneurysmal vascular disease, AVM, intracerebral haemorrhage (§1.6)."""
    answer = answers.vascular_contraindication
    if answers.route == "esketamine" and answer is None:
        return [unanswered("vascular_contraindication",
                            "aneurysm, arteriovenous malformation or bleeding in the brain")]
    if not answer:
        return []
    if answers.route == "esketamine":
        return [Finding("VASCULAR_CONTRAINDICATION", Severity.ABSOLUTE,
                        "Aneurysm, arteriovenous malformation or brain bleed: esketamine must not be given.",
                        {"answer": True, "route": answers.route})]
    return [Finding("VASCULAR_CONDITION_REPORTED", Severity.NEEDS_PHYSICIAN,
                    "Aneurysm, arteriovenous malformation or brain bleed reported: "
                    "a physician must review before the dose.", {"answer": True, "route": answers.route})]


def _fasting_findings(answers, now, policy):
    """IV: solids ≥ 6 h, clear liquids ≥ 2 h (amg-ketamine, elev8md); esketamine: 2 h and 30 min (§2.2, §3)."""
    if answers.route == "iv":
        solids, liquids = policy.iv_fast_solids_minutes, policy.iv_fast_liquids_minutes
    else:
        solids, liquids = policy.esketamine_fast_food_minutes, policy.esketamine_fast_liquids_minutes
    checks = (
        ("last_solid_food_at", answers.last_solid_food_at, solids, "FASTING_SOLIDS_SHORT", "food"),
        ("last_clear_liquid_at", answers.last_clear_liquid_at, liquids, "FASTING_LIQUIDS_SHORT", "clear liquid"),
    )
    found = []
    for item, at, required, code, what in checks:
        if at is None:
            found.append(unanswered(item, f"time of the last {what}"))
            continue
        since = now - at
        values = {"item": item, "minutes_since": _minutes(since), "required_minutes": required}
        if since < timedelta(0):
            found.append(Finding("FASTING_TIME_IN_FUTURE", Severity.ABSOLUTE,
                                 f"The time of the last {what} is in the future: correct it.", values))
        elif since < timedelta(minutes=required):
            found.append(Finding(code, Severity.NEEDS_PHYSICIAN,
                                 f"Last {what} {_minutes(since)} min ago; the protocol needs at least {required} min: "
                                 "a physician must review before the dose.", values))
    return found


def _escort_findings(answers):
    """Name and phone of the escort (rule 6; Ketalar label: leave only with a responsible adult, §1.10).

    With no escort today, another safe ride home described in a few words (medical transport, say)
    is Blocked, so a physician may accept it with a reason; the arrangement is in the values, so an
    override covers that arrangement only. Nothing usable answered stays absolute.
    """
    has_name, has_phone = bool((answers.escort_name or "").strip()), bool((answers.escort_phone or "").strip())
    if has_name and has_phone:
        return []
    arrangement = (answers.escort_arrangement or "").strip()
    if is_explained(arrangement):
        return [Finding("ESCORT_ALTERNATIVE_ARRANGEMENT", Severity.BLOCK,
                        f"No escort today; the patient goes home by: “{arrangement}”. A physician must accept "
                        "this arrangement before the dose.", {"arrangement": arrangement})]
    return [Finding("ESCORT_MISSING", Severity.ABSOLUTE,
                    "No escort name and phone: the dose does not start without someone to take the patient home.",
                    {"has_name": has_name, "has_phone": has_phone})]


def _consent_findings(answers):
    found = []
    if not answers.consent_on_file:
        found.append(Finding("CONSENT_NOT_ON_FILE", Severity.ABSOLUTE,
                             "No signed consent on file: no dose until consent is signed.", {}))
    if answers.consent_reconfirmed is None:
        found.append(unanswered("consent_reconfirmed", "consent reconfirmed with the patient today"))
    elif not answers.consent_reconfirmed:
        found.append(Finding("CONSENT_NOT_RECONFIRMED", Severity.ABSOLUTE,
                             "Consent was not reconfirmed today: reconfirm it with the patient before the dose.", {}))
    return found


def evaluate_readiness(answers: ChecklistAnswers, *, now: datetime, policy: ClinicalPolicy) -> tuple[Finding, ...]:
    """Every finding the pre-session checklist raises, in checklist order (rules 1–7, 16), each with
    the severity the policy gives its code."""
    weight = [unanswered("weight", "today's weight")] if answers.weight_kg is None else []
    return apply_severities(
        _vitals_findings(answers.vitals, now, policy) + weight
        + _medication_findings(answers.medication_changes)
        + _recheck_findings(answers, policy)
        + _pregnancy_findings(answers)
        + _vascular_findings(answers)
        + _fasting_findings(answers, now, policy)
        + _escort_findings(answers)
        + _consent_findings(answers)
        + screening.phq9_findings(answers, policy)
        + screening.gad7_findings(answers.gad7_items)
        + screening.suicide_risk_findings(answers.suicide_risk)
        + screening.willingness_findings(answers.willingness),
        policy,
    )


#: Findings the checklist form itself answers, besides every `<ITEM>_UNANSWERED`: staff see "answer
#: below", not a stop, while the form is open (the escort's name and phone, or the ride home, go there).
ANSWERED_IN_THE_FORM = frozenset({"ESCORT_MISSING"})


def is_answered_in_the_form(finding) -> bool:
    """Whether the remedy for this finding is an answer on the checklist form (not a physician, not time)."""
    return finding.code.endswith("_UNANSWERED") or finding.code in ANSWERED_IN_THE_FORM


def required_tasks(findings) -> tuple[str, ...]:
    """Follow-up tasks the findings ask for (e.g. a same-day physician review), each once, in order."""
    return tuple(dict.fromkeys(f.values["task"] for f in findings if "task" in f.values))
