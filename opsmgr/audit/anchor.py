"""Chain-head anchors kept outside the database.

The head row in `audit_head` catches a cut-off tail, but someone who can write to the
database could cut the tail *and* rewrite the head. So the scheduler also appends the
head (event id and hash) to a file outside the database; `audit verify` checks that the
chain still reaches every anchored event with the anchored hash.
"""
import os
from dataclasses import dataclass
from pathlib import Path

ANCHOR_FILE = "audit-anchors.log"


@dataclass(frozen=True)
class Anchor:
    event_id: int
    row_hash: str


def anchor_path(instance_path):
    return Path(instance_path) / ANCHOR_FILE


def read_anchors(path):
    """Anchors in the file, oldest first; a missing file has none."""
    try:
        lines = Path(path).read_text(encoding="ascii").splitlines()
    except FileNotFoundError:
        return []
    anchors = []
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].isdigit():
            anchors.append(Anchor(int(parts[1]), parts[2]))
    return anchors


def append_anchor(path, *, event_id, row_hash, now):
    """Append one anchor line (time, event id, hash), synced to disk; the file is mode 600."""
    anchors = read_anchors(path)
    if anchors and anchors[-1].event_id == event_id:
        return False
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{now.isoformat(timespec='seconds')}\t{event_id}\t{row_hash}\n".encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return True
