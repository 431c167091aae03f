"""The day's time grid of the schedule: each chair a column of 15-minute rows, its sessions as blocks
sized by their length plus the chair's turnover, and the rest of the day as free, past or closed time.

Pure layout (stdlib only): times are local minutes since midnight; the page places each block with
row classes (the CSP forbids style attributes), so a block is a first row and a number of rows.
"""
from dataclasses import dataclass

#: Minutes per row of the grid.
STEP = 15
#: A free stretch is offered as one bookable slot per half hour.
SLOT = 30
#: The rows a day can have (the CSS has a class for each first row and each span up to this).
MAX_ROWS = 24 * 60 // STEP


@dataclass(frozen=True)
class Block:
    """One block of a chair's column: kind "session", "turnover", "free", "past" or "closed"."""

    kind: str
    #: First row (1-based, the CSS grid line) and number of rows.
    row: int
    span: int
    #: Local minutes since midnight: where the block starts and ends on the clock (for a session, its own times).
    starts: int
    ends: int
    session: object = None
    #: A free block that starts a stretch of free time (the page labels it; the next slots show on hover).
    leads: bool = False


@dataclass(frozen=True)
class Column:
    chair: object
    blocks: tuple


def clock(minutes):
    """Local minutes since midnight as HH:MM (24:00 for the end of the day)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def window(hours, busy, default=(8 * 60, 18 * 60)):
    """The grid's first and last minute, on the hour: every (opens, closes) in `hours` and every
    (start, end) in `busy`, or `default` when there are none."""
    spans = list(hours) + list(busy)
    if not spans:
        return default
    first = min(start for start, _ in spans)
    last = max(end for _, end in spans)
    return max(0, first // 60 * 60), min(24 * 60, -(-last // 60) * 60)


def _rows(first, minutes):
    return (min(max(minutes, first), first + MAX_ROWS * STEP) - first) // STEP


def _rows_up(first, minutes):
    return -(-(min(max(minutes, first), first + MAX_ROWS * STEP) - first) // STEP)


def column(chair, sessions, *, first, last, hours, turnover, bookable_from, slot=SLOT):
    """A chair's blocks over [first, last): `sessions` are (session, start, end) in local minutes,
    `hours` the day's (opens, closes) or None when closed; free time starting before `bookable_from`
    is past; free time is cut into bookable slots at every `slot` minutes (None: kept whole)."""
    total = (last - first) // STEP
    blocks, taken = [], [False] * total
    for visit, start, end in sorted(sessions, key=lambda item: (item[1], item[2])):
        top = min(_rows(first, start), total - 1)
        bottom = min(max(_rows_up(first, end), top + 1), total)
        after = min(max(_rows_up(first, end + turnover), bottom), total)
        blocks.append(Block("session", top + 1, bottom - top, start, end, visit))
        if after > bottom:
            blocks.append(Block("turnover", bottom + 1, after - bottom, end, end + turnover, visit))
        for row in range(top, after):
            taken[row] = True
    blocks.extend(_open_blocks(taken, first, hours, bookable_from, slot))
    return Column(chair, tuple(sorted(blocks, key=lambda block: (block.row, block.kind != "session"))))


def _state(start, hours, bookable_from):
    if hours is None or start < hours[0] or start + STEP > hours[1]:
        return "closed"
    return "past" if start < bookable_from else "free"


def _open_blocks(taken, first, hours, bookable_from, slot):
    """The rows no session or turnover takes: runs of closed or past time, and free time cut into slots."""
    blocks, run, previous = [], None, None
    for row, is_taken in enumerate(taken):
        start = first + row * STEP
        state = None if is_taken else _state(start, hours, bookable_from)
        new_slot = state == "free" and slot is not None and start % slot == 0
        if run and (state != run[0] or new_slot):
            blocks.append(_block(run, first))
            run = None
        if state and run is None:
            run = [state, row, row + 1, previous != state]
        elif state:
            run[2] = row + 1
        previous = state
    if run:
        blocks.append(_block(run, first))
    return blocks


def _block(run, first):
    kind, top, bottom, leads = run
    return Block(kind, top + 1, bottom - top, first + top * STEP, first + bottom * STEP,
                 leads=leads and kind == "free")


def axis(first, last):
    """The hour labels of the time column: (first row, label) per hour."""
    return tuple((1 + (minutes - first) // STEP, clock(minutes)) for minutes in range(first, last, 60))
