"""The one chart path (issue 13 §1): plain data in, CSP-safe inline SVG out, the same bytes for the
same data, with the thresholds drawn and a text alternative; the patient chart shows the score trend."""
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from opsmgr.extensions import db
from opsmgr.reports.charts import _score_trend, score_trend, vitals_chart
from opsmgr.scores import service as scores
from tests.factories import FACTORY_ACTOR, create_patient
from tests.test_security import inline_code

SVG = "{http://www.w3.org/2000/svg}"
THRESHOLDS = {"alert_systolic": 180, "alert_diastolic": 110, "alert_spo2_below": 92}
ZONE = ZoneInfo("America/New_York")
START = datetime(2026, 3, 2, 9, 0, tzinfo=ZONE)
VITALS = [(START + timedelta(minutes=10 * n), 130 + 9 * n, 80 + 5 * n, 70 + n, None if n == 3 else 97 - n)
          for n in range(7)]
SCORES = [(START + timedelta(days=7 * n), "PHQ-9", 20 - 3 * n) for n in range(6)] + \
         [(START + timedelta(days=7 * n), "GAD-7", 15 - 2 * n) for n in range(6)]
SESSIONS = [START + timedelta(days=3 * n) for n in range(6)]
DOSES = [(when, 0.5 + 0.1 * n) for n, when in enumerate(SESSIONS)]


@pytest.fixture(scope="module")
def charts():
    return {"vitals": vitals_chart(VITALS, thresholds=THRESHOLDS, title="Vital signs, session 3 of 6"),
            "trend": score_trend(SCORES, sessions=SESSIONS, doses=DOSES)}


def parse(svg):
    return ET.fromstring(svg)  # noqa: S314 -- the charts' own output


def texts(svg):
    return [element.text for element in parse(svg).iter() if element.text and element.text.strip()]


def test_the_same_data_gives_the_same_bytes(charts):
    assert vitals_chart(list(reversed(VITALS)), thresholds=THRESHOLDS, title="Vital signs, session 3 of 6") \
        == charts["vitals"]
    _score_trend.cache_clear()  # drawn again, not taken from the kept pictures
    assert score_trend(SCORES, sessions=SESSIONS, doses=DOSES) == charts["trend"]


def test_a_trend_once_drawn_is_kept_and_any_change_to_what_it_shows_draws_it_again():
    _score_trend.cache_clear()
    first = score_trend(SCORES, sessions=SESSIONS, doses=DOSES)
    assert score_trend(list(reversed(SCORES)), sessions=SESSIONS, doses=DOSES) == first
    assert _score_trend.cache_info().hits == 1
    changed = [*SCORES[:-1], (SCORES[-1][0], "GAD-7", 14)]
    assert score_trend(changed, sessions=SESSIONS, doses=DOSES) != first
    assert score_trend(SCORES, sessions=SESSIONS, doses=[*DOSES[:-1], (DOSES[-1][0], 0.4)]) != first
    assert score_trend(SCORES, sessions=SESSIONS, doses=DOSES, response_baseline=12) != first
    # the same instants in another zone are another picture (their dates and times print there)
    utc = [(when.astimezone(UTC), name, total) for when, name, total in SCORES]
    score_trend(utc, sessions=[when.astimezone(UTC) for when in SESSIONS],
                doses=[(when.astimezone(UTC), mg) for when, mg in DOSES])
    assert _score_trend.cache_info().hits == 1 and _score_trend.cache_info().misses == 5


def test_vitals_chart_draws_the_alert_thresholds_as_labelled_lines(charts):
    words = texts(charts["vitals"])
    assert {"Systolic alert 180", "Diastolic alert 110", "SpO2 alert below 92 %"} <= set(words)
    assert {"Systolic BP (mmHg)", "Heart rate (beats/min)", "09:00", "10:00"} <= set(words)
    dashed = [e for e in parse(charts["vitals"]).iter(f"{SVG}path") if e.get("stroke-dasharray")]
    assert len(dashed) >= 3


def test_score_trend_draws_response_and_remission_lines_and_doses(charts):
    words = set(texts(charts["trend"]))
    assert {"Response ≤ 10", "Remission < 5", "PHQ-9 total", "GAD-7 total", "Session", "0.5 mg/kg",
            "1 mg/kg"} <= words
    assert "Response: PHQ-9 at or below 10 (half of baseline 20)" in words
    assert "Remission: PHQ-9 below 5" in words
    baseline_12 = set(texts(score_trend(SCORES, response_baseline=12)))
    assert "Response ≤ 6" in baseline_12


@pytest.mark.parametrize("name", ["vitals", "trend"])
def test_charts_are_accessible_and_safe_to_inline(charts, name):
    svg = charts[name]
    root = parse(svg)
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert root.get("role") == "img" and root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert root.get("viewBox").startswith("0 0 ")
    assert "readings" in desc.text or "PHQ-9 (6 scores): 20 on 2026-03-02 09:00" in desc.text
    tags = {element.tag for element in root.iter()}
    assert not tags & {f"{SVG}script", f"{SVG}style", f"{SVG}foreignObject", f"{SVG}image"}
    for element in root.iter():
        assert "style" not in element.attrib and not any(key.startswith("on") for key in element.attrib)
        for key, value in element.attrib.items():
            assert "url(" not in value or value.startswith("url(#"), (key, value)
            if key.endswith("href"):
                assert value.startswith("#") and root.find(f".//*[@id='{value[1:]}']") is not None
    assert "<!DOCTYPE" not in svg and "http://www.w3.org/1999/xlink" not in svg


def test_empty_and_partial_data_still_draw():
    assert "No vital signs were recorded." in vitals_chart([], thresholds=THRESHOLDS)
    assert "No PHQ-9 or GAD-7 scores were recorded." in score_trend([])
    minutes = vitals_chart([(0, 120, 80, None, 98), (15, None, None, 72, None)], thresholds={}, title="$x$ <b>")
    assert "Minutes since start" in texts(minutes) and "$x$ <b>" in texts(minutes)


def test_the_patient_chart_shows_the_score_trend_or_says_there_is_none(app, clock, login_as):
    with app.app_context():
        scored, unscored = create_patient(now=clock()), create_patient(now=clock())
        for days, phq9 in ((14, [2] * 8 + [0]), (7, [1] * 8 + [0])):
            scores.record_score(scored, "PHQ-9", phq9, difficulty=1, taken_at=clock() - timedelta(days=days),
                                source="phone", actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        scored_id, unscored_id = scored.id, unscored.id
    physician = login_as("physician")
    response = physician.get(f"/patients/{scored_id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    section = html[html.index('id="scores"'):html.index("</section>", html.index('id="scores"'))]
    assert 'role="img"' in section and "Response: PHQ-9 at or below 8" in section
    assert inline_code(html) == []  # no script, handler or style the CSP would block
    assert "<td>16</td>" in section and "<td>8</td>" in section  # the table the chart summarises
    assert "No scores yet" in physician.get(f"/patients/{unscored_id}").get_data(as_text=True)


def test_charts_stay_plain_inline_svg_after_a_library_claims_the_namespace():
    """WeasyPrint and pyHanko register XMP prefixes in ElementTree's global map; a chart drawn after a PDF
    render must still be <svg>, not <ns0:svg>, or no browser draws it."""
    import xml.etree.ElementTree as ET

    from opsmgr.reports.charts import SVG_NS, score_trend

    ET.register_namespace("svgx", SVG_NS)
    try:
        assert score_trend([]).startswith("<svg ")
    finally:
        ET.register_namespace("", SVG_NS)
