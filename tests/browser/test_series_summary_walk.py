"""The series summary in Chromium, as a physician uses it: from the patient's chart to the series, the
PHQ-9/GAD-7 chart on screen, a summary paragraph and the password, "Sign series summary"; then the signed
PDF downloaded (pdfsig: a valid signature) and checked on the verification page by its ID and by upload.
The demo clinic's DEMO-0010 has a completed IV induction whose every note is signed."""
import re
import subprocess

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_PASSWORD
from tests.browser.test_series_walk import sign_in

pytestmark = pytest.mark.browser
SUMMARY = "Six infusions given; PHQ-9 from 19 to 4 (remission). Plan: boosters as needed, review in four weeks."


def test_a_physician_signs_a_series_summary_downloads_and_verifies_it(page, clocked_live_server, tmp_path):
    base = clocked_live_server.url
    sign_in(page, base, "physician")
    page.goto(f"{base}/patients/?q=DEMO-0010")
    page.get_by_role("link", name=re.compile("Demo-Vald")).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Demo-Vald")
    page.get_by_role("link", name=re.compile(r"^IV ketamine induction")).first.click()
    expect(page.get_by_role("heading", name="PHQ-9 and GAD-7")).to_be_visible()
    chart = page.locator('[data-testid="series-trend"] svg[role="img"]')
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] > 300
    expect(page.get_by_text("No signed series summary yet.")).to_be_visible()

    # A wrong password first: the message is at the field and the paragraph is still there.
    page.get_by_label("Physician's summary").fill(SUMMARY)
    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name="Sign series summary").click()
    expect(page.get_by_text("That password is not correct.")).to_be_visible()
    expect(page.get_by_label("Physician's summary")).to_have_value(SUMMARY)
    page.get_by_label("Your password").fill(DEMO_PASSWORD)
    # Rendering, signing and storing the PDF takes a few seconds on a busy machine: wait for the answer.
    with page.expect_navigation(timeout=60_000):
        page.get_by_role("button", name="Sign series summary").click(no_wait_after=True)
    flash = page.get_by_text(re.compile(r"Series summary signed and stored as document [0-9A-F]{20}\."))
    expect(flash).to_be_visible()
    document_id = re.search(r"[0-9A-F]{20}", flash.inner_text()).group(0)
    expect(page.locator('[data-testid="series-sign-blocked"]')).to_contain_text("already signed")

    # The signed PDF, fetched with the physician's own session: a valid PAdES signature, the signer line.
    link = page.get_by_role("link", name=re.compile(r"Signed summary of \d+ sessions"))
    response = page.context.request.get(base + link.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "series.pdf"
    pdf.write_bytes(response.body())
    assert "Signature is Valid." in subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True).stdout
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Electronically signed by" in text and document_id in text

    # The verification page: by the printed ID, then by uploading the file.
    page.goto(f"{base}/reports/verify")
    page.get_by_role("textbox", name="Document ID").fill(document_id)
    page.get_by_role("button", name="Check the ID").click()
    expect(page.locator('[data-testid="verify-message"]')).to_have_attribute("data-outcome", "intact")
    expect(page.locator('[data-testid="verify-patient"]')).to_contain_text("DEMO-0010")
    page.get_by_label("PDF file (at most 2 MB)").set_input_files(str(pdf))
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator('[data-testid="verify-message"]')).to_have_attribute("data-outcome", "intact")
    expect(page.locator('[data-testid="verify-signer"]')).to_contain_text("on ")
