"""A tiny run of `make bench` so the harness cannot rot: well-formed results, never a speed threshold."""
import json
import os
import shutil

import pytest

from tests.bench import bench

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture
def wrk_installed():
    if shutil.which("wrk") is None:
        if IN_CI:
            pytest.fail("wrk is not installed (make setup-test installs it)")
        pytest.skip("wrk is not installed (make setup-test installs it)")


def test_sizes_compare_each_page_from_the_smallest_to_the_largest_data(monkeypatch):
    """run_sizes runs each size (the memory check at the largest only) and reports time growth per page."""
    calls = []

    def fake_run(*, patients, memory_requests, **_options):
        calls.append((patients, memory_requests))
        rps = {200: 100.0, 20000: 80.0}[patients]  # 25 % slower with the larger data
        return {"pages": {key: {"rps": rps, "statements": 9} for key, _ in bench.PAGES},
                "sessions": patients * 10, "written_to": f"{patients}.json"}

    monkeypatch.setattr(bench, "run", fake_run)
    lines = []
    runs, summary = bench.run_sizes(sizes=(20000, 200), echo=lines.append, memory_requests=50_000)
    assert calls == [(200, 0), (20000, 50_000)] and len(runs) == 2
    assert summary["growth"] == {key: 1.25 for key, _ in bench.PAGES}
    assert summary["statements"]["board"] == [9, 9] and summary["sessions"] == [2000, 200000]
    assert "2,000 sessions vs 200,000 sessions" in lines[0] and "1.250" in lines[0]


def test_bench_measures_every_page_against_hello(wrk_installed, tmp_path):
    result = bench.run(db="sqlite", seconds=1, patients=20, connections=4, out=tmp_path, echo=lambda _: None,
                       memory_requests=1, warm_up=False)

    written = json.loads(next(tmp_path.glob("*-sqlite.json")).read_text())
    assert written["pages"].keys() == {key for key, _ in bench.PAGES} == result["pages"].keys()
    assert written["hello_rps"] > 0 and len(written["hello"]) == 2
    for key, page in written["pages"].items():
        assert page["rps"] > 0 and page["ratio"] > 0, key
        assert page["statements"] > 0 and page["requests"] > 0, key
        assert page["not_200"] == 0, key
    assert len(written["memory"]["before_mib"]) == len(written["memory"]["after_mib"]) == bench.WORKERS
    # the memory check served at least one more round of pages after the measured ones
    assert written["memory"]["requests"] > sum(page["requests"] for page in written["pages"].values())
    assert written["memory"]["growth"] == bench.memory_growth(written["memory"]["before_mib"],
                                                              written["memory"]["after_mib"])
    audit = written["audit_verify"]
    assert audit["rows"] > 0 and audit["rows_per_s"] > 0 and audit["clinic_days"] > 0
    assert written["sessions"] >= written["chart_sessions"] == 50, "the chart read is the long-term patient's"
    assert written["server_errors"] == []


def test_reminder_bench_dispatches_every_message_against_bare_smtplib(tmp_path):
    from tests.bench import reminders

    result = reminders.run(db="sqlite", messages=60, out=tmp_path, echo=lambda _: None)

    written = json.loads(next(tmp_path.glob("*-reminders-sqlite.json")).read_text())
    assert written == result
    assert written["messages"] == 60 and written["app_per_s"] > 0 and written["bare_smtplib_per_s"] > 0
    # The rates are rounded to 0.1 after the ratio was taken from them: equal to the rounding.
    assert written["ratio"] == pytest.approx(written["app_per_s"] / written["bare_smtplib_per_s"], abs=0.002)


def test_pdf_bench_measures_each_signed_summary_against_weasyprint_alone(tmp_path):
    from tests.bench import pdf

    result = pdf.run(db="sqlite", runs=1, sessions=1, out=tmp_path, echo=lambda _: None)

    written = json.loads(next(tmp_path.glob("*-pdf-sqlite.json")).read_text())
    assert written["runs"] == 1 and written.keys() >= {"reports", "skipped", "started_at", "weasyprint"}
    assert written["reports"].keys() == {key for key, _ in pdf.KINDS} == result["reports"].keys()
    assert written["skipped"] == {}
    for key, report in written["reports"].items():
        assert report["app_ms"] > 0 and report["weasyprint_ms"] > 0 and report["ratio"] > 0, key
        assert report["ratio"] == pytest.approx(report["app_ms"] / report["weasyprint_ms"], abs=0.002), key
        assert len(report["app_runs_ms"]) == len(report["weasyprint_runs_ms"]) == 1, key
        assert report["signed"] and report["pages"] >= 1 and report["statements"] > 0, key
