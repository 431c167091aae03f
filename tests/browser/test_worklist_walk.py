"""The coordinator works the follow-up list in Chromium on a tablet, and the physician sees the result.

On the demo clinic (its commit plans the follow-ups), the coordinator lands on the worklist, logs a
next-day check-in call with a PHQ-9 taken by phone whose item 9 is 1, and escalates another call with a
reason. The physician's home then shows the same-day task raised by the phone PHQ-9 and the escalation.
"""
import re

import pytest
from playwright.sync_api import expect

from opsmgr.core.clock import system_now
from opsmgr.extensions import db
from tests.browser.conftest import CLINIC_ZONE, ClockedServer, migrated_app, seed_demo, serving
from tests.browser.test_chair_walk import TABLET, flash, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def viewport():
    return TABLET


@pytest.fixture
def demo_server(tmp_path):
    """The demo clinic on the real clock (the follow-ups are due relative to today)."""
    from tests.browser.conftest import AdjustableClock

    clock = AdjustableClock()

    def seed():
        seed_demo(clock)
        db.session.commit()  # plans the follow-ups

    app = migrated_app(tmp_path, "worklist", seed, CLOCK=clock)
    with serving(app) as url:
        yield ClockedServer(url, clock)


def work_first(page, kind):
    row = page.get_by_test_id("follow-up").filter(has_text=kind).first
    patient = row.get_by_role("link").first.inner_text()
    row.get_by_role("link", name=re.compile(r"^Work it")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(kind)
    return patient


def test_the_coordinator_logs_a_call_with_a_phone_phq9_and_escalates_another(demo_server, page, new_context):
    assert system_now().astimezone(CLINIC_ZONE)  # the demo is laid out around today
    sign_in(page, demo_server.url, "coordinator")
    expect(page.get_by_role("heading", name="Follow-up worklist", level=1)).to_be_visible()
    calls = page.get_by_test_id("follow-up").filter(has_text="Next-day check-in call")
    expect(calls.first).to_be_visible()
    count = calls.count()
    assert count >= 2

    called = work_first(page, "Next-day check-in call")
    page.get_by_label("What happened").fill("Reached. Tired, low mood since yesterday; safety plan reviewed.")
    page.get_by_text("PHQ-9 taken by phone (optional)").click()
    for number in range(1, 10):
        group = page.get_by_role("group", name=re.compile(rf"^{number}\. "))
        group.get_by_label("1: Several days" if number in (1, 2, 9) else "0: Not at all").check()
    page.get_by_role("group", name=re.compile(r"^If any problems")).get_by_label("1: Somewhat difficult").check()
    page.get_by_role("button", name="Mark done").click()
    expect(flash(page, "Next-day check-in call for")).to_be_visible()
    expect(page.get_by_test_id("follow-up").filter(has_text="Next-day check-in call")).to_have_count(count - 1)

    escalated = work_first(page, "Next-day check-in call")
    page.get_by_label("Why a physician should look at this").fill("Asks whether to skip Friday's session.")
    page.get_by_role("button", name="Escalate to a physician").click()
    expect(flash(page, "Passed to a physician")).to_be_visible()
    expect(page.get_by_test_id("follow-up").filter(has_text="Next-day check-in call")).to_have_count(count - 2)

    physician = new_context().new_page()
    sign_in(physician, demo_server.url, "physician")
    expect(physician.get_by_role("heading", name="Tasks and signing", level=1)).to_be_visible()
    reviews = physician.locator("#reviews")
    expect(reviews.get_by_test_id("review").filter(has_text="Asks whether to skip Friday's session.")
           .filter(has_text=escalated)).to_be_visible()
    expect(physician.locator("#tasks").filter(has_text=called)).to_contain_text("PHQ-9 by phone")
