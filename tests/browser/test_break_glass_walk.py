"""Break-glass in Chromium (issue 16 §2): the demo's restricted record, the nurse, the admin's review.

DEMO-0003 is restricted to a care team of the demo physician (opsmgr.demo.service.RESTRICTED_MRN). The
demo nurse finds the patient by name only, meets the "Restricted record" page, breaks the glass with a
reason and her password, and sees the chart; the admin's home then lists the event until it is reviewed.
"""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_PASSWORD
from tests.browser.test_chair_walk import flash, sign_in

pytestmark = pytest.mark.browser

PATIENT = "Riley Demo-Castellanos"


def test_the_nurse_breaks_the_glass_on_the_restricted_demo_patient_and_the_admin_reviews_it(
        clocked_live_server, page, new_context):
    url = clocked_live_server.url
    sign_in(page, url, "nurse")
    page.goto(f"{url}/patients/?q=Castellanos")
    row = page.get_by_role("row").filter(has_text=PATIENT)
    expect(row).to_contain_text("Restricted record")
    expect(row).not_to_contain_text("DEMO-0003")
    row.get_by_role("link", name=re.compile("^Open chart")).click()

    expect(page.get_by_role("heading", name="Restricted record", level=1)).to_be_visible()
    expect(page.get_by_text("DEMO-0003")).to_have_count(0)
    page.get_by_role("button", name="Break the glass and open the record").click()
    expect(page.get_by_text("Choose why you need this record.")).to_be_visible()  # the reason is required
    page.get_by_label("The patient is at the chair").check()
    page.get_by_label("In your own words").fill("Arrived unwell for an unscheduled check; care team away.")
    page.get_by_label("Your password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Break the glass and open the record").click()
    expect(flash(page, "Break-glass: you have access to this record until")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Riley")
    expect(page.get_by_text("DEMO-0003").first).to_be_visible()

    admin = new_context().new_page()
    sign_in(admin, url, "admin")
    review = admin.get_by_test_id("break-glass-review")
    expect(review).to_contain_text(PATIENT)
    expect(review).to_contain_text("The patient is at the chair")
    review.get_by_role("button", name=re.compile("^Mark reviewed")).click()
    expect(flash(admin, "Break-glass event marked reviewed.")).to_be_visible()
    expect(admin.get_by_test_id("break-glass-review")).to_have_count(0)
