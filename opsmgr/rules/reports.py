"""When a series summary may be signed, and which sessions it covers.

A series summary is a physician's signed statement about the sessions that took place. It covers
every session of the series that went beyond "scheduled" and was not cancelled or missed, and it
can only be signed when each of those is finished (discharged) and its note signed: the summary
must never print a session whose own record could still change (rule 19, clinical.md §7).
A summary covering the same sessions is signed once; after another session's note is signed, a new
summary (a new document) can be signed, and the earlier one stays as it was.
"""
from dataclasses import dataclass

from opsmgr.rules.findings import Problem

#: Sessions that did not take place: not in the summary, never blocking it.
DID_NOT_TAKE_PLACE = frozenset({"scheduled", "cancelled", "no_show"})
#: The only state a session in the summary may be in.
FINISHED = "discharged"
#: The physician's paragraph, typed before signing.
SUMMARY_MIN_CHARACTERS = 20
SUMMARY_MAX_CHARACTERS = 5000


@dataclass(frozen=True)
class SeriesSessionFact:
    number: int
    status: str
    #: The session's date as the page prints it ("12 Nov 2026").
    date: str
    note_signed: bool


def covered(sessions):
    """The sessions a summary signed now would cover, in series order."""
    return [fact for fact in sorted(sessions, key=lambda fact: fact.number) if fact.status not in DID_NOT_TAKE_PLACE]


def signing_problems(sessions, *, signed_counts=()):
    """Why a series summary cannot be signed now ([] when it can).

    `sessions`: SeriesSessionFact for every session of the series; `signed_counts`: the session
    counts of the series summaries already signed.
    """
    taken_place = covered(sessions)
    if not taken_place:
        return [Problem(None, "No session of this series has taken place yet, so there is nothing to summarise.")]
    problems = []
    for fact in taken_place:
        if fact.status != FINISHED:
            problems.append(Problem(None, f"Session {fact.number} ({fact.date}) is still in progress: sign the "
                                          "summary after the patient is discharged and the note is signed."))
        elif not fact.note_signed:
            problems.append(Problem(None, f"Session {fact.number} ({fact.date}): its note is not signed yet. "
                                          "Sign it first; the summary prints signed records only."))
    if not problems and len(taken_place) in set(signed_counts):
        problems.append(Problem(None, f"A summary of these {len(taken_place)} sessions is already signed. A new "
                                      "one can be signed once another session's note is signed."))
    return problems


def summary_problems(text):
    """Problems with the physician's summary paragraph ([] when it is fine)."""
    length = len((text or "").strip())
    if length < SUMMARY_MIN_CHARACTERS:
        return [Problem("summary", f"Write the summary paragraph (at least {SUMMARY_MIN_CHARACTERS} characters): "
                                   "course, response and the plan.")]
    if length > SUMMARY_MAX_CHARACTERS:
        return [Problem("summary", f"The summary is {length} characters; keep it to {SUMMARY_MAX_CHARACTERS}.")]
    return []
