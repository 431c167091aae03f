"""What a rule returns: findings with a stable code, a severity, a plain message and the values used.

`absolute` findings cannot be overridden by anyone; `block` and `needs_physician` findings can
be overridden only by a physician, one finding at a time, with a reason.
"""
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"
    NEEDS_PHYSICIAN = "needs_physician"
    BLOCK = "block"
    ABSOLUTE = "absolute"

    @property
    def rank(self):
        return _RANK[self]

    @property
    def label(self):
        """The one wording of a severity on every page and message."""
        return SEVERITY_LABELS[self]

    @property
    def overridable(self):
        """Whether a physician may override a finding of this severity (with a reason)."""
        return self in (Severity.NEEDS_PHYSICIAN, Severity.BLOCK)


#: A reason shorter than this (spaces not counted) is not a reason.
MIN_REASON_CHARACTERS = 5

SEVERITY_LABELS = {
    Severity.INFO: "For information",
    Severity.NEEDS_PHYSICIAN: "Needs a physician's override",
    Severity.BLOCK: "Stop — a physician may override",
    Severity.ABSOLUTE: "Stop — cannot be overridden",
}
_RANK = {Severity.INFO: 0, Severity.NEEDS_PHYSICIAN: 1, Severity.BLOCK: 2, Severity.ABSOLUTE: 3}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    #: The inputs the rule looked at, for display and for the record (small scalars only).
    values: dict = field(default_factory=dict)

    @property
    def stops_start(self):
        return self.severity != Severity.INFO


@dataclass(frozen=True)
class Problem:
    """Why a step is refused: the form field it concerns (None: the whole form) and a plain message."""

    field: str | None
    message: str


class Outcome(StrEnum):
    CLEARED = "cleared"
    NEEDS_PHYSICIAN = "needs_physician"
    BLOCKED = "blocked"

    @property
    def label(self):
        return {"cleared": "Cleared", "needs_physician": "Needs physician", "blocked": "Blocked"}[self.value]


@dataclass(frozen=True)
class Override:
    """A physician's decision to proceed despite one finding."""

    code: str
    by_role: str
    reason: str


def outcome_of(findings) -> Outcome:
    """Blocked if any finding blocks (or is absolute), else needs physician if any does, else cleared."""
    worst = max((f.severity.rank for f in findings), default=0)
    if worst >= Severity.BLOCK.rank:
        return Outcome.BLOCKED
    if worst == Severity.NEEDS_PHYSICIAN.rank:
        return Outcome.NEEDS_PHYSICIAN
    return Outcome.CLEARED


def override_problem(finding: Finding, *, role: str, reason: str) -> str | None:
    """Why this override is refused, or None: absolute never; others by a physician with a reason."""
    if finding.severity == Severity.ABSOLUTE:
        return "This finding cannot be overridden by anyone."
    if finding.severity == Severity.INFO:
        return "This finding is for information: it needs no override."
    if role != "physician":
        return "Only a physician can override this finding."
    if not is_explained(reason):
        return "Give the reason for overriding (at least a few words)."
    return None


def is_explained(text) -> bool:
    """A reason or note says something: at least MIN_REASON_CHARACTERS characters besides spaces."""
    return len("".join((text or "").split())) >= MIN_REASON_CHARACTERS


def resolution_problem(note, role) -> str | None:
    """Why closing a physician task is refused, or None: a physician, with a note of what was done."""
    if role != "physician":
        return "Only a physician can resolve a physician task."
    if not is_explained(note):
        return "Write what was done (at least a few words): for example, saw the patient and the plan."
    return None


def unanswered(item, question, **values) -> Finding:
    """A checklist item not answered yet: absolute, never a default (`<ITEM>_UNANSWERED`)."""
    return Finding(f"{item.upper()}_UNANSWERED", Severity.ABSOLUTE,
                   f"Not answered yet: {question}. Every checklist item must be answered before the dose.",
                   {"item": item, **values})


def open_findings(findings, overrides) -> tuple[Finding, ...]:
    """Findings that still stop the start: not info, and not covered by a valid override."""
    def covered(finding):
        return any(o.code == finding.code and override_problem(finding, role=o.by_role, reason=o.reason) is None
                   for o in overrides)

    return tuple(f for f in findings if f.stops_start and not covered(f))


def may_proceed(findings, overrides) -> bool:
    """The start (or discharge) gate: true only when no finding remains open."""
    return not open_findings(findings, overrides)
