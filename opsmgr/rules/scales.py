"""Scoring the PHQ-9 and GAD-7, and PHQ-9 response and remission.

Sources (clinical reference §4): PHQ-9 items and bands from gpmanual.com, calcipedia.org and
ementalhealth.ca (0–4 minimal, 5–9 mild, 10–14 moderate, 15–19 moderately severe, 20–27
severe; item 9 above 0 needs follow-up whatever the total); GAD-7 bands from the jotform and
cliot copies (0–4 minimal, 5–9 mild, 10–14 moderate, 15–21 severe). Response is a ≥50% fall
from baseline and remission a total below 5 (Kaiser analysis, Psychiatric Services 2020,
doi 10.1176/appi.ps.201900295); another study used "response = score < 10", so every result
carries the definition it was computed under (rule 16).
"""
from dataclasses import dataclass

ITEM_MAX = 3
PHQ9_ITEMS = 9
GAD7_ITEMS = 7
#: (highest total in the band, band) in ascending order.
PHQ9_BANDS = ((4, "minimal"), (9, "mild"), (14, "moderate"), (19, "moderately severe"), (27, "severe"))
GAD7_BANDS = ((4, "minimal"), (9, "mild"), (14, "moderate"), (21, "severe"))
#: Response: the total fell by at least this percentage of the baseline (Psychiatric Services 2020).
PHQ9_RESPONSE_MIN_FALL_PERCENT = 50
#: Remission: a total below this (Psychiatric Services 2020; lowdoseketamine.com uses the same).
PHQ9_REMISSION_BELOW = 5
SOURCE = "Psychiatric Services 2020"


@dataclass(frozen=True)
class Phq9Score:
    total: int
    band: str
    item9: int
    #: "How difficult have these problems made it…" (0–3): recorded, never added to the total.
    difficulty: int | None = None


@dataclass(frozen=True)
class Gad7Score:
    total: int
    band: str


@dataclass(frozen=True)
class Phq9Response:
    baseline_total: int
    current_total: int
    #: None when the baseline is 0: no fall can be measured from nothing.
    is_response: bool | None
    fall_percent: float | None
    definition: str


@dataclass(frozen=True)
class Phq9Remission:
    total: int
    is_remission: bool
    definition: str


def _checked_item(value, name):
    if type(value) is not int or not 0 <= value <= ITEM_MAX:
        raise ValueError(f"{name} must be a whole number from 0 to {ITEM_MAX}, got {value!r}")
    return value


def _checked_items(items, count, scale):
    if not isinstance(items, tuple | list) or len(items) != count:
        raise ValueError(f"{scale} needs exactly {count} item scores, got {items!r}")
    return tuple(_checked_item(value, f"{scale} item {number}") for number, value in enumerate(items, 1))


def _checked_total(total, name):
    if type(total) is not int or not 0 <= total <= PHQ9_ITEMS * ITEM_MAX:
        raise ValueError(f"{name} must be a PHQ-9 total from 0 to {PHQ9_ITEMS * ITEM_MAX}, got {total!r}")
    return total


def _band(total, bands):
    return next(band for highest, band in bands if total <= highest)


def score_phq9(items, difficulty: int | None = None) -> Phq9Score:
    """The PHQ-9 total (0–27), its severity band and item 9; the difficulty item is kept apart.

    Exactly nine items, each 0–3, else ValueError (gpmanual.com; calcipedia.org, §4).
    """
    items = _checked_items(items, PHQ9_ITEMS, "PHQ-9")
    if difficulty is not None:
        _checked_item(difficulty, "PHQ-9 difficulty item")
    total = sum(items)
    return Phq9Score(total=total, band=_band(total, PHQ9_BANDS), item9=items[8], difficulty=difficulty)


def phq9_item9(items) -> int | None:
    """Item 9 of a PHQ-9 that may be only partly answered: its score (0–3), or None when not answered yet.

    Item 9 needs follow-up whatever the other items (§4), so it is read on its own.
    """
    if items is None:
        return None
    if not isinstance(items, tuple | list) or len(items) != PHQ9_ITEMS:
        raise ValueError(f"PHQ-9 needs exactly {PHQ9_ITEMS} item answers, got {items!r}")
    return None if items[8] is None else _checked_item(items[8], "PHQ-9 item 9")


def score_gad7(items) -> Gad7Score:
    """The GAD-7 total (0–21) and its severity band; exactly seven items, each 0–3, else ValueError (§4)."""
    total = sum(_checked_items(items, GAD7_ITEMS, "GAD-7"))
    return Gad7Score(total=total, band=_band(total, GAD7_BANDS))


def phq9_response(baseline_total: int, current_total: int, *,
                  min_fall_percent: int = PHQ9_RESPONSE_MIN_FALL_PERCENT) -> Phq9Response:
    """Response when the total fell by at least `min_fall_percent` of the series baseline.

    Exactly a 50% fall is a response. A baseline of 0 gives is_response None (not computable).
    Compared in whole numbers so that no rounding decides an edge case.
    """
    _checked_total(baseline_total, "baseline_total")
    _checked_total(current_total, "current_total")
    definition = f"response: ≥{min_fall_percent}% fall from the series baseline PHQ-9 total ({SOURCE})"
    if min_fall_percent != PHQ9_RESPONSE_MIN_FALL_PERCENT:
        definition = f"response: ≥{min_fall_percent}% fall from the series baseline PHQ-9 total (clinic setting)"
    if baseline_total == 0:
        return Phq9Response(baseline_total, current_total, None, None, definition)
    fall = baseline_total - current_total
    return Phq9Response(
        baseline_total, current_total,
        is_response=100 * fall >= min_fall_percent * baseline_total,
        fall_percent=round(100 * fall / baseline_total, 1),
        definition=definition,
    )


def phq9_remission(total: int, *, below: int = PHQ9_REMISSION_BELOW) -> Phq9Remission:
    """Remission when the PHQ-9 total is below 5 (a total of 5 is not remission; 4 is)."""
    _checked_total(total, "total")
    source = SOURCE if below == PHQ9_REMISSION_BELOW else "clinic setting"
    return Phq9Remission(total, total < below, f"remission: PHQ-9 total < {below} ({source})")
