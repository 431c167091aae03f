"""Findings, outcomes and overrides, table-first: who may override what, with which reason, and what
stays open at the start and discharge gates. No app needed."""
import pytest

from opsmgr.rules.findings import (
    Finding,
    Outcome,
    Override,
    Severity,
    is_explained,
    may_proceed,
    open_findings,
    outcome_of,
    override_problem,
    resolution_problem,
)

INFO = Finding("PHQ9_RECORDED", Severity.INFO, "PHQ-9 recorded.")
SOFT = Finding("BP_SOFT_GATE", Severity.NEEDS_PHYSICIAN, "BP 150/95 is above 140/90.", {"systolic": 150})
HARD = Finding("BP_HARD_GATE", Severity.BLOCK, "BP 182/104 is at or above 180/100.")
PREGNANT = Finding("PREGNANCY_POSITIVE", Severity.ABSOLUTE, "Pregnancy test positive.")
REASON = "Asymptomatic, known hypertension, rechecked"


def physician(code, reason=REASON):
    return Override(code, "physician", reason)


# --- severity and outcome -----------------------------------------------------------------------

def test_severities_rank_info_below_physician_below_block_below_absolute():
    ranks = [s.rank for s in (Severity.INFO, Severity.NEEDS_PHYSICIAN, Severity.BLOCK, Severity.ABSOLUTE)]
    assert ranks == sorted(ranks) and len(set(ranks)) == 4


@pytest.mark.parametrize("findings,outcome", [
    ((), Outcome.CLEARED),
    ((INFO,), Outcome.CLEARED),
    ((INFO, INFO), Outcome.CLEARED),
    ((SOFT,), Outcome.NEEDS_PHYSICIAN),
    ((INFO, SOFT), Outcome.NEEDS_PHYSICIAN),
    ((HARD,), Outcome.BLOCKED),
    ((SOFT, HARD), Outcome.BLOCKED),
    ((PREGNANT,), Outcome.BLOCKED),
    ((INFO, SOFT, HARD, PREGNANT), Outcome.BLOCKED),
])
def test_outcome_is_the_worst_finding(findings, outcome):
    assert outcome_of(findings) == outcome


def test_outcome_accepts_a_generator():
    assert outcome_of(f for f in (INFO, SOFT)) == Outcome.NEEDS_PHYSICIAN


@pytest.mark.parametrize("outcome,label", [(Outcome.CLEARED, "Cleared"),
                                           (Outcome.NEEDS_PHYSICIAN, "Needs physician"),
                                           (Outcome.BLOCKED, "Blocked")])
def test_outcome_labels(outcome, label):
    assert outcome.label == label


@pytest.mark.parametrize("finding,stops", [(INFO, False), (SOFT, True), (HARD, True), (PREGNANT, True)])
def test_every_finding_but_info_stops_the_start(finding, stops):
    assert finding.stops_start is stops


# --- override_problem ---------------------------------------------------------------------------

@pytest.mark.parametrize("finding,role,ok", [
    (PREGNANT, "physician", False),   # absolute: never, by anyone
    (PREGNANT, "nurse", False),
    (PREGNANT, "admin", False),
    (INFO, "physician", False),       # nothing to override
    (SOFT, "physician", True),
    (SOFT, "nurse", False),
    (SOFT, "coordinator", False),
    (SOFT, "admin", False),
    (HARD, "physician", True),
    (HARD, "nurse", False),
    (HARD, "Physician", False),       # roles are exact
])
def test_who_may_override_what(finding, role, ok):
    problem = override_problem(finding, role=role, reason=REASON)
    assert (problem is None) is ok, problem


@pytest.mark.parametrize("reason,ok", [
    ("", False),
    ("     ", False),
    ("abcd", False),          # four characters
    ("abcde", True),          # five: on the limit
    ("abcdef", True),
    ("  abcd  ", False),      # surrounding spaces do not count
    ("\tabcd\n", False),
])
def test_override_needs_a_reason_of_at_least_five_characters(reason, ok):
    problem = override_problem(HARD, role="physician", reason=reason)
    assert (problem is None) is ok, problem


@pytest.mark.parametrize("reason", ["a b c", "a  b c", "ok ok"])
def test_spaces_inside_the_reason_do_not_count_towards_five_characters(reason):
    # Brief: "a reason of at least 5 non-space characters". override_problem counts len(reason.strip()),
    # so inner spaces count and "a b c" (3 non-space characters) is accepted.
    assert override_problem(HARD, role="physician", reason=reason) is not None


def test_refusals_say_why_in_plain_words_without_the_code():
    # Shown next to the finding's own override form: the code is for support, not for staff.
    assert override_problem(PREGNANT, role="physician", reason=REASON) == "This finding cannot be overridden by anyone."
    assert override_problem(SOFT, role="nurse", reason=REASON) == "Only a physician can override this finding."
    assert "PREGNANCY_POSITIVE" not in override_problem(PREGNANT, role="physician", reason=REASON)


# --- open_findings and may_proceed --------------------------------------------------------------

@pytest.mark.parametrize("findings,overrides,still_open", [
    ((), (), ()),
    ((INFO,), (), ()),                                                  # info never stops anything
    ((SOFT,), (), (SOFT,)),
    ((SOFT,), (physician("BP_SOFT_GATE"),), ()),
    ((HARD,), (physician("BP_HARD_GATE"),), ()),
    ((PREGNANT,), (physician("PREGNANCY_POSITIVE"),), (PREGNANT,)),      # absolute stays open
    ((SOFT,), (Override("BP_SOFT_GATE", "nurse", REASON),), (SOFT,)),    # a nurse cannot cover
    ((SOFT,), (physician("BP_SOFT_GATE", ""),), (SOFT,)),               # nor a physician without a reason
    ((SOFT,), (physician("BP_SOFT_GATE", "   "),), (SOFT,)),
    ((SOFT, HARD), (physician("BP_SOFT_GATE"),), (HARD,)),               # one finding at a time
    ((SOFT, HARD), (physician("BP_HARD_GATE"), physician("BP_SOFT_GATE")), ()),
    ((HARD,), (physician("BP_SOFT_GATE"),), (HARD,)),                    # an override for another code
    ((INFO, SOFT, HARD, PREGNANT), (physician("BP_SOFT_GATE"), physician("BP_HARD_GATE")), (PREGNANT,)),
])
def test_open_findings(findings, overrides, still_open):
    assert open_findings(findings, overrides) == still_open


def test_open_findings_keep_their_order():
    assert open_findings((PREGNANT, INFO, HARD, SOFT), ()) == (PREGNANT, HARD, SOFT)


@pytest.mark.parametrize("reason", ["ok", "abcd", "a b"])
def test_an_override_that_override_problem_refuses_does_not_cover(reason):
    # open_findings says "not covered by a valid override", but it accepts any non-blank reason, so an
    # override that override_problem refuses (reason too short) still clears the gate if it is stored.
    assert override_problem(SOFT, role="physician", reason=reason) is not None
    assert open_findings((SOFT,), (physician("BP_SOFT_GATE", reason),)) == (SOFT,)


@pytest.mark.parametrize("findings,overrides,proceed", [
    ((), (), True),
    ((INFO,), (), True),
    ((SOFT,), (), False),
    ((SOFT,), (physician("BP_SOFT_GATE"),), True),
    ((HARD,), (Override("BP_HARD_GATE", "nurse", REASON),), False),
    ((PREGNANT,), (physician("PREGNANCY_POSITIVE"),), False),
    ((SOFT, HARD), (physician("BP_SOFT_GATE"),), False),
])
def test_may_proceed_only_when_nothing_is_open(findings, overrides, proceed):
    assert may_proceed(findings, overrides) is proceed


@pytest.mark.parametrize("text,explained", [
    (None, False), ("", False), ("a b c d", False),   # 4 non-space characters: just outside
    ("a b c d e", True), ("abcde", True),             # 5: on the threshold
    ("abcdef", True),                                  # just inside
])
def test_a_reason_needs_five_characters_besides_spaces(text, explained):
    assert is_explained(text) is explained


@pytest.mark.parametrize("note,role,problem", [
    ("Saw the patient; safe plan.", "physician", None),
    ("Saw the patient; safe plan.", "nurse", "Only a physician can resolve a physician task."),
    ("ok", "physician", "Write what was done (at least a few words): for example, saw the patient and the plan."),
])
def test_only_a_physician_with_a_note_resolves_a_task(note, role, problem):
    assert resolution_problem(note, role) == problem
