"""Three-way merge of a form against a colleague's save: pure, stdlib only.

"Base" is what the form was opened with, "mine" what the user sends, "theirs" what is saved now.
A field only one side changed is taken from that side; a field both changed differently is a
conflict that needs a person's choice. A form that keeps only the current row carries its base as
fingerprints (`opened_token`), which tell a field's base value apart without carrying its text.
"""
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

#: The choices a person makes for a conflicting field.
MINE, THEIRS = "mine", "theirs"


class _Unknown:
    """A base value nobody can tell: it equals nothing, so a change on both sides is a conflict."""

    def __repr__(self):
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class Merge:
    """The merged `values`; the fields taken from the saved version; the fields that need a choice
    (their value in `values` is the user's own until chosen); the choices that were applied."""

    values: dict
    taken_from_theirs: tuple = ()
    conflicts: tuple = ()
    chosen: dict = field(default_factory=dict)

    @property
    def clean(self):
        return not self.conflicts


def key(value):
    """A value as the merge compares it: empty text and None alike, 0.50 like 0.5, any type as text."""
    if value is UNKNOWN:
        return value
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return f"b:{value}"
    if isinstance(value, (int, float, Decimal)):
        try:
            return "n:" + format(Decimal(str(value)).normalize(), "f")
        except InvalidOperation:
            return f"n:{value}"
    if isinstance(value, (date, datetime, time)):
        return f"d:{value.isoformat()}"
    if isinstance(value, str):
        return f"s:{value}"
    return "j:" + json.dumps(value, sort_keys=True, default=str)


def same(a, b):
    return a is not UNKNOWN and b is not UNKNOWN and key(a) == key(b)


def three_way(base, mine, theirs):
    """Merge field by field. A field missing from `mine` was left as saved; missing from `base`, its
    base is unknown (any difference between the sides is then a conflict)."""
    values, taken, conflicts = {}, [], []
    for name in [*theirs, *(name for name in mine if name not in theirs)]:
        if name not in mine:
            values[name] = theirs[name]
            continue
        ours, saved, was = mine[name], theirs.get(name, UNKNOWN), base.get(name, UNKNOWN)
        if saved is UNKNOWN or same(ours, saved) or same(saved, was):
            values[name] = ours
        elif same(ours, was):
            values[name] = saved
            taken.append(name)
        else:
            values[name] = ours
            conflicts.append(name)
    return Merge(values, tuple(taken), tuple(conflicts))


def fingerprint(value):
    """A short digest of a value's merge key: tells whether a field changed, without its text."""
    return hashlib.sha256(key(value).encode()).hexdigest()[:16]


def opened_token(values):
    """What a form carries of the values it was opened with: {field: fingerprint} as compact JSON."""
    return json.dumps({name: fingerprint(value) for name, value in values.items()}, separators=(",", ":"))


def read_token(token):
    """The fingerprints a form sent, or None when it sent none (or something unreadable)."""
    try:
        prints = json.loads(token or "")
    except ValueError:
        return None
    if not isinstance(prints, dict):
        return None
    return {name: value for name, value in prints.items() if isinstance(name, str) and isinstance(value, str)}


def base_from(prints, mine, theirs):
    """The base values the fingerprints stand for, wherever one side still holds them; UNKNOWN elsewhere
    (then both sides changed the field, and the merge calls it a conflict unless they agree)."""
    base = {}
    for name, print_ in prints.items():
        if name in theirs and fingerprint(theirs[name]) == print_:
            base[name] = theirs[name]
        elif name in mine and fingerprint(mine[name]) == print_:
            base[name] = mine[name]
    return base


def merge_edit(mine, theirs, *, base=None, opened=None, choices=None, pending=()):
    """Merge a form post with the saved values.

    `base` the values the form was opened on (a stored version), or `opened` their fingerprints; with
    neither, the form was opened on what is saved now. `pending` names the fields that were shown as
    conflicts and `choices` what the person chose for each ({field: "mine" | "theirs"}): "theirs" keeps
    the saved value; a pending field left unchosen stays a conflict while the two sides differ.
    """
    choices = {name: choice for name, choice in (choices or {}).items()
               if name in pending and choice in (MINE, THEIRS)}
    mine = {name: value for name, value in mine.items() if choices.get(name) != THEIRS}
    if base is None:
        base = dict(theirs) if opened is None else base_from(opened, mine, theirs)
    merged = three_way(base, mine, theirs)
    unchosen = [name for name in pending if name in mine and name not in choices
                and name not in merged.conflicts and not same(mine[name], theirs.get(name, UNKNOWN))]
    conflicts = tuple(name for name in merged.values if name in merged.conflicts or name in unchosen)
    return Merge(merged.values, merged.taken_from_theirs, conflicts, choices)
