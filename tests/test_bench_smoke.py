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


def test_bench_measures_every_page_against_hello(wrk_installed, tmp_path):
    result = bench.run(db="sqlite", seconds=1, patients=20, connections=4, out=tmp_path, echo=lambda _: None)

    written = json.loads(next(tmp_path.glob("*-sqlite.json")).read_text())
    assert written["pages"].keys() == {key for key, _ in bench.PAGES} == result["pages"].keys()
    assert written["hello_rps"] > 0 and len(written["hello"]) == 2
    for key, page in written["pages"].items():
        assert page["rps"] > 0 and page["ratio"] > 0, key
        assert page["statements"] > 0 and page["requests"] > 0, key
        assert page["not_200"] == 0, key
    assert len(written["memory"]["before_mib"]) == len(written["memory"]["after_mib"]) == bench.WORKERS
    assert written["memory"]["requests"] == sum(page["requests"] for page in written["pages"].values())
    assert written["server_errors"] == []


def test_reminder_bench_dispatches_every_message_against_bare_smtplib(tmp_path):
    from tests.bench import reminders

    result = reminders.run(db="sqlite", messages=60, out=tmp_path, echo=lambda _: None)

    written = json.loads(next(tmp_path.glob("*-reminders-sqlite.json")).read_text())
    assert written == result
    assert written["messages"] == 60 and written["app_per_s"] > 0 and written["bare_smtplib_per_s"] > 0
    assert written["ratio"] == round(written["app_per_s"] / written["bare_smtplib_per_s"], 3)
