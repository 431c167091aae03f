"""Booking from the schedule's time grid in Chromium, on a tablet: a physician clicks a free slot, finds
the patient by search, chooses the series and books; the block appears at that chair and time. A closed
day is shaded, says why, and offers nothing to book."""
import re
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS
from tests.browser.test_series_walk import ZONE, sign_in

pytestmark = pytest.mark.browser
PATIENT, MRN = "Robin Gridwalk", "GRID-0001"


def register_and_order(page, base_url, start):
    """The patient, registered, with a one-session booster series ordered for `start` at 09:00."""
    page.goto(f"{base_url}/patients/new")
    page.get_by_label("MRN").fill(MRN)
    page.get_by_label("Legal name").fill(PATIENT)
    page.get_by_label("Date of birth").fill("1979-03-08")
    page.get_by_label("Sex at birth").select_option("male")
    page.get_by_label("Could the patient become pregnant?").select_option("no")
    page.get_by_label("Indication", exact=True).select_option("trd")
    page.get_by_role("button", name="Register patient").click()
    page.get_by_role("link", name="Order a series").click()
    page.get_by_label("Protocol", exact=True).select_option(label="IV ketamine booster (v1)")
    page.get_by_label("Start date").fill(start.isoformat())
    page.get_by_label("Preferred start time").fill("09:00")
    page.get_by_role("button", name="Check the plan").click()
    page.get_by_role("button", name="Confirm and book").click()
    expect(page.get_by_text("IV ketamine booster ordered")).to_be_visible(timeout=TIMEOUT_MS)


@pytest.mark.parametrize("viewport", [{"width": 768, "height": 1024}])
def test_a_free_slot_is_booked_by_click_and_a_closed_day_offers_nothing(page, new_context, live_server):
    today = datetime.now(ZONE).date()
    day, closed = today + timedelta(days=61), today + timedelta(days=75)
    sign_in(page, live_server, "physician")
    register_and_order(page, live_server, today + timedelta(days=70))

    page.goto(f"{live_server}/schedule?day={day.isoformat()}")
    page.get_by_role("link", name=f"Free 10:00, book Chair 2 on {day:%A %d %B}").click()
    expect(page.get_by_test_id("slot")).to_contain_text(f"Chair 2 · {day:%A} {day.day} {day:%B %Y} · 10:00")
    page.get_by_label("Name or MRN").fill(MRN)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=f"Choose {PATIENT}").click()
    expect(page.get_by_test_id("chosen-patient")).to_have_text(PATIENT)
    series = page.get_by_role("radio", name="IV ketamine booster")
    expect(series).to_be_checked()
    expect(page.get_by_label("Chair").locator("option:checked")).to_have_text("Chair 2")
    expect(page.get_by_label("Start time")).to_have_value("10:00")
    page.get_by_role("button", name="Book", exact=True).click()

    expect(page.get_by_role("heading", level=2)).to_contain_text(f"{day:%A} {day.day} {day:%B %Y}")
    block = page.locator('section[data-chair="Chair 2"] [data-testid="session-block"]', has_text=PATIENT)
    expect(block).to_contain_text("10:00–")
    expect(block).to_have_class(re.compile(r"\bgr-r9\b"))  # the grid starts at 08:00: 8 rows of 15 minutes above
    expect(page.get_by_role("link", name=f"Free 10:00, book Chair 2 on {day:%A %d %B}")).to_have_count(0)

    admin = new_context().new_page()
    sign_in(admin, live_server, "admin")
    admin.goto(f"{live_server}/admin/clinic/closures")
    admin.get_by_label("Date").fill(closed.isoformat())
    admin.get_by_label("What it is").fill("Grid walk holiday")
    admin.get_by_role("button", name="Close the clinic that day").click()
    expect(admin.get_by_role("cell", name="Grid walk holiday")).to_be_visible()
    page.goto(f"{live_server}/schedule?day={closed.isoformat()}")
    expect(page.get_by_test_id("day-summary")).to_contain_text("Closed: Grid walk holiday. Nothing can be booked")
    grid = page.get_by_test_id("schedule-grid")
    expect(grid.get_by_text("Closed: Grid walk holiday").first).to_be_visible()
    expect(grid.get_by_role("link")).to_have_count(0)
