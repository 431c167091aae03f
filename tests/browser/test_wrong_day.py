"""The right session on the right day, and no dose offered while the start gate is not clear, in Chromium
on a tablet, as the nurse.

A demo patient booked for next week turns up today: their session page says plainly that it is booked
for another day and offers no check-in, only "Move it to today"; moved to the next free quarter hour
(through the booking checks), the patient is checked in. On a full afternoon the move is refused with
the reason and nothing changes. And a cleared session whose checklist vitals have gone stale reads
"Not clear" at the start gate, where "Start dose" is no longer offered.
"""
import re
from datetime import datetime, time, timedelta

import pytest
from playwright.sync_api import expect

from opsmgr.core.clock import system_now
from tests.browser.conftest import (
    CLINIC_ZONE,
    AdjustableClock,
    ClockedServer,
    migrated_app,
    seed_demo,
    serving,
)
from tests.browser.test_chair_walk import TABLET, flash, go_to_board, open_main_menu, sign_in

pytestmark = pytest.mark.browser

#: DEMO-0010 in the demo clinic: an IV booster booked a week from today (every day open in the browser
#: tests), at 08:00 on Chair 3; nothing else of theirs is booked.
NEXT_WEEK = "Harper Demo-Valdés"
#: DEMO-0007: an esketamine session cleared on today's board, its checklist (with the vitals) filled as
#: the demo is seeded; the vitals are too old for the start gate 30 minutes later (ClinicalPolicy default).
CLEARED = "Quinn Demo-Fairweather"
VITALS_MAX_AGE_MINUTES = 30
#: A morning clinic clock: today's demo board (laid out from 10:30 at the earliest) leaves Chair 3 free
#: from about noon, so a 120-minute booster moved to today fits before closing (18:00). At
#: CLOCKED_START (15:50) every chair is taken until closing and the move is refused (see below).
MORNING = time(9, 0)


@pytest.fixture
def viewport():
    return TABLET


@pytest.fixture
def morning_server(tmp_path):
    """The demo clinic as clocked_live_server makes it, on a clock starting at MORNING clinic time today."""
    today = system_now().astimezone(CLINIC_ZONE).date()
    clock = AdjustableClock(datetime.combine(today, MORNING, tzinfo=CLINIC_ZONE) - system_now())
    app = migrated_app(tmp_path, "morning", lambda: seed_demo(clock), CLOCK=clock)
    with serving(app) as url:
        yield ClockedServer(url, clock)


def booked_day(server):
    """How the page names the day of the next-week booking (a week from the server's today)."""
    day = server.local_now().date() + timedelta(days=7)
    return f"{day:%a} {day.day} {day:%b}"


def open_next_weeks_session(page):
    """From the schedule: next week, the patient's session block."""
    open_main_menu(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Schedule", exact=True).click()
    expect(page.get_by_role("heading", name="Schedule", level=1)).to_be_visible()
    page.get_by_role("link", name="Next week").click()
    expect(page.get_by_text(re.compile(r"^Week of "))).to_be_visible()
    # "Next week" opens the same weekday a week on: the booking's day, as a time grid.
    page.get_by_role("link", name=NEXT_WEEK, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Session 1: {NEXT_WEEK}")


def detail(page, term):
    """The value of one term of the session page's summary (When, Chair, Status...)."""
    return page.locator(f"dl dt:text-is('{term}') + dd")


def check_in_button(page):
    return page.get_by_role("button", name=re.compile(r"^Check in"))


def test_a_session_booked_for_another_day_is_moved_to_today_then_checked_in(page, morning_server):
    server = morning_server
    sign_in(page, server.url, "nurse")
    expect(page.get_by_role("heading", name="Today's chairs", level=1)).to_be_visible()
    expect(page.locator(".board-session", has_text=NEXT_WEEK)).to_have_count(0)

    # The plain refusal, the move offered, and no check-in.
    open_next_weeks_session(page)
    session_url = page.url
    other_day = page.get_by_test_id("other-day")
    expect(other_day).to_contain_text(
        f"This session is booked for {booked_day(server)}, not today. Move it to today first.")
    expect(other_day.get_by_role("button", name="Move it to today")).to_be_visible()
    expect(check_in_button(page)).to_have_count(0)
    expect(detail(page, "Status")).to_have_text("Scheduled")

    # Moved to today's first free quarter hour, the session can be checked in.
    other_day.get_by_role("button", name="Move it to today").click()
    moved = flash(page, re.compile(r"Moved to today, \d\d:\d\d on .+\. Check the patient in when they are ready\."))
    expect(moved).to_be_visible()
    expect(page).to_have_url(session_url)
    starts = re.search(r"Moved to today, (\d\d):(\d\d) on (.+?)\.", moved.inner_text())
    hour, minute, chair = int(starts[1]), int(starts[2]), starts[3]
    assert minute % 15 == 0, f"moved to {hour}:{minute:02d}, not a quarter hour"
    assert time(hour, minute) >= server.local_now().time().replace(second=0, microsecond=0)
    today = server.local_now().strftime("%A %d %B %Y")
    expect(detail(page, "When")).to_contain_text(f"{today}, {hour:02d}:{minute:02d}–")
    expect(page.get_by_test_id("other-day")).to_have_count(0)
    check_in_button(page).click()
    expect(flash(page, f"{NEXT_WEEK}: Checked in.")).to_be_visible()
    expect(detail(page, "Status")).to_have_text("Checked in")
    expect(check_in_button(page)).to_have_count(0)

    # On today's board, on the chair it was moved to, ready for the checklist.
    go_to_board(page)
    card = page.get_by_role("region", name=chair).locator(".board-session", has_text=NEXT_WEEK)
    expect(card).to_contain_text(f"{hour:02d}:{minute:02d}–")
    expect(card).to_contain_text("Next: Start checklist")
    expect(card.get_by_role("link", name=f"Start checklist — {NEXT_WEEK}")).to_be_visible()


def test_the_move_to_today_is_refused_plainly_when_no_chair_is_free(page, clocked_live_server):
    """At CLOCKED_START every chair is taken from the next quarter hour to closing on the demo board."""
    server = clocked_live_server
    sign_in(page, server.url, "nurse")
    open_next_weeks_session(page)
    page.get_by_role("button", name="Move it to today").click()
    other_day = page.get_by_test_id("other-day")
    expect(other_day).to_have_attribute("role", "alert")
    expect(other_day.get_by_test_id("move-to-today-error")).to_have_text(re.compile(
        r"^Not moved: No chair is free today from \d\d:\d\d to closing for 120 minutes\. "
        r"A coordinator can book another time\.$"))
    # Still booked for next week: the same refusal and move, and still no check-in.
    expect(other_day).to_contain_text(f"This session is booked for {booked_day(server)}, not today.")
    expect(other_day.get_by_role("button", name="Move it to today")).to_be_visible()
    expect(check_in_button(page)).to_have_count(0)
    go_to_board(page)
    expect(page.locator(".board-session", has_text=NEXT_WEEK)).to_have_count(0)


def test_start_dose_is_not_offered_while_the_start_gate_is_not_clear(page, clocked_live_server):
    server = clocked_live_server
    sign_in(page, server.url, "nurse")
    card = page.locator(".board-session", has_text=CLEARED)
    expect(card).to_contain_text("Cleared")
    card.get_by_role("link", name=f"Start dose — {CLEARED}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(rf"^At the chair: {CLEARED}, session \d+$"))
    gate = page.get_by_role("region", name="Start gate")
    expect(page.get_by_test_id("start-gate-outcome")).to_contain_text("Clear: nothing stops the dose.")
    expect(gate.get_by_role("button", name=re.compile(r"^Start dose"))).to_be_visible()
    expect(page.get_by_test_id("start-not-offered")).to_have_count(0)

    # The checklist's vitals age past the limit while the patient waits (steps under the idle limit).
    for minutes in (14, 14, VITALS_MAX_AGE_MINUTES + 1 - 28):
        server.clock.advance(minutes=minutes)
        page.reload()
    expect(page.get_by_test_id("start-gate-outcome")).to_contain_text("Not clear: 1 finding still open.")
    expect(gate.locator("[data-code='VITALS_STALE']")).to_contain_text(
        re.compile(rf"The vital signs are \d+ minutes old \(limit {VITALS_MAX_AGE_MINUTES}\): take a new set\."))
    expect(page.get_by_test_id("start-not-offered")).to_have_text("The dose can start once nothing above is open.")
    expect(page.get_by_role("button", name=re.compile(r"^Start dose"))).to_have_count(0)
