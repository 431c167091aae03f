"""The schedule's time grid layout (opsmgr.schedule.grid), without the app: 15-minute rows, sessions sized by
their length plus turnover, free time in half-hour slots from now on, and closed time worded as such."""
from pathlib import Path

from opsmgr.schedule import grid

EIGHT, SIX_PM = 8 * 60, 18 * 60


def kinds(column):
    return [(block.kind, block.row, block.span, grid.clock(block.starts)) for block in column.blocks]


def test_a_session_takes_its_rows_and_turnover_and_the_rest_is_cut_into_half_hour_slots():
    column = grid.column("Chair 1", [("visit", 9 * 60, 11 * 60)], first=EIGHT, last=12 * 60, hours=(EIGHT, SIX_PM),
                         turnover=15, bookable_from=0)
    assert kinds(column) == [
        ("free", 1, 2, "08:00"), ("free", 3, 2, "08:30"),
        ("session", 5, 8, "09:00"), ("turnover", 13, 1, "11:00"),
        ("free", 14, 1, "11:15"), ("free", 15, 2, "11:30"),
    ]


def test_hours_outside_opening_are_closed_and_time_before_now_is_past():
    column = grid.column("Chair 1", [], first=EIGHT, last=11 * 60, hours=(9 * 60, 10 * 60 + 30), turnover=15,
                         bookable_from=9 * 60 + 40)
    assert kinds(column) == [("closed", 1, 4, "08:00"), ("past", 5, 3, "09:00"), ("free", 8, 1, "09:45"),
                             ("free", 9, 2, "10:00"), ("closed", 11, 2, "10:30")]


def test_a_closed_day_is_one_closed_block_and_free_time_stays_whole_when_nobody_may_book():
    closed = grid.column("Chair 1", [], first=EIGHT, last=SIX_PM, hours=None, turnover=15, bookable_from=0)
    assert kinds(closed) == [("closed", 1, 40, "08:00")]
    whole = grid.column("Chair 1", [], first=EIGHT, last=SIX_PM, hours=(EIGHT, SIX_PM), turnover=15,
                        bookable_from=0, slot=None)
    assert kinds(whole) == [("free", 1, 40, "08:00")]


def test_an_odd_start_is_placed_on_its_quarter_hour_and_the_window_covers_hours_and_sessions():
    column = grid.column("Chair 1", [("visit", 9 * 60 + 7, 9 * 60 + 50)], first=EIGHT, last=10 * 60,
                         hours=(EIGHT, SIX_PM), turnover=0, bookable_from=0)
    assert ("session", 5, 4, "09:07") in kinds(column), "09:00 to 10:00: the rows it touches"
    assert grid.window([(EIGHT + 30, 17 * 60 + 15)], [(7 * 60 + 45, 9 * 60)]) == (7 * 60, SIX_PM)
    assert grid.window([], []) == (EIGHT, SIX_PM)
    assert grid.axis(EIGHT, 10 * 60) == ((1, "08:00"), (5, "09:00"))


def test_the_stylesheet_has_a_class_for_every_row_and_span_of_a_day():
    css = (Path(__file__).parents[1] / "opsmgr/static/css/schedule.css").read_text()
    assert f".gr-r{grid.MAX_ROWS}{{" in css and f".gr-s{grid.MAX_ROWS}{{" in css
