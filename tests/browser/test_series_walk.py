"""The scheduling walk in Chromium: register, order a series whose 23:30 start cannot be kept (the
plan lists every session with the time it would get and why; nothing is booked before the physician
confirms; "Change" keeps what was typed), see the calendar, move and shift."""
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


def sessions_shown(page, base_url, weeks):
    """How many of the patient's sessions the schedule shows over these weeks (by their Mondays): each day
    the week's row counts sessions on is opened as its time grid."""
    shown = 0
    for monday in weeks:
        page.goto(f"{base_url}/schedule?day={monday.isoformat()}")
        expect(page.get_by_role("heading", name="Schedule")).to_be_visible()
        busy = page.locator(".sched-day:not([data-sessions='0'])")
        for day in [busy.nth(index).get_attribute("data-day") for index in range(busy.count())]:
            page.goto(f"{base_url}/schedule?day={day}")
            shown += page.get_by_test_id("session-block").filter(has_text=PATIENT).count()
    return shown


def test_a_2330_start_is_confirmed_session_by_session_before_anything_is_booked(page, live_server):
    # Two weeks ahead, so nothing of the walk is in the past or near other walks' bookings; every day is open.
    start = datetime.now(ZONE).date() + timedelta(days=14)
    monday = start - timedelta(days=start.weekday())
    weeks = [monday + timedelta(days=7 * n) for n in range(4)]
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

    # The physician orders an IV induction at 23:30, after closing: the plan says so for every session.
    sign_in(page, live_server, "physician")
    page.goto(chart_url)
    page.get_by_role("link", name="Order a series").click()
    page.get_by_label("Protocol", exact=True).select_option(label="IV ketamine induction (v1)")
    page.get_by_label("Start date").fill(start.isoformat())
    page.get_by_label("Preferred start time").fill("23:30")
    page.get_by_role("button", name="Check the plan").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Check the plan")
    expect(page.get_by_test_id("plan-summary")).to_contain_text("Nothing is booked yet.")
    expect(page.get_by_test_id("plan-summary")).to_contain_text("6 cannot be at the day or time you asked")
    rows = page.get_by_test_id("plan").locator("tbody tr")
    expect(rows).to_have_count(6)
    for index in range(6):
        row = rows.nth(index)
        expect(row).to_contain_text("23:30")
        expect(row).to_contain_text("Moved")
        expect(row).to_contain_text("23:30 is after closing time (18:00).")
    expect(rows.first).to_contain_text(f"{start:%a %d %b %Y} 08:00")

    # Nothing is on the calendar before the physician confirms.
    calendar = page.context.new_page()
    assert sessions_shown(calendar, live_server, weeks) == 0
    calendar.close()

    # "Change" brings the form back with everything typed; the plan again, then confirm.
    page.get_by_role("button", name="Change").click()
    expect(page.get_by_label("Preferred start time")).to_have_value("23:30")
    expect(page.get_by_label("Start date")).to_have_value(start.isoformat())
    page.get_by_role("button", name="Check the plan").click()
    page.get_by_role("button", name="Confirm and book").click()
    expect(page.get_by_text("6 sessions booked")).to_be_visible()
    expect(page.get_by_text("preferred time 23:30")).to_be_visible()
    expect(page.locator("tbody tr", has_text="08:00")).to_have_count(6)
    series_url = page.url
    sign_out(page)

    # The coordinator sees all six on the calendar, then moves the third a day later and shifts the rest.
    sign_in(page, live_server, "coordinator")
    assert sessions_shown(page, live_server, weeks) == 6
    page.goto(series_url)
    page.get_by_role("link", name="Open session 3").click()
    new_day = page.get_by_label("New date")
    moved_to = datetime.fromisoformat(new_day.input_value()).date() + timedelta(days=1)
    new_day.fill(moved_to.isoformat())
    page.get_by_label(re.compile("Shift the later sessions")).check()
    page.get_by_role("button", name="Move session").click()
    expect(page.get_by_text(re.compile(r"Session moved; 3 later sessions shifted"))).to_be_visible()
    assert sessions_shown(page, live_server, weeks) == 6
    page.goto(series_url)
    expect(page.get_by_role("row").filter(has_text=moved_to.strftime("%a %d %b %Y"))).to_have_count(1)
