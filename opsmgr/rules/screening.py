"""The screens in the pre-session checklist: PHQ-9, GAD-7, the suicide-risk screen and the patient's
own willingness (clinical reference rules 7 and 16, §4). Each returns findings; an item not
answered is an absolute finding, never a default.
"""
from opsmgr.rules.findings import Finding, Severity, unanswered
from opsmgr.rules.scales import phq9_item9, score_gad7, score_phq9

#: The physician tasks a finding asks for (its values["task"]).
SAME_DAY_REVIEW = "same_day_physician_review"
CALL_PHYSICIAN = "call_physician"
#: Suicide-risk screen outcomes that stop the dose and call the physician (rule 7, mapping [INF]).
BLOCKING_SUICIDE_RISKS = frozenset({"moderate", "high"})


def phq9_findings(answers, policy):
    items = answers.phq9_items
    item9 = _item9_findings(phq9_item9(items), policy)
    if items is None or None in items:
        answered = 0 if items is None else sum(item is not None for item in items)
        return [unanswered("phq9", "PHQ-9 (all nine items)", answered=answered), *item9]
    score = score_phq9(items, answers.phq9_difficulty)
    found = [Finding("PHQ9_SCORE", Severity.INFO, f"PHQ-9 total {score.total} ({score.band}).",
                     {"total": score.total, "band": score.band, "item9": score.item9,
                      "difficulty": score.difficulty})]
    # The instrument asks the difficulty question only when a problem was checked.
    if score.total > 0 and answers.phq9_difficulty is None:
        found.append(unanswered("phq9_difficulty", "PHQ-9 difficulty question"))
    return found + item9


def _item9_findings(item9, policy):
    """Item 9 above the threshold (default 0) needs the physician today, before the dose (rule 7; §4).

    It fires as soon as item 9 is answered, whatever the other items: the physician must not wait
    for the rest of the PHQ-9.
    """
    if item9 is None or item9 <= policy.phq9_item9_threshold:
        return []
    return [Finding("PHQ9_ITEM9_POSITIVE", Severity.NEEDS_PHYSICIAN,
                    f"PHQ-9 item 9 (thoughts of death or self-harm) scored {item9}: "
                    "a physician must see the patient today, before the dose.",
                    {"item9": item9, "threshold": policy.phq9_item9_threshold, "task": SAME_DAY_REVIEW})]


def gad7_findings(items):
    if items is None or None in items:
        answered = 0 if items is None else sum(item is not None for item in items)
        return [unanswered("gad7", "GAD-7 (all seven items)", answered=answered)]
    score = score_gad7(items)
    return [Finding("GAD7_SCORE", Severity.INFO, f"GAD-7 total {score.total} ({score.band}).",
                    {"total": score.total, "band": score.band})]


def suicide_risk_findings(risk):
    """Moderate or high blocks and calls the physician (rule 7, mapping [INF]); low is recorded."""
    if risk is None:
        return [unanswered("suicide_risk", "suicide-risk screen outcome")]
    if risk in BLOCKING_SUICIDE_RISKS:
        return [Finding("SUICIDE_RISK_ELEVATED", Severity.BLOCK,
                        f"Suicide-risk screen is {risk}: do not start; call the physician now.",
                        {"risk": risk, "task": CALL_PHYSICIAN})]
    if risk == "low":
        return [Finding("SUICIDE_RISK_LOW", Severity.INFO, "Suicide-risk screen is low.", {"risk": risk})]
    return []


def willingness_findings(willingness):
    """Patients who come because someone else pushed them do worse (issue 4; §3, midwestheartsandminds)."""
    if willingness is None:
        return [unanswered("willingness", "does the patient want this treatment today, for themselves")]
    if willingness == "yes":
        return []
    return [Finding("WILLINGNESS_NOT_CONFIRMED", Severity.NEEDS_PHYSICIAN,
                    f"Asked whether they want this treatment today, the patient said {willingness!r}: "
                    "a physician must talk with the patient before the dose.", {"willingness": willingness})]
