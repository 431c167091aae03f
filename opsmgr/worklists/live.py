"""The live board: each chair's countdown to its next reading, and the state a poll compares.

The board page polls /today/live (static/js/board.js). The answer is the board's HTML fragment, or
204 when nothing a person would see has changed since the state the page holds: the state is a hash
of the fragment less what differs on every render (form tokens, the server's clock, the ticking text).
"""
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

#: Renders differ in these even when the board has not changed: one-time form tokens, the server's
#: clock and the minutes the page's script counts down itself (<span data-tick ...>…</span>).
_VOLATILE = ((re.compile(r'name="(csrf_token|submission_key)" value="[^"]*"'), r'name="\1"'),
             (re.compile(r' data-now="[^"]*"'), ""),
             (re.compile(r'(<span data-tick[^>]*>)[^<]*</span>'), r"\1</span>"))

#: How often the board page asks for changes.
POLL_SECONDS = 15


@dataclass(frozen=True)
class Countdown:
    due_at: datetime
    overdue: bool
    #: Whole minutes to go (under a minute: 0), or overdue by (at least 1).
    minutes: int

    @property
    def due_ms(self):
        return epoch_ms(self.due_at)


def countdowns(vitals_due, now):
    """{session id: Countdown} from the board's {session id: VitalsDue}."""
    found = {}
    for session_id, due in vitals_due.items():
        seconds = (due.due_at - now).total_seconds()
        minutes = max(1, int(-seconds // 60)) if due.overdue else max(0, int(seconds // 60))
        found[session_id] = Countdown(due.due_at, due.overdue, minutes)
    return found


def overdue(by_chair, chairs, countdowns):
    """The board's overdue readings, chair by chair: [(chair, session, Countdown)]."""
    return [(chairs[chair_id], visit, countdowns[visit.id]) for chair_id, sessions in by_chair.items()
            for visit in sessions if visit.id in countdowns and countdowns[visit.id].overdue]


def epoch_ms(moment: datetime):
    return int(moment.timestamp() * 1000)


def state_of(fragment: str) -> str:
    """What a poll compares: the same for two renders of an unchanged board."""
    for pattern, replacement in _VOLATILE:
        fragment = pattern.sub(replacement, fragment)
    return hashlib.sha256(fragment.encode()).hexdigest()[:32]
