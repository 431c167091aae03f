"""The series summary: the series page's chart and signing section, a DRAFT preview never stored, the
physician's signing (password, paragraph, every session signed), one signed PDF per set of sessions,
byte-identical downloads by document ID, verification. One signed PDF per backend."""
import hashlib
import io
import re
import subprocess
from datetime import timedelta
from types import SimpleNamespace

import pytest
from PIL import Image
from sqlalchemy import func, select

from opsmgr.extensions import db
from opsmgr.reports import data
from opsmgr.reports.models import ReportDocument
from opsmgr.rules.outcomes import SeriesOutcome
from opsmgr.scores.models import PHQ9
from opsmgr.scores.service import record_score
from opsmgr.sessions.models import InfusionSession
from tests.factories import FACTORY_ACTOR
from tests.test_notes import PASSWORD, chairs, completed, discharged, save, signed  # noqa: F401 - fixtures
from tests.test_reports import audit_rows, pdf_text, qpdf_check, squeezed

SUMMARY = "Six infusions were planned; the first went well and mood lifted. Plan: continue the series."


def series_of(app, session_id):
    with app.app_context():
        return db.session.get(InfusionSession, session_id).series_id


def documents(app):
    with app.app_context():
        return db.session.execute(select(ReportDocument.document_id, ReportDocument.kind,
                                         ReportDocument.session_count, ReportDocument.sha256)
                                  .where(ReportDocument.kind == "series")).all()


def sign(client, series_id, summary=SUMMARY, password=PASSWORD):
    return client.submit(f"/series/{series_id}/summary/sign", {"summary": summary, "password": password})


def phone_phq9(app, session_id, clock, total_items):
    """A PHQ-9 by phone a week after the session (items summing to the total asked for)."""
    with app.app_context():
        visit = db.session.get(InfusionSession, session_id)
        items = [min(3, max(0, total_items - 3 * index)) for index in range(9)]
        record_score(visit.patient, PHQ9, items, taken_at=clock() + timedelta(days=7), source="phone",
                     actor=FACTORY_ACTOR, now=clock() + timedelta(days=7), difficulty=0)
        db.session.commit()


def pdfsig(content, tmp_path):
    path = tmp_path / "sig.pdf"
    path.write_bytes(content)
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout


@pytest.fixture
def signed_session(request):
    """(session id, nurse, physician): the series' first session walked to discharge, its note signed."""
    return request.getfixturevalue("signed")


@pytest.fixture
def unsigned_session(request):
    """(session id, nurse): the series' first session discharged, its note complete but not signed."""
    return request.getfixturevalue("completed")


def chart_ink(content, tmp_path):
    """The share of dark pixels in the series chart's plot on page 1 (pdftoppm), located by its printed
    title above and its "Date (zone)" axis label below (pdftotext -bbox): not blank, and lines drawn."""
    path = tmp_path / "ink.pdf"
    path.write_bytes(content)
    boxes = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", str(path), "-"], capture_output=True,
                           text=True, check=True).stdout
    words = [(float(y0), float(y1), word) for y0, y1, word in
             re.findall(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">([^<]*)<', boxes)]
    top = next(y1 for (_, y1, word), (_, _, after) in zip(words, words[1:], strict=False)
               if word == "over" and after == "the")
    bottom = next(y0 for (y0, _, word), (_, _, after) in zip(words, words[1:], strict=False)
                  if word == "Date" and after.startswith("(") and y0 > top)
    image = subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "72", "-gray", "-x", "30", "-y", str(int(top) + 4),
                            "-W", "520", "-H", str(int(bottom - top) - 8), str(path)],
                           capture_output=True, check=True).stdout
    pixels = Image.open(io.BytesIO(image)).tobytes()  # 8-bit grey, one byte a pixel
    return sum(1 for value in pixels if value < 160) / len(pixels)


def test_a_physician_previews_signs_and_downloads_the_series_summary(app, signed_session, login_as, clock, tmp_path,
                                                                      backend):
    session_id, _nurse, physician = signed_session
    series_id = series_of(app, session_id)
    phone_phq9(app, session_id, clock, 2)
    response = physician.get(f"/series/{series_id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-testid="series-trend"><svg ' in page and 'data-testid="series-sign-form"' in page
    assert "No signed series summary yet." in page

    coordinator = login_as("coordinator")
    coordinator_page = coordinator.get(f"/series/{series_id}").get_data(as_text=True)
    assert "series-sign-form" not in coordinator_page and "Preview PDF" not in coordinator_page
    assert coordinator.submit(f"/series/{series_id}/summary/preview", {"summary": SUMMARY}).status_code == 403

    # A DRAFT preview with the paragraph typed so far: audited, never stored.
    draft = physician.submit(f"/series/{series_id}/summary/preview", {"summary": "Draft words <b>here</b>"})
    assert draft.status_code == 200 and draft.mimetype == "application/pdf"
    draft_text = pdf_text(draft.data, tmp_path)
    assert "DRAFT" in draft_text and "Draft words <b>here</b>" in draft_text and documents(app) == []
    assert len(audit_rows(app, "report.previewed")) == 1

    # A wrong password and a missing paragraph: messages at the fields, the paragraph kept.
    wrong = sign(physician, series_id, password="not it")
    assert wrong.status_code == 400
    wrong_page = wrong.get_data(as_text=True)
    assert "That password is not correct." in wrong_page and SUMMARY in wrong_page
    short = sign(physician, series_id, summary="ok")
    assert short.status_code == 400 and "Write the summary paragraph" in short.get_data(as_text=True)
    assert documents(app) == []

    signed_response = sign(physician, series_id)
    assert signed_response.status_code == 302, signed_response.get_data(as_text=True)
    [(document_id, _, count, digest)] = documents(app)
    assert count == 1
    assert physician.get(signed_response.headers["Location"]).status_code == 200

    # Every download is the same bytes; a coordinator may download (they send records on).
    url = f"/reports/documents/{document_id}.pdf"
    first = physician.get(url)
    assert first.status_code == 200 and coordinator.get(url).data == first.data == physician.get(url).data
    content = first.data
    if backend == "sqlite":  # a hundred downloads, one hash (the bytes are never made again)
        assert {hashlib.sha256(physician.get(url).data).hexdigest() for _ in range(100)} == {digest}
        assert chart_ink(content, tmp_path) > 0.01
    assert hashlib.sha256(content).hexdigest() == digest
    qpdf_check(content, tmp_path)
    assert "Signature is Valid." in pdfsig(content, tmp_path)
    text = pdf_text(content, tmp_path)
    flat = squeezed(text)
    assert "Electronicallysignedby" in flat and document_id in flat and squeezed(SUMMARY) in flat
    assert "Series summary" in text and "Response" in text and "Remission" in text
    assert "RemissionYes" in flat  # a phone PHQ-9 of 2 after the baseline
    (tmp_path / "series.pdf").write_bytes(content)
    assert "Page 1 of" in text and "Confidential" in text

    # The same sessions cannot be signed twice; the page says why instead of offering the form.
    again = sign(physician, series_id)
    assert again.status_code == 400 and "already signed" in again.get_data(as_text=True)
    assert len(documents(app)) == 1
    after = physician.get(f"/series/{series_id}").get_data(as_text=True)
    assert document_id in after and 'data-testid="series-sign-blocked"' in after

    verified = physician.get("/reports/verify", query_string={"document_id": document_id}).get_data(as_text=True)
    assert 'data-outcome="intact"' in verified and "Physician" in verified
    assert physician.get("/reports/documents/NOSUCHDOCUMENT.pdf").status_code == 404


def test_signing_is_refused_while_a_session_note_is_unsigned(app, unsigned_session, login_as):
    session_id, nurse = unsigned_session
    series_id = series_of(app, session_id)
    physician = login_as("physician")
    page = physician.get(f"/series/{series_id}").get_data(as_text=True)
    assert 'data-testid="series-sign-blocked"' in page and "its note is not signed yet" in page
    refused = sign(physician, series_id)
    assert refused.status_code == 400 and "its note is not signed yet" in refused.get_data(as_text=True)
    assert nurse.submit(f"/series/{series_id}/summary/sign", {"summary": SUMMARY, "password": PASSWORD}) \
        .status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportDocument)) == 0
    assert [row.outcome for row in audit_rows(app, "report.sign_refused")] == ["denied"]


# --- data, no PDF --------------------------------------------------------------------------------

def outcome(baseline, later, response, remission, days=None):
    return SeriesOutcome(None, baseline, later, response, remission, days)


@pytest.mark.parametrize(("given", "expected"), [
    (outcome(None, 0, None, None), ("—", "No baseline PHQ-9")),
    (outcome(18, 0, None, None), ("18", "No PHQ-9 has been taken since the baseline.")),
    (outcome(18, 2, True, False, 14), ("18", "Yes")),
    (outcome(18, 2, False, False), ("18", "Not yet")),
    (outcome(0, 1, None, True), ("0", "Not assessable")),
])
def test_the_outcome_reads_in_words(given, expected):
    block = data.outcome_block(given, zone=None)
    assert block["baseline"] == expected[0] and block["response"].startswith(expected[1])
    assert block["days"] == ("14 days after the baseline" if given.days_to_response else "")


def test_a_session_row_prints_dose_peak_pressure_events_and_scores():
    from datetime import UTC, datetime
    from decimal import Decimal

    visit = SimpleNamespace(number=2, starts_at=datetime(2026, 12, 3, 15, tzinfo=UTC), status="discharged")
    readings = [SimpleNamespace(systolic=s, diastolic=d) for s, d in ((128, 80), (150, 96), (150, 98), (None, None))]
    record = SimpleNamespace(dose=SimpleNamespace(mg_per_kg=Decimal("0.500"), dose_mg=Decimal("35.0")),
                             counted_vitals=readings, adverse_events=(
                                 SimpleNamespace(kind="nausea", other_kind="", onset_at=None, severity="mild",
                                                 intervention="", drug_given="", outcome="resolved"),))
    row = data.series_row(visit, record, {"PHQ-9": 12}, __import__("zoneinfo").ZoneInfo("America/New_York"))
    assert (row["date"], row["dose_mg_per_kg"], row["dose_mg"], row["peak_bp"], row["phq9"], row["gad7"]) == \
        ("03 Dec 2026", "0.5 mg/kg", "35 mg", "150/98", "12", "—")
    assert row["adverse_events"].startswith("Nausea") and "(mild)" in row["adverse_events"]
    cancelled = data.series_row(SimpleNamespace(number=3, starts_at=visit.starts_at, status="no_show"), None, {},
                                __import__("zoneinfo").ZoneInfo("America/New_York"))
    assert (cancelled["status"], cancelled["dose_mg"], cancelled["adverse_events"]) == ("No show", "—", "—")
