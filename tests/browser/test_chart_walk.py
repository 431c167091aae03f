"""The chart as the hub, in Chromium as a physician uses it: a demo patient discharged today (DEMO-0004) shows
the PHQ-9/GAD-7 trend with one point per score in its table and today's dose in mg/kg, the weight taken at
today's checklist among the weights; a session's date opens that session, a note's state opens the note."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_series_walk import sign_in

pytestmark = pytest.mark.browser
#: The plotted lines' markers in the chart's axes (the legend's and the ticks' markers are elsewhere).
POINTS = 'svg g[id$="-axes_1"] > g[id*="-line2d_"] use'


def test_a_physician_follows_the_chart_to_a_session_and_its_note(page, clocked_live_server):
    base = clocked_live_server.url
    sign_in(page, base, "physician")
    page.goto(f"{base}/patients/?q=DEMO-0004")
    page.get_by_role("link", name=re.compile("Demo-Haverford")).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Demo-Haverford")
    chart_url = page.url

    trend = page.get_by_test_id("chart-trend")
    expect(trend.locator('svg[role="img"]')).to_be_visible()
    scores = page.get_by_test_id("scores-table").locator("tbody tr")
    assert scores.count() >= 4
    assert trend.locator(POINTS).count() == scores.count()
    expect(trend.locator("svg text", has_text="0.5 mg/kg")).to_have_count(1)
    expect(page.get_by_test_id("checklist-weight").first).to_contain_text("At the checklist, session 4")  # newest first

    # A session's page from its date, then back to the chart and on to a note from its state.
    sessions = page.get_by_test_id("chart-session")
    sessions.first.get_by_role("link", name=re.compile(r", session 1$")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Session 1: Morgan Demo-Haverford")
    page.goto(chart_url)
    noted = page.get_by_test_id("chart-note").get_by_role("link", name=re.compile(r"^(Signed|Complete|Draft)"))
    number = re.search(r"note of session (\d+)", noted.first.inner_text()).group(1)
    noted.first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"session {number}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Session note:")
