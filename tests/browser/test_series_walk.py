"""The scheduling walk in Chromium: register, order, see the calendar, move and shift, see the board."""
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.browser
ZONE = ZoneInfo("America/New_York")  # TestConfig's clinic zone
PATIENT = "Casey Browserwalk"


def sign_in(page, base_url, username):
    page.goto(f"{base_url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def sessions_shown(page, base_url, monday):
    page.goto(f"{base_url}/schedule?start={monday.isoformat()}")
    return page.locator(".cal-session", has_text=PATIENT).count()


def test_register_order_see_six_move_the_third_and_the_board_shows_today(page, live_server):
    today = datetime.now(ZONE).date()
    # The coordinator registers the patient.
    sign_in(page, live_server, "coordinator")
    page.get_by_role("link", name="Patients").click()
    page.get_by_role("link", name="Register patient").click()
    page.get_by_label("MRN").fill("BR-0001")
    page.get_by_label("Legal name").fill(PATIENT)
    page.get_by_label("Date of birth").fill("1984-05-17")
    page.get_by_label("Sex at birth").select_option("female")
    page.get_by_label("Could the patient become pregnant?").select_option("no")
    page.get_by_label("Indication", exact=True).select_option("trd")
    page.get_by_role("button", name="Register patient").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(PATIENT)
    chart_url = page.url
    sign_out(page)

    # The physician orders an IV induction starting today.
    sign_in(page, live_server, "physician")
    page.goto(chart_url)
    page.get_by_role("link", name="Order a series").click()
    page.get_by_label("Protocol", exact=True).select_option(label="IV ketamine induction (v1)")
    page.get_by_label("Start date").fill(today.isoformat())
    page.get_by_label("Preferred start time").fill("09:00")
    page.get_by_role("button", name="Order and plan sessions").click()
    expect(page.get_by_text("6 sessions planned")).to_be_visible()
    series_url = page.url
    sign_out(page)

    # The coordinator sees all six on the calendar, then moves the third a day later and shifts the rest.
    sign_in(page, live_server, "coordinator")
    monday = today - timedelta(days=today.weekday())
    weeks = [monday + timedelta(days=7 * n) for n in range(3)]
    assert sum(sessions_shown(page, live_server, week) for week in weeks) == 6
    page.goto(series_url)
    page.get_by_role("link", name="Open session 3").click()
    new_day = page.get_by_label("New date")
    moved_to = datetime.fromisoformat(new_day.input_value()).date() + timedelta(days=1)
    new_day.fill(moved_to.isoformat())
    page.get_by_label(re.compile("Shift the later sessions")).check()
    page.get_by_role("button", name="Move session").click()
    expect(page.get_by_text(re.compile(r"Session moved; 3 later sessions shifted"))).to_be_visible()
    assert sum(sessions_shown(page, live_server, week) for week in weeks + [monday + timedelta(days=21)]) == 6
    page.goto(series_url)
    expect(page.get_by_role("row").filter(has_text=moved_to.strftime("%a %d %b %Y"))).to_have_count(1)
    sign_out(page)

    # The nurse's board shows today's session with what to do next.
    sign_in(page, live_server, "nurse")
    expect(page.get_by_role("heading", name="Today's chairs")).to_be_visible()
    card = page.locator(".board-session", has_text=PATIENT)
    expect(card).to_have_count(1)
    expect(card).to_contain_text("Next: Check in")
    card.get_by_role("button", name=re.compile("^Check in")).click()
    expect(page.locator(".board-session", has_text=PATIENT)).to_contain_text("Checked in")
