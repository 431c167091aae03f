"""One action per click, in Chromium on a tablet (issue 9): a double click on "Record vitals" records one
reading and a double click on "Register patient" opens the new patient's page, with no error.

The page's script holds the form after the first click (its button reads "Saving…", disabled) so the second
click sends nothing; and a second post of the same form (the same submission key) is answered by the
server as the first was, recording nothing more.
"""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_chair_walk import TABLET, flash, go_to_board, hhmm, sign_in

pytestmark = pytest.mark.browser

#: DEMO-0005 in the demo clinic: infusing on today's board, some readings already taken.
INFUSING = "Casey Demo-Nakamura"
NEW_PATIENT = "Dana Doubleclick"


@pytest.fixture
def viewport():
    return TABLET


def readings(page):
    return page.get_by_test_id("readings").get_by_test_id("reading")


def test_a_double_click_on_record_vitals_records_one_reading(page, clocked_live_server):
    server = clocked_live_server
    sign_in(page, server.url, "nurse")
    go_to_board(page)
    page.locator(".board-session", has_text=INFUSING).get_by_role("link", name=f"Record vitals — {INFUSING}").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"At the chair: {INFUSING}")
    before = readings(page).count()
    form = page.locator("form[action$='/infusion/vitals']")
    form.get_by_label("Systolic BP (mmHg)").fill("126")
    form.get_by_label("Diastolic BP (mmHg)").fill("78")
    form.get_by_label("Heart rate (bpm)").fill("74")
    form.get_by_label("SpO2 (%)").fill("98")
    form.get_by_label("Sedation (MOAA/S)").select_option("5")
    form.get_by_label("Time taken").fill(hhmm(server))
    button = form.locator("button[type=submit]")
    expect(button).to_have_text("Record vitals")

    posts = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)
    button.dblclick()
    expect(flash(page, "The reading is recorded.")).to_be_visible()
    expect(readings(page)).to_have_count(before + 1)
    assert len(posts) == 1, "the page held the form after the first click: the second sent nothing"

    # Had the second click gone out (no script, a slow network), the server answers it as the first.
    first = posts[0]
    assert "submission_key=" in first.post_data
    again = page.request.post(first.url, data=first.post_data, max_redirects=0,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (again.status, again.headers["location"]) == (302, first.response().headers["location"])
    page.reload()
    expect(readings(page)).to_have_count(before + 1)


def test_a_double_click_on_register_patient_opens_the_patient_page(page, live_server):
    sign_in(page, live_server, "coordinator")
    page.goto(f"{live_server}/patients/new")
    page.get_by_label("MRN").fill("DBL-0001")
    page.get_by_label("Legal name").fill(NEW_PATIENT)
    page.get_by_label("Date of birth").fill("1984-05-17")
    page.get_by_label("Sex at birth").select_option("female")
    page.get_by_label("Could the patient become pregnant?").select_option("no")
    page.get_by_label("Indication", exact=True).select_option("trd")
    page.get_by_role("button", name="Register patient").dblclick()
    expect(page.get_by_role("heading", level=1)).to_contain_text(NEW_PATIENT)
    expect(page.get_by_text(re.compile("already exists"))).to_have_count(0)
    expect(page.get_by_role("alert")).to_have_count(0)
