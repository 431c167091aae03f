"""The live board and the in-chair alert in Chromium, on tablets, with the clinic clock moving (issue 14).

The nurse keeps today's board open; the infusing demo patient's next reading falls due and, at the next
poll, the board says so in words without a reload. The nurse records a reading that raises an alert; the
physician, on another tablet, sees it counted in the navigation and listed on their home, opens the
chair page from there and acknowledges it; the count and the list entry go, and the home names who
acknowledged it. The page's timers run on Playwright's clock: fast-forwarding it is the poll's turn.
"""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_chair_walk import TABLET, flash, open_main_menu, record_vitals, sign_in

pytestmark = pytest.mark.browser

#: DEMO-0005: infusing on today's demo board, its next reading due 5 minutes after the seed (demo.chair).
PATIENT = "Casey Demo-Nakamura"
PHYSICIAN = "Demo Physician (fictional)"


@pytest.fixture
def viewport():
    return TABLET


def test_an_overdue_reading_shows_without_reload_and_the_physician_sees_the_alert_until_acknowledged(
        clocked_live_server, page, new_context):
    server = clocked_live_server
    page.clock.install()
    sign_in(page, server.url, "nurse")
    page.goto(f"{server.url}/today")
    card = page.locator(".board-session", has_text=PATIENT)
    expect(card.get_by_test_id("vitals-due")).to_contain_text(re.compile(r"Next vitals: \d\d:\d\d\s+\(in \d+ min"))
    page.evaluate("window.sameDocument = true")

    server.clock.advance(minutes=6)
    page.clock.fast_forward("00:16")  # the next poll
    expect(card.get_by_test_id("vitals-due")).to_contain_text("Reading overdue by 1 min — record vitals.")
    expect(page.get_by_test_id("overdue-summary")).to_contain_text(PATIENT)
    expect(page.get_by_test_id("board-announcer")).to_contain_text(f"{PATIENT}: reading overdue, record vitals.")
    assert page.evaluate("window.sameDocument === true"), "updated in place, not reloaded"

    card.get_by_role("link", name=f"Record vitals — {PATIENT}").click()
    record_vitals(page, server, 186, 112)

    physician = new_context().new_page()
    sign_in(physician, server.url, "physician")
    open_main_menu(physician)
    badge = physician.get_by_role("navigation", name="Main").get_by_test_id("alert-badge")
    expect(badge).to_have_text("1 unacknowledged in-chair alert")
    listed = physician.get_by_test_id("open-alert").filter(has_text=PATIENT)
    expect(listed).to_contain_text("Blood pressure alert")
    listed.get_by_role("link").click()
    alert = physician.get_by_role("article").filter(has_text="Blood pressure alert")
    alert.get_by_label("Action taken").select_option(label="Continue")
    alert.get_by_label("Note").fill("Rechecked at once: 150/95, calm. Continue and recheck in 5 minutes.")
    alert.get_by_role("button", name="Acknowledge alert").click()
    expect(flash(physician, "The alert is acknowledged.")).to_be_visible()
    expect(physician.get_by_test_id("acknowledged-by")).to_contain_text(f"Acknowledged by {PHYSICIAN}")

    physician.goto(f"{server.url}/signing")
    expect(physician.get_by_test_id("alert-badge")).to_have_count(0)
    expect(physician.get_by_test_id("open-alert")).to_have_count(0)
    expect(physician.get_by_test_id("acknowledged-alert").filter(has_text=PATIENT)).to_contain_text(
        re.compile(rf"Acknowledged by {re.escape(PHYSICIAN)}, MD at \d\d:\d\d: Continue\."))
