"""PHQ-9 and GAD-7 scoring, PHQ-9 response and remission: worked examples and every band edge. No app."""
import pytest

from opsmgr.rules.scales import (
    Phq9Remission,
    Phq9Response,
    phq9_remission,
    phq9_response,
    score_gad7,
    score_phq9,
)


def phq9_totalling(total, item9=0):
    """Nine valid items that add up to `total`, with item 9 as given."""
    items, rest = [], total - item9
    for _ in range(8):
        items.append(min(3, rest))
        rest -= items[-1]
    assert rest == 0
    return (*items, item9)


def gad7_totalling(total):
    items, rest = [], total
    for _ in range(7):
        items.append(min(3, rest))
        rest -= items[-1]
    return tuple(items)


@pytest.mark.parametrize("total,band", [
    (0, "minimal"), (4, "minimal"),
    (5, "mild"), (9, "mild"),
    (10, "moderate"), (14, "moderate"),
    (15, "moderately severe"), (19, "moderately severe"),
    (20, "severe"), (27, "severe"),
])
def test_phq9_band_edges(total, band):
    score = score_phq9(phq9_totalling(total, item9=min(total, 3)))
    assert (score.total, score.band) == (total, band)


@pytest.mark.parametrize("items,total,band,item9", [
    ((0, 0, 0, 0, 0, 0, 0, 0, 0), 0, "minimal", 0),
    ((1, 1, 1, 1, 1, 1, 1, 1, 1), 9, "mild", 1),
    ((2, 2, 1, 2, 1, 0, 1, 1, 0), 10, "moderate", 0),
    ((3, 3, 2, 3, 2, 2, 2, 2, 0), 19, "moderately severe", 0),
    ((3, 3, 3, 3, 2, 2, 2, 1, 1), 20, "severe", 1),
    ((3, 3, 3, 3, 3, 3, 3, 3, 3), 27, "severe", 3),
])
def test_phq9_worked_examples(items, total, band, item9):
    score = score_phq9(items)
    assert (score.total, score.band, score.item9) == (total, band, item9)


def test_phq9_accepts_a_list():
    assert score_phq9([1] * 9).total == 9


@pytest.mark.parametrize("difficulty", [0, 1, 2, 3])
def test_phq9_difficulty_is_recorded_but_not_counted(difficulty):
    score = score_phq9((1,) * 9, difficulty)
    assert (score.total, score.difficulty) == (9, difficulty)


@pytest.mark.parametrize("items", [
    (0,) * 8, (0,) * 10, (), (0,) * 8 + (4,), (0,) * 8 + (-1,), (0,) * 8 + (1.5,), (0,) * 8 + (True,),
    (0,) * 8 + ("1",), (0,) * 8 + (None,), None, "000000000",
])
def test_phq9_invalid_items_raise(items):
    with pytest.raises(ValueError):
        score_phq9(items)


@pytest.mark.parametrize("difficulty", [-1, 4, 1.0, "2"])
def test_phq9_invalid_difficulty_raises(difficulty):
    with pytest.raises(ValueError):
        score_phq9((0,) * 9, difficulty)


@pytest.mark.parametrize("total,band", [
    (0, "minimal"), (4, "minimal"),
    (5, "mild"), (9, "mild"),
    (10, "moderate"), (14, "moderate"),
    (15, "severe"), (21, "severe"),
])
def test_gad7_band_edges(total, band):
    score = score_gad7(gad7_totalling(total))
    assert (score.total, score.band) == (total, band)


@pytest.mark.parametrize("items,total,band", [
    ((0, 1, 0, 1, 0, 1, 1), 4, "minimal"),
    ((2, 2, 1, 1, 1, 1, 2), 10, "moderate"),
    ((3, 3, 3, 2, 2, 1, 1), 15, "severe"),
])
def test_gad7_worked_examples(items, total, band):
    assert (score_gad7(items).total, score_gad7(items).band) == (total, band)


@pytest.mark.parametrize("items", [(0,) * 6, (0,) * 8, (0,) * 9, (0,) * 6 + (4,), (0,) * 6 + (-1,), None])
def test_gad7_invalid_items_raise(items):
    with pytest.raises(ValueError):
        score_gad7(items)


@pytest.mark.parametrize("baseline,current,is_response,fall_percent", [
    (20, 10, True, 50.0),      # exactly 50%: a response
    (20, 11, False, 45.0),     # just short
    (20, 9, True, 55.0),
    (15, 7, True, 53.3),       # odd baseline: 7.5 would be the line
    (15, 8, False, 46.7),
    (9, 4, True, 55.6),
    (9, 5, False, 44.4),
    (10, 12, False, -20.0),    # worse
    (10, 0, True, 100.0),
])
def test_phq9_response_edges(baseline, current, is_response, fall_percent):
    result = phq9_response(baseline, current)
    assert (result.is_response, result.fall_percent) == (is_response, fall_percent)


def test_phq9_response_from_a_zero_baseline_is_not_computable():
    assert phq9_response(0, 0) == Phq9Response(0, 0, None, None, phq9_response(0, 0).definition)
    assert phq9_response(0, 3).is_response is None


def test_phq9_response_carries_its_definition_and_source():
    assert phq9_response(20, 10).definition == (
        "response: ≥50% fall from the series baseline PHQ-9 total (Psychiatric Services 2020)")


def test_phq9_response_threshold_is_configurable_and_the_definition_says_so():
    result = phq9_response(20, 11, min_fall_percent=40)
    assert result.is_response is True
    assert "≥40%" in result.definition and "clinic setting" in result.definition


@pytest.mark.parametrize("total,is_remission", [(0, True), (4, True), (5, False), (6, False), (27, False)])
def test_phq9_remission_edges(total, is_remission):
    assert phq9_remission(total) == Phq9Remission(
        total, is_remission, "remission: PHQ-9 total < 5 (Psychiatric Services 2020)")


@pytest.mark.parametrize("call", [
    lambda: phq9_response(-1, 0), lambda: phq9_response(28, 0), lambda: phq9_response(10, 28),
    lambda: phq9_response(10.0, 5), lambda: phq9_remission(-1), lambda: phq9_remission(28),
    lambda: phq9_remission(None),
])
def test_totals_outside_the_phq9_range_raise(call):
    with pytest.raises(ValueError):
        call()
