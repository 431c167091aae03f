"""A refused discharge signed off by the physician, in Chromium, on two tablets, with the clinic clock moving.

The nurse carries the demo's infusing session (DEMO-0005) to the end of the infusion and into recovery,
is not offered the discharge while the observation runs, waits it out, records the pre-discharge
vitals and submits the discharge with MOAA/S 4: refused, and the answers are kept as a pending
assessment. The physician, on another tablet, finds the session on their home under "Waiting for
your override", opens it and sees the nurse's answers and the override form at once (nothing to
retype), and overrides with a reason and their password. The nurse reloads: the gate is clear, the
form still holds the answers, and the patient is discharged.
"""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_PASSWORD
from tests.browser.test_chair_walk import NURSE, PHYSICIAN, TABLET, flash, go_to_board, record_vitals, sign_in, status

pytestmark = pytest.mark.browser

#: DEMO-0005 in the demo clinic: an IV induction session infusing on today's board. The seed started the
#: dose 25 minutes before the clock (CLOCKED_START) with readings at 0, 10 and 20 minutes; the 40-minute
#: infusion ends 15 minutes after the clock starts.
PATIENT = "Casey Demo-Nakamura"
MOAAS_4 = "4 – lethargic response to name"
CONDITION = "Drowsy, opens her eyes to her name; steady with an arm; escort here and briefed."
OVERRIDE_REASON = "Seen at the chair: MOAA/S 4 is her usual level after a session; escort stays with her tonight."
FINDING = "MENTAL_STATUS_NOT_BASELINE"


@pytest.fixture
def viewport():
    return TABLET


def card(page):
    """This patient's card on today's board, after opening the board from the menu."""
    go_to_board(page)
    return page.locator(".board-session", has_text=PATIENT)


def timepoint(page, label):
    return page.get_by_test_id("timeline").get_by_role("row").filter(has_text=label)


def fill_discharge_with_moaas_4(page):
    page.get_by_label("Mental status (MOAA/S)").select_option(label=MOAAS_4)
    page.get_by_label("Is the escort here to take the patient home?").select_option(label="Yes")
    page.get_by_label("Were the discharge instructions given?").select_option(label="Yes")
    page.get_by_label("Condition at discharge").fill(CONDITION)
    page.get_by_role("button", name="Discharge", exact=True).click()


def expect_the_answers_kept(page):
    """The discharge form holds the nurse's refused answers."""
    expect(page.get_by_label("Mental status (MOAA/S)")).to_have_value("4")
    expect(page.get_by_label("Is the escort here to take the patient home?")).to_have_value("yes")
    expect(page.get_by_label("Were the discharge instructions given?")).to_have_value("yes")
    expect(page.get_by_label("Condition at discharge")).to_have_value(CONDITION)


def test_a_refused_discharge_waits_for_the_physicians_override_then_goes_through(
        page, new_context, clocked_live_server):
    server = clocked_live_server
    base = server.url

    # The nurse opens the infusing session from today's board: three readings already taken.
    sign_in(page, base, "nurse")
    expect(page.get_by_role("heading", name="Today's chairs", level=1)).to_be_visible()
    casey = page.locator(".board-session", has_text=PATIENT)
    expect(casey).to_contain_text("Infusing")
    casey.get_by_role("link", name=f"Record vitals — {PATIENT}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(rf"^At the chair: {PATIENT}, session \d+$"))
    chair_url = page.url.split("#")[0]
    expect(status(page)).to_have_text("Infusing")
    expect(page.get_by_test_id("readings").locator("tbody tr")).to_have_count(3)

    # The 30-minute reading, then the reading at the end and the end of the infusion (steps under the
    # 15-minute idle limit, a request at each).
    server.clock.advance(minutes=5)
    page.reload()
    record_vitals(page, server, 132, 84, moaas="4")
    expect(timepoint(page, "Infusion 30 min")).to_contain_text("Taken")
    server.clock.advance(minutes=10)
    page.reload()
    record_vitals(page, server, 128, 82, moaas="4")
    page.get_by_role("button", name="End infusion").click()
    expect(flash(page, "The infusion has ended; the recovery observation has started.")).to_be_visible()
    expect(status(page)).to_have_text("Recovery")

    # While the observation runs the discharge is not offered, and the page says why.
    waiting = page.get_by_test_id("discharge-not-offered")
    expect(waiting).to_contain_text(re.compile(r"The minimum observation ends in \d+ min\."))
    expect(page.get_by_test_id("discharge-gate-outcome")).to_contain_text("Not clear")
    expect(page.get_by_role("button", name="Discharge", exact=True)).to_have_count(0)
    expect(page.get_by_label("Condition at discharge")).to_have_count(0)

    # The recovery reading at 15 minutes, then the end of the 30-minute observation.
    server.clock.advance(minutes=10)
    page.reload()
    server.clock.advance(minutes=5)  # 15 minutes after the end
    card(page).get_by_role("link", name=f"Discharge — {PATIENT}").click()
    record_vitals(page, server, 126, 80, heart_rate=70, moaas="4")
    expect(timepoint(page, "Recovery 15 min")).to_contain_text("Taken")
    expect(page.get_by_test_id("discharge-not-offered")).to_be_visible()
    server.clock.advance(minutes=10)  # 25 minutes after the end
    page.reload()
    expect(page.get_by_test_id("discharge-not-offered")).to_contain_text("The minimum observation ends in")
    server.clock.advance(minutes=6)  # 31 minutes after the end
    page.reload()
    expect(page.get_by_test_id("discharge-not-offered")).to_have_count(0)

    # The pre-discharge vitals, then the discharge with MOAA/S 4: refused, and the answers are kept.
    record_vitals(page, server, 124, 78, heart_rate=68, moaas="4")
    expect(timepoint(page, "Before discharge")).to_contain_text("Taken")
    fill_discharge_with_moaas_4(page)
    refused = page.get_by_test_id("refused")
    expect(refused).to_contain_text("Needs a physician's override")
    expect(refused.get_by_text(FINDING)).not_to_be_visible()  # the code is for support, out of sight
    expect(refused).to_contain_text("MOAA/S 4 is not back to baseline (5).")
    expect(status(page)).to_have_text("Recovery")
    pending = page.get_by_test_id("pending-discharge")
    expect(pending).to_contain_text("Waiting for a physician")
    expect(pending).to_contain_text(f"the discharge by {NURSE}, RN was refused: MOAA/S 4 is not back to baseline (5).")
    expect(pending).to_contain_text(f"MOAA/S 4 · escort here: yes · instructions given: yes · condition: {CONDITION}")
    expect(page.locator(f"[data-code='{FINDING}']")).to_contain_text(
        "A physician reviews this and may override it with a reason before the discharge.")
    expect(page.get_by_role("button", name=re.compile("^Record override"))).to_have_count(0)  # not the nurse's
    expect_the_answers_kept(page)

    # The physician, on another tablet, finds the session on their home and opens it.
    physician = new_context().new_page()
    sign_in(physician, base, "physician")
    expect(physician.get_by_test_id("signed-in-as")).to_contain_text(PHYSICIAN)
    expect(physician.get_by_role("heading", name=re.compile(r"^Waiting for your override"), level=2)).to_be_visible()
    listed = physician.get_by_test_id("waiting-session").filter(has_text=PATIENT)
    expect(listed).to_have_count(1)
    expect(listed).to_have_attribute("data-gate", "discharge")
    expect(listed).to_contain_text("MOAA/S 4 is not back to baseline (5).")
    listed.get_by_role("link", name=PATIENT).click()
    expect(physician).to_have_url(f"{chair_url}#discharge-gate")

    # At once, without the discharge form submitted again: the nurse's answers, the finding and its
    # override form, and the discharge form filled with the answers.
    pending = physician.get_by_test_id("pending-discharge")
    expect(pending).to_contain_text("Waiting for a physician")
    expect(pending).to_contain_text(f"MOAA/S 4 · escort here: yes · instructions given: yes · condition: {CONDITION}")
    expect(physician.get_by_test_id("discharge-gate-outcome")).to_contain_text("Not clear")
    expect_the_answers_kept(physician)
    finding = physician.locator(f"[data-code='{FINDING}']")
    expect(finding).to_contain_text("MOAA/S 4 is not back to baseline (5).")
    finding.get_by_label("Reason").fill(OVERRIDE_REASON)
    finding.get_by_label("Your password").fill(DEMO_PASSWORD)
    finding.get_by_role("button", name=re.compile("^Record override")).click()
    expect(flash(physician, "The override is recorded.")).to_be_visible()
    expect(physician.get_by_test_id("discharge-gate-outcome")).to_contain_text("Clear: nothing stops the discharge.")
    expect(physician.get_by_role("region", name="Discharge")).to_contain_text(
        f"MOAA/S 4 is not back to baseline (5). Overridden by {PHYSICIAN}, MD")
    expect(physician.get_by_test_id("pending-discharge")).to_contain_text("Signed off by a physician")
    expect(physician.get_by_test_id("pending-discharge")).not_to_contain_text("Waiting for a physician")
    # Nothing is waiting for this physician any more.
    physician.goto(f"{base}/signing")
    expect(physician.get_by_test_id("waiting-session").filter(has_text=PATIENT)).to_have_count(0)
    physician.context.close()

    # The nurse reloads: clear, the form still holds MOAA/S 4 and the condition typed; discharged.
    page.goto(chair_url)
    expect(page.get_by_test_id("discharge-gate-outcome")).to_contain_text("Clear: nothing stops the discharge.")
    expect(page.get_by_role("region", name="Discharge")).to_contain_text(f"Overridden by {PHYSICIAN}, MD")
    expect_the_answers_kept(page)
    page.get_by_role("button", name="Discharge", exact=True).click()
    expect(flash(page, "The patient is discharged.")).to_be_visible()
    expect(status(page)).to_have_text("Discharged")
    discharged = page.get_by_test_id("discharged")
    expect(discharged).to_contain_text(f"by {NURSE}")
    expect(discharged).to_contain_text(CONDITION)
    expect(discharged.locator("dt:text-is('MOAA/S') + dd")).to_have_text("4")
    expect(page.get_by_test_id("pending-discharge")).to_have_count(0)
    expect(card(page)).to_contain_text("Discharged")
