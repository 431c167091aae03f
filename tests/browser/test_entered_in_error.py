"""A wrong reading struck out at the chair, in Chromium, on a tablet, as the nurse.

On the demo's infusing session the nurse records 185/112 (a typing slip), which raises an alert. She
marks the reading entered in error: without a reason she is told at the field; with one, the reading
stays in the table struck through with who, when and why, and the alert it raised is withdrawn (no
acknowledgement asked for), with the reason beside it.
"""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_chair_walk import NURSE, TABLET, flash, record_vitals, sign_in

pytestmark = pytest.mark.browser

#: DEMO-0005: an IV induction session infusing on today's board (see test_discharge_signoff).
PATIENT = "Casey Demo-Nakamura"
REASON = "Typed 185/112 for 158/92: the cuff was on the wrong arm."


@pytest.fixture
def viewport():
    return TABLET


def test_a_wrong_reading_is_struck_out_with_who_when_and_why_and_its_alert_withdrawn(page, clocked_live_server):
    server = clocked_live_server
    sign_in(page, server.url, "nurse")
    page.locator(".board-session", has_text=PATIENT).get_by_role("link", name=f"Record vitals — {PATIENT}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(rf"^At the chair: {PATIENT}, session \d+$"))

    server.clock.advance(minutes=5)
    page.reload()
    record_vitals(page, server, 185, 112)
    taken = server.local_now().strftime("%H:%M")
    alert = page.get_by_test_id("alert").filter(has_text="185/112")
    expect(alert).to_contain_text("Not acknowledged")
    expect(alert.get_by_role("button", name="Acknowledge alert")).to_be_visible()

    row = page.get_by_test_id("reading").filter(has_text="185/112")
    row.locator("summary", has_text="Mark entered in error").click()
    row.get_by_role("button", name=re.compile("^Mark entered in error")).click()
    row = page.get_by_test_id("reading").filter(has_text="185/112")
    expect(row.get_by_text("Say why this entry is wrong")).to_be_visible()
    reason = row.get_by_label("Why is it wrong?")
    reason.fill(REASON)
    row.get_by_role("button", name=re.compile("^Mark entered in error")).click()

    expect(flash(page, "The reading is marked entered in error.")).to_be_visible()
    row = page.get_by_test_id("reading").filter(has_text="185/112")
    expect(row.locator("del", has_text="185/112")).to_be_visible()
    expect(row.get_by_test_id("in-error-mark")).to_have_text(
        re.compile(rf"Entered in error Marked by {re.escape(NURSE)}, RN at \d\d:\d\d: {re.escape(REASON)}"))
    expect(row.locator("summary")).to_have_count(0)
    alert = page.get_by_test_id("alert").filter(has_text="185/112")
    expect(alert).to_contain_text("Withdrawn")
    expect(alert).not_to_contain_text("Not acknowledged")
    expect(alert.get_by_test_id("alert-withdrawn")).to_contain_text(
        f"the {taken} reading that raised it was marked entered in error by {NURSE}")
    expect(alert.get_by_test_id("alert-withdrawn")).to_contain_text(REASON)
    expect(alert.get_by_role("button", name="Acknowledge alert")).to_have_count(0)
