"""Canonical row content and the keyed hash that links each row to the one before it."""
import hashlib
import hmac
import json
from datetime import UTC

GENESIS = "0" * 64
HEAD_ID = 1
#: Longest text value a detail may hold: enough for a name or a code, too short for a note.
MAX_DETAIL_TEXT = 200

CHAINED_FIELDS = (
    "id", "occurred_at", "user_id", "username", "role", "action", "object_type",
    "object_id", "patient_id", "outcome", "ip", "details",
)


#: One encoder for every row: json.dumps with options builds a new JSONEncoder on each call.
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical(values):
    """A stable text form of a row's chained fields (timestamps as naive-UTC ISO text)."""
    out = {name: values[name] for name in CHAINED_FIELDS}
    out["occurred_at"] = out["occurred_at"].astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    return _ENCODE(out)


def link_hash(key, prev_hash, values):
    return Linker(key)(prev_hash, values)


class Linker:
    """link_hash for many rows under one key: the HMAC's keyed state is set up once and copied per row
    (the same digest as hmac.new(key, message, sha256))."""

    def __init__(self, key):
        self._keyed = hmac.new(key.encode(), digestmod=hashlib.sha256)

    def __call__(self, prev_hash, values):
        mac = self._keyed.copy()
        mac.update(f"{prev_hash}\n{canonical(values)}".encode())
        return mac.hexdigest()


def canonical_details(details):
    """Structured details as canonical JSON; only short scalars (or lists of them), so no free text slips in."""
    details = details or {}
    for name, value in details.items():
        if not isinstance(name, str) or len(name) > 40:
            raise ValueError("audit detail names are short strings")
        for item in value if isinstance(value, list) else [value]:
            _check_scalar(name, item)
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _check_scalar(name, value):
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"audit detail {name!r} must be a scalar or a list of scalars")
    if isinstance(value, str) and len(value) > MAX_DETAIL_TEXT:
        raise ValueError(f"audit detail {name!r} is too long for the audit trail")
