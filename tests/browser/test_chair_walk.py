"""A whole session at the chair in Chromium, on a tablet, with the clinic clock moving (issue 4).

The nurse checks a demo patient in and fills the checklist with BP 150/95 (needs physician); the
physician, on another tablet, overrides that finding; the nurse starts the dose, records the
controlled substance with a witness, takes four readings during the infusion (one at 185/112,
whose alert is acknowledged), ends the infusion, is not offered the discharge before the 30-minute
observation is over, and discharges once it is.
"""
import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.browser

#: DEMO-0009 in the demo clinic: an IV booster booked on today's board at 16:00, not checked in yet.
PATIENT = "Drew Demo-Kowalczyk"
WEIGHT_KG = "70"
NURSE, PHYSICIAN = "Demo Nurse (fictional)", "Demo Physician (fictional)"
PHQ9 = (2, 2, 1, 2, 1, 1, 1, 0, 0)  # total 10, moderate; item 9 (self-harm) 0
GAD7 = (1, 1, 2, 1, 0, 1, 0)  # total 6, mild
TABLET = {"width": 768, "height": 1024}
#: navbar-expand-md: the whole menu shows on one line from 768 px (a tablet); a phone opens it with the toggler.
MENU_UNFOLDED_FROM_PX = 768
#: The minimum observation after an IV infusion (ClinicalPolicy default).
OBSERVATION_MINUTES = 30


@pytest.fixture
def viewport():
    return TABLET


def sign_in(page, base_url, username):
    page.goto(f"{base_url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def flash(page, text):
    return page.get_by_role("status").filter(has_text=text)


def open_main_menu(page):
    """Below Bootstrap's md breakpoint (768 px) the menu folds behind a toggler: unfold it, and wait for the
    animation to end before anything in it is clicked. Decided by the window's width, not by what
    is visible at this instant (before the stylesheet applies, the toggler shows on every page)."""
    if page.viewport_size["width"] >= MENU_UNFOLDED_FROM_PX:
        return
    page.get_by_role("button", name="Show navigation").click()
    expect(page.locator("#main-nav")).to_have_class(re.compile(r"(^|\s)show(\s|$)"))


def go_to_board(page):
    open_main_menu(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Today's chairs").click()
    expect(page.get_by_role("heading", name="Today's chairs", level=1)).to_be_visible()
    return page.locator(".board-session", has_text=PATIENT)


def hhmm(server):
    return server.local_now().strftime("%H:%M")


def moment(server, **ago):
    """A clinic date and time as a datetime-local field takes it."""
    return (server.local_now() - timedelta(**ago)).strftime("%Y-%m-%dT%H:%M")


def answer(page, question, choice):
    """Click one answer of a radio group (a fieldset whose legend is the question)."""
    page.get_by_role("group", name=question, exact=True).get_by_label(choice, exact=True).check()


def answer_scale(page, scale, items):
    section = page.get_by_role("group", name=scale, exact=True)
    for number, score in enumerate(items, 1):
        item = section.get_by_role("group", name=re.compile(rf"^{number}\. "))
        item.get_by_label(re.compile(rf"^{score}: ")).check()


def fill_checklist(page, server):
    page.get_by_label("Systolic blood pressure (mmHg)").fill("150")
    page.get_by_label("Diastolic blood pressure (mmHg)").fill("95")
    page.get_by_label("Heart rate (beats per minute)").fill("76")
    page.get_by_label("Oxygen saturation, SpO2 (%)").fill("98")
    page.get_by_label("Temperature (°C)").fill("36.8")
    page.get_by_label("Respiratory rate (breaths per minute)").fill("14")
    page.get_by_label("Vitals taken at").fill(moment(server, minutes=0))
    page.get_by_label("Today's weight (kg)").fill(WEIGHT_KG)
    answer(page, "Medications started or stopped since the last session", "No changes since the last session")
    for question in ("Any new diagnosis since the last session?",
                     "Any new heart problem or stroke event since the last session?",
                     "Any psychosis symptoms (hallucinations, delusions)?", "Any mania symptoms?",
                     "Alcohol or drug use in the last 24 hours?"):
        answer(page, question, "No")
    page.get_by_label("Last solid food").fill(moment(server, hours=9))
    page.get_by_label("Last clear liquid").fill(moment(server, hours=3))
    page.get_by_role("group", name="Who takes the patient home today?").get_by_label(
        re.compile("^The usual escort: Alex Demo-Kowalczyk")).check()
    answer(page, "Consent reconfirmed with the patient today?", "Yes")
    answer_scale(page, "PHQ-9", PHQ9)
    page.get_by_role("group", name=re.compile("^If any problems: how difficult")).get_by_label(
        "1: Somewhat difficult").check()
    answer_scale(page, "GAD-7", GAD7)
    answer(page, "Suicide-risk screen outcome", "Negative")
    answer(page, "Does the patient want this treatment today, for themselves?",
           "Yes: wants this treatment today, for themselves")
    page.get_by_label("The patient's intention for today, in their own words").fill(
        "To feel like myself again and go back to work.")


def record_vitals(page, server, systolic, diastolic, heart_rate=74, spo2=98, moaas="5"):
    form = page.locator("form", has=page.get_by_role("button", name="Record vitals"))
    form.get_by_label("Systolic BP (mmHg)").fill(str(systolic))
    form.get_by_label("Diastolic BP (mmHg)").fill(str(diastolic))
    form.get_by_label("Heart rate (bpm)").fill(str(heart_rate))
    form.get_by_label("SpO2 (%)").fill(str(spo2))
    form.get_by_label("Sedation (MOAA/S)").select_option(moaas)
    form.get_by_label("Time taken").fill(hhmm(server))
    form.get_by_role("button", name="Record vitals").click()
    expect(flash(page, "The reading is recorded.")).to_be_visible()


def fill_discharge(page):
    page.get_by_label("Mental status (MOAA/S)").select_option(label="5 – responds readily to name in a normal tone")
    page.get_by_label("Is the escort here to take the patient home?").select_option(label="Yes")
    page.get_by_label("Were the discharge instructions given?").select_option(label="Yes")
    page.get_by_label("Condition at discharge").fill("Alert and oriented, walking steadily, leaving with the escort.")
    page.get_by_role("button", name="Discharge", exact=True).click()


def status(page):
    return page.get_by_test_id("status")


def test_checklist_override_start_four_readings_alert_and_discharge_only_after_the_observation(
        page, new_context, clocked_live_server):
    server = clocked_live_server
    base = server.url

    # The nurse checks the patient in from today's board and opens the checklist.
    sign_in(page, base, "nurse")
    expect(page.get_by_role("heading", name="Today's chairs", level=1)).to_be_visible()
    card = page.locator(".board-session", has_text=PATIENT)
    expect(card).to_contain_text("Next: Check in")
    card.get_by_role("button", name=f"Check in — {PATIENT}").click()
    expect(card).to_contain_text("Next: Start checklist")
    card.get_by_role("link", name=f"Start checklist — {PATIENT}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Pre-session checklist: {PATIENT}")

    # Every item answered, BP 150/95: the evaluation needs a physician, for the blood pressure only.
    fill_checklist(page, server)
    page.get_by_role("button", name="Save").last.click()
    expect(flash(page, "Checklist saved.")).to_be_visible()
    evaluation = page.get_by_role("region", name="Evaluation")
    expect(evaluation.get_by_test_id("outcome")).to_contain_text("Outcome: Needs physician")
    expect(evaluation.get_by_test_id("unanswered")).to_have_count(0)
    bp = evaluation.locator("[data-code='BP_SOFT_GATE']")
    expect(bp).to_contain_text("Blood pressure 150/95: systolic 150 is above 140 and diastolic 95 is above 90. "
                               "A physician must review before the dose.")
    expect(bp).to_contain_text("Needs a physician's override")
    expect(evaluation.get_by_text("Needs a physician's override")).to_have_count(1)
    expect(page.get_by_test_id("phq9-total")).to_have_text("PHQ-9 total 10 of 27: moderate.")
    expect(page.get_by_test_id("gad7-total")).to_have_text("GAD-7 total 6 of 21: mild.")
    expect(page.get_by_test_id("physician-task")).to_have_count(0)
    checklist_url = page.url.split("#")[0]

    # The physician, on another tablet, overrides the BP finding with a reason and their password.
    physician = new_context().new_page()
    sign_in(physician, base, "physician")
    expect(physician.get_by_test_id("signed-in-as")).to_contain_text(PHYSICIAN)
    go_to_board(physician).get_by_role("link", name=f"Complete checklist — {PATIENT}").click()
    expect(physician.get_by_role("heading", level=1)).to_have_text(f"Pre-session checklist: {PATIENT}")
    finding = physician.locator("[data-code='BP_SOFT_GATE']")
    finding.get_by_text("Override this finding").click()
    finding.get_by_label("Reason for overriding").fill(
        "Known white-coat hypertension; 150/95 is his usual clinic reading. Recheck every 10 minutes.")
    finding.get_by_label("Your password (to sign the override)").fill(DEMO_PASSWORD)
    finding.get_by_role("button", name="Record override").click()
    expect(flash(physician, "The override is recorded.")).to_be_visible()
    finding = physician.locator("[data-code='BP_SOFT_GATE']")
    expect(finding.get_by_test_id("override")).to_contain_text(f"Overridden by {PHYSICIAN}")
    expect(physician.get_by_test_id("overridden-clear")).to_be_visible()
    expect(physician.get_by_text("Cleared to dose", exact=True)).to_be_visible()
    physician.context.close()

    # The nurse sees the override and starts the dose: 0.5 mg/kg × 70 kg = 35 mg over 40 minutes.
    page.goto(checklist_url)
    expect(page.locator("[data-code='BP_SOFT_GATE']").get_by_test_id("override")).to_contain_text(PHYSICIAN)
    card = go_to_board(page)
    expect(card).to_contain_text("Cleared to dose")
    card.get_by_role("link", name=f"Start dose — {PATIENT}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"At the chair: {PATIENT}, session 1")
    chair_url = page.url
    expect(page.get_by_test_id("dose-plan")).to_contain_text(
        "Dose to give: 0.5 mg/kg × 70 kg = 35 mg, over 40 minutes")
    expect(page.get_by_test_id("start-gate-outcome")).to_contain_text("Clear: nothing stops the dose.")
    expect(page.get_by_role("region", name="Start gate")).to_contain_text(
        f"Blood pressure 150/95: systolic 150 is above 140 and diastolic 95 is above 90. "
        f"A physician must review before the dose. Overridden by {PHYSICIAN}")
    page.get_by_role("button", name="Start dose").click()
    expect(flash(page, "The dose has started.")).to_be_visible()
    expect(status(page)).to_have_text("Infusing")
    expect(page.get_by_test_id("dose")).to_contain_text("0.5 mg/kg × 70 kg = 35 mg, over 40 minutes")

    # The controlled-substance record, witnessed by the physician with their password.
    controlled = page.get_by_role("region", name="Controlled substance")
    controlled.get_by_label("Product").fill("Ketamine 50 mg/mL, 10 mL vial")
    controlled.get_by_label("Lot number").fill("DEMO-LOT-0426")
    controlled.get_by_label("Expiry date").fill(date(server.local_now().year + 1, 6, 30).isoformat())
    controlled.get_by_label("Drawn (mg)").fill("50")
    controlled.get_by_label("Given (mg)").fill("35")
    controlled.get_by_label("Wasted (mg)").fill("15")
    controlled.get_by_label("Witness's username").fill("physician")
    controlled.get_by_label("Witness's password").fill(DEMO_PASSWORD)
    controlled.get_by_role("button", name="Record controlled substance").click()
    expect(flash(page, "The controlled-substance record is complete.")).to_be_visible()
    expect(page.get_by_test_id("controlled")).to_contain_text("drawn 50 mg = given 35 mg + wasted 15 mg")
    expect(page.get_by_test_id("controlled")).to_contain_text(f"witnessed by {PHYSICIAN}")

    # Four readings at the protocol's timepoints, every 10 minutes; the third is 185/112.
    readings = ((132, 84), (138, 88), (185, 112), (136, 86))
    for number, (systolic, diastolic) in enumerate(readings, 1):
        server.clock.advance(minutes=10)
        card = go_to_board(page)
        expect(card).to_contain_text("Infusing")
        expect(card.get_by_test_id("vitals-due")).to_contain_text("Next vitals:")
        card.get_by_role("link", name=f"Record vitals — {PATIENT}").click()
        record_vitals(page, server, systolic, diastolic)
        expect(page.get_by_test_id("readings").locator("tbody tr")).to_have_count(number)
        if (systolic, diastolic) == (185, 112):
            alert = page.get_by_role("article").filter(has_text="Blood pressure alert")
            expect(alert).to_contain_text("Not acknowledged")
            expect(alert).to_contain_text(
                "Blood pressure 185/112: systolic 185 is at or above 180 and diastolic 112 is at or above 110.")
            expect(alert.get_by_text("ALERT_BLOOD_PRESSURE")).not_to_be_visible()  # for support, out of sight
            alert.get_by_label("Action taken").select_option(label="Slow")
            alert.get_by_label("Note").fill("Rate halved; patient calm, no headache or chest pain. Physician told.")
            alert.get_by_role("button", name="Acknowledge alert").click()
            expect(flash(page, "The alert is acknowledged.")).to_be_visible()
            alert = page.get_by_role("article").filter(has_text="Blood pressure alert")
            expect(alert).not_to_contain_text("Not acknowledged")
            expect(alert).to_contain_text(
                re.compile(rf"Acknowledged by {re.escape(NURSE)}, RN at \d\d:\d\d: Slow\. Rate halved"))
    timeline = page.get_by_test_id("timeline")
    for timepoint in ("Infusion 10 min", "Infusion 20 min", "Infusion 30 min", "End of infusion"):
        expect(timeline.get_by_role("row").filter(has_text=timepoint)).to_contain_text("Taken")

    # The infusion ends. 15 minutes into recovery, with the vitals, MOAA/S 5, the escort and the
    # instructions all in order, the discharge is refused: the observation is not over.
    page.get_by_role("button", name="End infusion").click()
    expect(flash(page, "The infusion has ended; the recovery observation has started.")).to_be_visible()
    expect(status(page)).to_have_text("Recovery")
    server.clock.advance(minutes=10)
    go_to_board(page).get_by_role("link", name=f"Discharge — {PATIENT}").click()
    server.clock.advance(minutes=5)  # 15 minutes after the end
    page.reload()
    record_vitals(page, server, 128, 82, heart_rate=70)
    # The discharge is not offered while the observation runs (no control the server would refuse).
    waiting = page.get_by_test_id("discharge-not-offered")
    # 15 minutes left, less the real seconds the walk took since the end (a minute on a slow machine).
    expect(waiting).to_contain_text(re.compile(r"The minimum observation ends in \d+ min\."))
    expect(page.get_by_role("button", name="Discharge", exact=True)).to_have_count(0)
    expect(status(page)).to_have_text("Recovery")

    # 31 minutes after the end (in steps shorter than the 15-minute idle limit), with the
    # pre-discharge vitals, the discharge goes through.
    server.clock.advance(minutes=10)  # 25 minutes after the end
    page.goto(chair_url)
    expect(page.get_by_test_id("discharge-gate-outcome")).to_contain_text("Not clear")
    server.clock.advance(minutes=OBSERVATION_MINUTES + 1 - 25)  # 31 minutes after the end
    page.reload()
    record_vitals(page, server, 126, 80, heart_rate=68)
    expect(page.get_by_test_id("timeline").get_by_role("row").filter(has_text="Before discharge")).to_contain_text(
        "Taken")
    fill_discharge(page)
    expect(flash(page, "The patient is discharged.")).to_be_visible()
    expect(status(page)).to_have_text("Discharged")
    expect(page.get_by_test_id("discharged")).to_contain_text(f"by {NURSE}")

    card = go_to_board(page)
    expect(card).to_contain_text("Discharged")
    expect(card).to_contain_text("Next: Write the session note")


def test_the_physicians_dose_order_is_what_the_nurse_sees_and_starts(page, new_context, clocked_live_server):
    """Issue 8 A1: 0.8 mg/kg ordered and overridden by the physician is the dose the nurse gives."""
    server = clocked_live_server
    base = server.url
    sign_in(page, base, "nurse")
    card = page.locator(".board-session", has_text=PATIENT)
    card.get_by_role("button", name=f"Check in — {PATIENT}").click()
    card.get_by_role("link", name=f"Start checklist — {PATIENT}").click()
    fill_checklist(page, server)
    page.get_by_label("Systolic blood pressure (mmHg)").fill("122")
    page.get_by_label("Diastolic blood pressure (mmHg)").fill("78")
    page.get_by_role("button", name="Save").last.click()
    expect(flash(page, "Checklist saved.")).to_be_visible()
    card = go_to_board(page)
    card.get_by_role("link", name=f"Start dose — {PATIENT}").click()
    chair_url = page.url.split("#")[0]
    expect(page.get_by_test_id("start-gate-outcome")).to_contain_text("Clear: nothing stops the dose.")

    # The physician, on another tablet, orders 0.8 mg/kg for this session: the finding opens, and the
    # override starts from the reason already given.
    physician = new_context().new_page()
    sign_in(physician, base, "physician")
    physician.goto(chair_url)
    physician.get_by_text("Change this session's dose (physician)").click()
    physician.get_by_label("New dose (mg/kg)").fill("0.8")
    reason = "Partial response at 0.5 mg/kg after four sessions; tolerated well."
    physician.get_by_label("Reason for the change").fill(reason)
    physician.get_by_label("Your password").first.fill("not the password")
    physician.get_by_role("button", name="Order this dose").click()
    expect(physician.locator("#order-password-error")).to_contain_text("The password is not correct")
    expect(physician.get_by_label("Reason for the change")).to_have_value(reason)
    expect(physician.get_by_label("New dose (mg/kg)")).to_have_value("0.8")
    physician.locator("#order-password").fill(DEMO_PASSWORD)
    physician.get_by_role("button", name="Order this dose").click()
    expect(flash(physician, "The new dose is ordered for this session.")).to_be_visible()
    expect(physician.get_by_test_id("dose-plan")).to_contain_text("0.8 mg/kg × 70 kg = 56 mg")
    finding = physician.locator("[data-code='DOSE_OUTSIDE_USUAL_RANGE']")
    expect(finding.get_by_label("Reason")).to_have_value(reason)
    finding.get_by_label("Your password").fill(DEMO_PASSWORD)
    finding.get_by_role("button", name=re.compile("^Record override")).click()
    expect(flash(physician, "The override is recorded.")).to_be_visible()
    physician.context.close()

    # The nurse's page, reloaded, shows the ordered dose with who, when and why, and starts it.
    page.goto(chair_url)
    plan = page.get_by_test_id("dose-plan")
    expect(plan).to_contain_text("Dose to give: 0.8 mg/kg × 70 kg = 56 mg, over 40 minutes")
    expect(plan).to_contain_text(f"Set for this session by {PHYSICIAN}")
    expect(plan).to_contain_text(reason)
    expect(page.get_by_test_id("start-gate-outcome")).to_contain_text("Clear: nothing stops the dose.")
    page.get_by_role("button", name="Start dose: 56 mg").click()
    expect(flash(page, "The dose has started.")).to_be_visible()
    expect(page.get_by_test_id("dose")).to_contain_text("0.8 mg/kg × 70 kg = 56 mg, over 40 minutes")
    expect(page.get_by_test_id("dose")).to_contain_text(reason)
