"""The severity of every gate finding as clinic policy: its default, the choices the rules allow, its source.

An admin chooses a code's severity among its `choices`, as thresholds are edited; the default policy
(no choice stored) gives exactly the severities the rules are written with. The limits:

- Locked, the default is the only choice:
  * every `<ITEM>_UNANSWERED` and every "not done or not recorded" finding (CHECKLIST_NOT_STARTED,
    WEIGHT_MISSING, OBSERVATION_NOT_COMPLETE, DISCHARGE_VITALS_MISSING, …): the remedy is to answer or
    record it, and nobody can judge an answer that is not there (rule 6: required, never defaulted);
  * impossible or stale data (VITALS_STALE, *_TIME_IN_FUTURE): the remedy is a new reading (rule 1);
  * contraindications no judgement weighs: a positive pregnancy (§1.6), esketamine with an aneurysm,
    AVM or brain bleed (label, §1.6), psychosis (exclusion, §1.6), an esketamine dose that is not whole
    28 mg devices (§2.2), consent not on file or not reconfirmed today (rule 6; §1.3, §3);
  * no escort at all (Ketalar label: only with a responsible adult, §1.10). A documented other safe
    ride home is its own code, ESCORT_ALTERNATIVE_ARRANGEMENT, which a physician may override;
  * an elevated suicide-risk screen: Blocked, the physician called now (rule 7). Lower would drop the
    call; Not allowed would put the patients esketamine is indicated for (MDD with suicidal ideation,
    §2.2) beyond any physician's decision;
  * information (scores, an untested pregnancy, other medication changes, a low screen): recorded,
    it never stops a step, and stays information.
- Needs a physician: a clinic may make it Blocked or Not allowed, never Information, which would let
  the step go ahead with nobody looking at what the source says a physician must. A clinic that wants
  fewer reviews moves the threshold, where the number shows.
- Blocked by a contraindication or a ceiling (BP hard gate, dose above the ceiling, the escort
  arrangement): Blocked or Not allowed, never only a review.
- Never Not allowed: PHQ-9 item 9 (same reason as the screen), and the discharge findings a physician
  may sign off (vitals out of range, mental status not back to baseline): a discharge nobody may sign
  off leaves a settled patient with no way out of the chair.

In-chair alerts (rules/monitoring.py) are not here: they are acknowledged, not overridden, and an
unacknowledged one stops the discharge as ALERT_UNACKNOWLEDGED, which is.
"""
from dataclasses import dataclass, replace

from opsmgr.rules.findings import Finding, Problem, Severity

INFO, REVIEW, BLOCK, ABSOLUTE = Severity.INFO, Severity.NEEDS_PHYSICIAN, Severity.BLOCK, Severity.ABSOLUTE
#: The step a finding stops, in the order the admin page lists them.
STEPS = {"start": "Before the dose: the pre-session checklist", "dose": "The dose (also checked before it starts)",
         "discharge": "Discharge"}


@dataclass(frozen=True)
class SeverityRule:
    code: str
    #: A key of STEPS.
    step: str
    default: Severity
    #: The severities a clinic may choose, least strict first; always holds the default.
    choices: tuple[Severity, ...]
    description: str
    source: str

    @property
    def locked(self):
        return self.choices == (self.default,)


def _rule(code, step, default, description, source, choices=None):
    return SeverityRule(code, step, default, choices or (default,), description, source)


def _review(code, step, description, source, choices=(REVIEW, BLOCK, ABSOLUTE)):
    return _rule(code, step, REVIEW, description, source, choices)


def _unanswered(item, description):
    return _rule(f"{item.upper()}_UNANSWERED", "start", ABSOLUTE, f"Not answered: {description}",
                 "Rule 6: every item answered, never defaulted")


_START = (
    _rule("CHECKLIST_NOT_STARTED", "start", ABSOLUTE, "The pre-session checklist has not been done",
          "Rules 1–7"),
    _unanswered("vitals", "pre-dose vital signs"),
    _rule("VITALS_TIME_IN_FUTURE", "start", ABSOLUTE, "Vital signs timed in the future", "Rule 1"),
    _rule("VITALS_STALE", "start", ABSOLUTE, "Vital signs older than the policy allows", "Rule 1 [INF window]"),
    _review("BP_SOFT_GATE", "start", "Blood pressure above the review threshold", "Rule 2; Spravato label §2.2"),
    _rule("BP_HARD_GATE", "start", BLOCK, "Blood pressure at or above the blocking threshold",
          "Rule 3; Swiss ketamine label §1.6; Yip 2022 §1.1", (BLOCK, ABSOLUTE)),
    _review("HEART_RATE_OUT_OF_RANGE", "start", "Heart rate outside the range", "Rule 4; NCT01892995 §1.6"),
    _review("SPO2_LOW", "start", "Oxygen saturation below the minimum", "Rule 4; NCT01892995 §1.6"),
    _unanswered("weight", "today's weight"),
    _unanswered("medication_changes", "medications started or stopped since the last visit"),
    _review("MEDICATION_CHANGE_FLAGGED", "start",
            "A benzodiazepine, lamotrigine, MAOI, psychostimulant, opioid or sedative-hypnotic started or stopped",
            "Rule 6; Spravato form §2.3; ketwell §3"),
    _rule("MEDICATION_CHANGE", "start", INFO, "Another medication started or stopped", "Rule 6; §3"),
    _unanswered("new_diagnoses", "any new diagnosis"),
    _review("NEW_DIAGNOSES", "start", "A new diagnosis since the last visit", "Rule 5; §1.6"),
    _unanswered("cardio_cerebrovascular_event", "any new heart or stroke event"),
    _review("CARDIO_CEREBROVASCULAR_EVENT", "start", "A new heart or stroke event", "Rule 5; §1.6 cardiac"),
    _unanswered("psychosis_symptoms", "any psychosis symptoms"),
    _rule("PSYCHOSIS_SYMPTOMS", "start", ABSOLUTE, "Psychosis symptoms", "Rule 5; §1.6 psychosis excluded"),
    _unanswered("mania_symptoms", "any mania symptoms"),
    _review("MANIA_SYMPTOMS", "start", "Mania symptoms", "Rule 5; §1.6 bipolar depression"),
    _unanswered("substance_use_in_window", "alcohol or drug use in the window"),
    _review("SUBSTANCE_USE_RECENT", "start", "Alcohol or drug use within the window", "Rule 5; ketwellalaska §3"),
    _unanswered("pregnancy_possible", "whether pregnancy is possible (patient record)"),
    _unanswered("pregnancy_status", "pregnancy status or test result"),
    _rule("PREGNANCY_POSITIVE", "start", ABSOLUTE, "Pregnancy positive", "Rule 5; §1.6 pregnancy"),
    _review("PREGNANCY_STATUS_UNKNOWN", "start", "Pregnancy status unknown", "Rule 5; §1.6 pregnancy"),
    _rule("PREGNANCY_NOT_TESTED", "start", INFO, "The patient reports not being pregnant; no test today",
          "Rule 5; §1.6 pregnancy"),
    _unanswered("vascular_contraindication", "aneurysm, AVM or bleeding in the brain (esketamine)"),
    _rule("VASCULAR_CONTRAINDICATION", "start", ABSOLUTE, "Esketamine with an aneurysm, AVM or brain bleed",
          "Rule 5; Spravato label §1.6"),
    _review("VASCULAR_CONDITION_REPORTED", "start", "IV ketamine with an aneurysm, AVM or brain bleed reported",
            "Rule 5; §1.6"),
    _unanswered("last_solid_food_at", "time of the last solid food"),
    _unanswered("last_clear_liquid_at", "time of the last clear liquid"),
    _rule("FASTING_TIME_IN_FUTURE", "start", ABSOLUTE, "A fasting time in the future", "Rule 6"),
    _review("FASTING_SOLIDS_SHORT", "start", "Solid food more recent than the fast allows",
            "Rule 6; amg-ketamine §3; Spravato label §2.2"),
    _review("FASTING_LIQUIDS_SHORT", "start", "Clear liquid more recent than the fast allows",
            "Rule 6; amg-ketamine §3; Spravato label §2.2"),
    _rule("ESCORT_MISSING", "start", ABSOLUTE, "No escort's name and phone, and no other way home described",
          "Rule 6; Ketalar label §1.10"),
    _rule("ESCORT_ALTERNATIVE_ARRANGEMENT", "start", BLOCK,
          "No escort today; another safe ride home is described (e.g. medical transport)",
          "Rule 6; Ketalar label §1.10; REMS counselling §2.1 [INF]", (BLOCK, ABSOLUTE)),
    _rule("CONSENT_NOT_ON_FILE", "start", ABSOLUTE, "No signed consent on file", "Rule 6; ASKP §1.3"),
    _unanswered("consent_reconfirmed", "consent reconfirmed today"),
    _rule("CONSENT_NOT_RECONFIRMED", "start", ABSOLUTE, "Consent not reconfirmed today",
          "Rule 6; midwestheartsandminds §3"),
    _unanswered("phq9", "PHQ-9 (all nine items)"),
    _unanswered("phq9_difficulty", "PHQ-9 difficulty question"),
    _rule("PHQ9_SCORE", "start", INFO, "PHQ-9 total and band", "Rule 16; §4"),
    _review("PHQ9_ITEM9_POSITIVE", "start", "PHQ-9 item 9 above the threshold (same-day physician review)",
            "Rule 7; PHQ-9 item-9 note §4", (REVIEW, BLOCK)),
    _unanswered("gad7", "GAD-7 (all seven items)"),
    _rule("GAD7_SCORE", "start", INFO, "GAD-7 total and band", "Rule 16; §4"),
    _unanswered("suicide_risk", "suicide-risk screen outcome"),
    _rule("SUICIDE_RISK_ELEVATED", "start", BLOCK, "Suicide-risk screen moderate or high (call the physician)",
          "Rule 7 [INF mapping]; §4"),
    _rule("SUICIDE_RISK_LOW", "start", INFO, "Suicide-risk screen low", "Rule 7; §4"),
    _unanswered("willingness", "the patient wants this treatment today, for themselves"),
    _review("WILLINGNESS_NOT_CONFIRMED", "start", "The patient is unsure or does not want the treatment today",
            "Rule 6; midwestheartsandminds §3"),
)
_DOSE = (
    _rule("DOSE_MG_PER_KG_MISSING", "dose", ABSOLUTE, "No dose per kg set", "Rule 9; §1.7"),
    _rule("WEIGHT_MISSING", "dose", ABSOLUTE, "No weight today to compute the dose", "Rule 9; §1.7"),
    _rule("INFUSION_MINUTES_MISSING", "dose", ABSOLUTE, "No infusion time set", "Rule 9; §1.7"),
    _rule("DOSE_ABOVE_CEILING", "dose", BLOCK, "Dose per kg above the ceiling", "Rule 9; ASKP §1.3",
          (BLOCK, ABSOLUTE)),
    _review("DOSE_OUTSIDE_USUAL_RANGE", "dose", "Dose per kg outside the usual range", "Rule 9; Andrade 2017 §1.7"),
    _review("INFUSION_TOO_FAST", "dose", "Infusion shorter than the protocol's minimum", "Rule 9; §1.7"),
    _rule("ESKETAMINE_DOSE_INVALID", "dose", ABSOLUTE, "Esketamine dose not whole 28 mg devices",
          "Rule 10; Spravato label §2.2"),
)
_DISCHARGE = (
    _rule("DOSE_NOT_STARTED", "discharge", ABSOLUTE, "The dose has not started", "Rules 13–14"),
    _rule("OBSERVATION_NOT_COMPLETE", "discharge", ABSOLUTE, "Minimum observation not over",
          "Rules 13–14; REMS §2.1"),
    _rule("DISCHARGE_VITALS_MISSING", "discharge", ABSOLUTE, "No pre-discharge vitals after the dose",
          "Rule 14; RCEM §1.10"),
    _review("DISCHARGE_VITALS_OUT_OF_RANGE", "discharge", "Pre-discharge vitals outside the pre-start gates",
            "Rule 14; RCEM §1.10", (REVIEW, BLOCK)),
    _rule("MENTAL_STATUS_NOT_RECORDED", "discharge", ABSOLUTE, "No MOAA/S before discharge", "Rule 14; §1.10"),
    _review("MENTAL_STATUS_NOT_BASELINE", "discharge", "MOAA/S not back to baseline", "Rule 14; ACEP §1.10",
            (REVIEW, BLOCK)),
    _rule("ESCORT_NOT_PRESENT", "discharge", ABSOLUTE, "The escort is not here", "Rule 14; Ketalar label §1.10"),
    _rule("INSTRUCTIONS_NOT_GIVEN", "discharge", ABSOLUTE, "Discharge instructions not given",
          "Rule 14; RCEM, ketwell §1.10"),
    _rule("DISCHARGE_CONDITION_MISSING", "discharge", ABSOLUTE, "Condition at discharge not described",
          "Rule 14; WAC 246-817-776 §1.10"),
    _rule("ALERT_UNACKNOWLEDGED", "discharge", ABSOLUTE, "An in-chair alert not acknowledged", "Rule 12"),
)
#: Every gate finding code, in the order of the checklist, the dose and the discharge.
SEVERITY_RULES = {rule.code: rule for rule in _START + _DOSE + _DISCHARGE}


def severity_for(code, policy) -> Severity | None:
    """The severity the policy gives a code: the clinic's choice while the rules allow it, else the
    default (a choice stored before a limit was tightened falls back to it); None for an unknown code."""
    rule = SEVERITY_RULES.get(code)
    if rule is None:
        return None
    chosen = (getattr(policy, "severities", None) or {}).get(code)
    return Severity(chosen) if chosen in rule.choices else rule.default


def apply_severities(findings, policy) -> tuple[Finding, ...]:
    """The findings with each severity the policy's for its code (codes not listed keep theirs)."""
    return tuple(_with_policy_severity(finding, policy) for finding in findings)


def _with_policy_severity(finding, policy):
    severity = severity_for(finding.code, policy)
    if severity is None or severity == finding.severity:
        return finding
    return replace(finding, severity=severity)


def severity_problems(chosen) -> tuple[Problem, ...]:
    """Why choices {code: severity value} are refused, one Problem per code (field = the code); empty if none."""
    return tuple(problem for code, value in chosen.items() if (problem := _choice_problem(code, value)))


def _choice_problem(code, value):
    rule = SEVERITY_RULES.get(code)
    if rule is None:
        return Problem(code, f"{code} is not a finding the rules raise.")
    if value in rule.choices:
        return None
    if rule.locked:
        return Problem(code, f"{rule.description}: fixed at “{rule.default.label}”. The rules do not let a "
                             "clinic change it.")
    allowed = " or ".join(f"“{severity.label}”" for severity in rule.choices)
    return Problem(code, f"{rule.description}: choose {allowed}.")


def stored_choices(chosen) -> dict[str, str]:
    """The choices worth storing in a policy version: allowed ones that differ from the default."""
    return {code: Severity(value).value for code, value in sorted(chosen.items())
            if code in SEVERITY_RULES and value in SEVERITY_RULES[code].choices
            and value != SEVERITY_RULES[code].default}
