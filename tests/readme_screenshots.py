"""The README's screenshots, taken from the demo clinic so they stay current: `make screenshots`.

Seeds the demo clinic (`flask demo seed`, every weekday open) into a throwaway SQLite file with the
clinic's clock at 15:50 today, serves it on a free local port, and drives Debian's Chromium through
Playwright as the staff would: the nurse's chair board, the physician's patient chart (DEMO-0010) and
the coordinator's schedule, each at a tablet (768×1024) and a desktop (1366×768) window.
Writes PNGs to tests/screenshots/ (or --out).
"""
import argparse
import tempfile
from datetime import datetime
from pathlib import Path

from opsmgr.core.clock import system_now
from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CLINIC_ZONE,
    CLOCKED_START,
    DEMO_PASSWORD,
    AdjustableClock,
    migrated_app,
    seed_demo,
    serving,
)

OUT = Path(__file__).resolve().parent / "screenshots"
WINDOWS = {"tablet": {"width": 768, "height": 1024}, "desktop": {"width": 1366, "height": 768}}


def sign_in(page, base, username):
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def board(page, base):
    sign_in(page, base, "nurse")
    page.goto(f"{base}/today")
    page.wait_for_load_state("networkidle")


def chart(page, base):
    sign_in(page, base, "physician")
    page.goto(f"{base}/patients/?q=DEMO-0010")
    page.locator("table a[href^='/patients/']").first.click()
    page.wait_for_load_state()
    # The PHQ-9/GAD-7 trend at the top of the window (instant: the page scrolls smoothly otherwise).
    page.locator("#scores").evaluate(
        "s => window.scrollTo({top: s.getBoundingClientRect().top + window.scrollY - 8, behavior: 'instant'})")


def schedule(page, base):
    sign_in(page, base, "coordinator")
    page.goto(f"{base}/schedule")
    page.wait_for_load_state()


PAGES = {"board": board, "chart": chart, "schedule": schedule}


def take(out, echo=print):
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    today = system_now().astimezone(CLINIC_ZONE).date()
    clock = AdjustableClock(datetime.combine(today, CLOCKED_START, tzinfo=CLINIC_ZONE) - system_now())
    written = []
    with tempfile.TemporaryDirectory(prefix="opsmgr-shots-") as folder:
        app = migrated_app(Path(folder), "shots", lambda: seed_demo(clock), CLOCK=clock)
        with serving(app) as base, sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                for window, size in WINDOWS.items():
                    for name, visit in PAGES.items():
                        context = browser.new_context(viewport=size)
                        page = context.new_page()
                        visit(page, base)
                        path = out / f"{name}-{window}.png"
                        page.screenshot(path=str(path), full_page=False)
                        context.close()
                        written.append(path)
                        echo(f"wrote {path}")
            finally:
                browser.close()
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    take(parser.parse_args().out)


if __name__ == "__main__":
    main()
