"""The discharge gate: minimum observation, pre-discharge vitals, mental status, escort, instructions.

Sources: clinical reference rules 13 and 14, §1.10 (Ketalar label: only with a responsible adult;
RCEM: stable vitals, alert, written instructions with an emergency number; WAC 246-817-776:
condition at discharge; ketwell: no driving, legal decisions or alcohol for 24 h) and §2.1-2.2
(esketamine: observation >= 2 hours, no driving until the next day after restful sleep).
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from opsmgr.rules import wording
from opsmgr.rules.findings import Finding, Severity
from opsmgr.rules.monitoring import Reading
from opsmgr.rules.severities import apply_severities

#: What the patient is told before leaving after IV ketamine (rule 14; ketwell, RCEM, §1.10).
DISCHARGE_INSTRUCTIONS = (
    "No driving, operating machinery, signing legal documents or major decisions for 24 hours.",
    "No alcohol or recreational drugs for 24 hours.",
    "The clinic's emergency phone number, given in writing.",
)
#: After esketamine the driving rule runs until the next day after restful sleep (Spravato label, §2.2).
ESKETAMINE_DISCHARGE_INSTRUCTIONS = (
    "No driving or operating machinery until the next day after a restful sleep; "
    "no signing legal documents or major decisions for 24 hours.",
    *DISCHARGE_INSTRUCTIONS[1:],
)


#: Findings about the discharge form's own answers, by the answer they concern. The form must stay
#: open while these are open (the nurse corrects an answer, or a physician signs off); the others
#: (observation time, vitals, alerts) are not the form's to fix, so the discharge waits for them.
ANSWER_CODES = {"MENTAL_STATUS_NOT_RECORDED": "moaas", "MENTAL_STATUS_NOT_BASELINE": "moaas",
                "ESCORT_NOT_PRESENT": "escort_present", "INSTRUCTIONS_NOT_GIVEN": "instructions_given",
                "DISCHARGE_CONDITION_MISSING": "condition"}


def waiting_on(open_findings) -> tuple[Finding, ...]:
    """The open findings that no answer on the discharge form can clear: the discharge waits for them."""
    return tuple(f for f in open_findings if f.code not in ANSWER_CODES)


def unanswered(open_findings, answers) -> tuple[Finding, ...]:
    """The open findings that are only a question of the form not answered yet ("answer below");
    `answers` maps the form's names (moaas, escort_present, instructions_given, condition) to values."""
    return tuple(f for f in open_findings if f.code in ANSWER_CODES and f.code != "MENTAL_STATUS_NOT_BASELINE"
                 and answers.get(ANSWER_CODES[f.code]) in (None, ""))


def discharge_instructions(route) -> tuple[str, ...]:
    """The instructions to give for this route."""
    return ESKETAMINE_DISCHARGE_INSTRUCTIONS if route == "esketamine" else DISCHARGE_INSTRUCTIONS


@dataclass(frozen=True)
class DischargeAnswers:
    route: str
    dose_started_at: datetime
    infusion_ended_at: datetime | None
    last_vitals: Reading | None
    moaas: int | None
    escort_present: bool | None
    instructions_given: bool | None
    condition_at_discharge: str


def evaluate_discharge(answers: DischargeAnswers, *, now: datetime, policy) -> tuple[Finding, ...]:
    """Everything that still stops this discharge; empty when the patient may leave."""
    if answers.route not in ("iv", "esketamine"):
        raise ValueError(f"unknown route {answers.route!r}")
    return apply_severities((*_observation_findings(answers, now, policy),
                             *_vitals_findings(answers, policy),
                             *_mental_status_findings(answers.moaas, policy),
                             *_record_findings(answers)), policy)


def observation_ends_at(answers: DischargeAnswers, policy) -> datetime | None:
    """When the minimum observation is complete: IV 30 minutes after the infusion ended (None while
    it runs), esketamine 120 minutes after the dose."""
    if answers.route == "esketamine":
        return answers.dose_started_at + timedelta(minutes=policy.esketamine_min_observation_minutes)
    if answers.infusion_ended_at is None:
        return None
    return answers.infusion_ended_at + timedelta(minutes=policy.iv_min_observation_minutes)


def _observation_findings(answers, now, policy):
    ends_at = observation_ends_at(answers, policy)
    if ends_at is None:
        minimum = policy.iv_min_observation_minutes
        yield Finding("OBSERVATION_NOT_COMPLETE", Severity.ABSOLUTE,
                      f"The infusion has not ended; observation lasts {minimum} minutes after it does.",
                      {"minutes_remaining": minimum, "observation_ends_at": None})
    elif now < ends_at:
        remaining = -((now - ends_at) // timedelta(minutes=1))
        yield Finding("OBSERVATION_NOT_COMPLETE", Severity.ABSOLUTE,
                      f"The minimum observation ends in {remaining} min.",
                      {"minutes_remaining": remaining, "observation_ends_at": ends_at.isoformat()})


def _vitals_findings(answers, policy):
    vitals = answers.last_vitals
    if vitals is None or None in (vitals.systolic, vitals.diastolic, vitals.heart_rate, vitals.spo2):
        yield Finding("DISCHARGE_VITALS_MISSING", Severity.ABSOLUTE,
                      "Record blood pressure, heart rate and SpO2 before discharge.")
    elif _taken_too_early(answers):
        yield Finding("DISCHARGE_VITALS_MISSING", Severity.ABSOLUTE,
                      "The last vitals were taken before the dose was over; record them again before discharge.",
                      {"taken_at": vitals.taken_at.isoformat()})
    else:
        yield from _vitals_range_findings(vitals, policy)


def _taken_too_early(answers):
    """IV: before the infusion ended (or while it runs); esketamine: at or before the dose."""
    taken_at = answers.last_vitals.taken_at
    if answers.route == "esketamine":
        return taken_at <= answers.dose_started_at
    return answers.infusion_ended_at is None or taken_at < answers.infusion_ended_at


def _vitals_range_findings(vitals, policy):
    """Outside the pre-start gates (rules 2 and 4): above 140/90, HR outside 50-120, SpO2 below 95."""
    problems = []
    if vitals.systolic > policy.bp_soft_systolic or vitals.diastolic > policy.bp_soft_diastolic:
        problems.append(wording.blood_pressure(vitals.systolic, vitals.diastolic, policy.bp_soft_systolic,
                                               policy.bp_soft_diastolic, inclusive=False))
    if not policy.hr_low <= vitals.heart_rate <= policy.hr_high:
        problems.append(wording.heart_rate_outside(vitals.heart_rate, policy.hr_low, policy.hr_high))
    if vitals.spo2 < policy.spo2_min:
        problems.append(wording.spo2_below(vitals.spo2, policy.spo2_min))
    if problems:
        yield Finding("DISCHARGE_VITALS_OUT_OF_RANGE", Severity.NEEDS_PHYSICIAN,
                      " ".join(f"{problem}." for problem in problems) + " A physician must sign off before discharge.",
                      {"systolic": vitals.systolic, "diastolic": vitals.diastolic,
                       "heart_rate": vitals.heart_rate, "spo2": vitals.spo2})


def _mental_status_findings(moaas, policy):
    if moaas is None:
        yield Finding("MENTAL_STATUS_NOT_RECORDED", Severity.ABSOLUTE, "Record the MOAA/S before discharge.")
    elif moaas != policy.baseline_moaas:
        yield Finding("MENTAL_STATUS_NOT_BASELINE", Severity.NEEDS_PHYSICIAN,
                      f"MOAA/S {moaas} is not back to baseline ({policy.baseline_moaas}).",
                      {"moaas": moaas, "baseline_moaas": policy.baseline_moaas})


def _record_findings(answers):
    if answers.escort_present is not True:
        yield Finding("ESCORT_NOT_PRESENT", Severity.ABSOLUTE,
                      "The patient leaves only with a responsible adult (or the ride home a physician accepted at "
                      "the checklist), who must be here.")
    if answers.instructions_given is not True:
        yield Finding("INSTRUCTIONS_NOT_GIVEN", Severity.ABSOLUTE,
                      "Give the discharge instructions: " + " ".join(discharge_instructions(answers.route)))
    if not (answers.condition_at_discharge or "").strip():
        yield Finding("DISCHARGE_CONDITION_MISSING", Severity.ABSOLUTE, "Describe the condition at discharge.")
