"""Browser fixtures: one live server on SQLite and one headless Debian Chromium per session.

These tests run on SQLite only (the PostgreSQL coverage is in the other tests), so no fixture
here depends on the parametrized ``backend`` fixture of tests/conftest.py.
"""
import os
import threading
from pathlib import Path

import pytest
from flask_migrate import upgrade
from werkzeug.serving import make_server

from config import TestConfig
from opsmgr import create_app
from opsmgr.core.clock import system_now
from opsmgr.demo.service import seed_demo_staff
from opsmgr.extensions import db

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
#: The password of every seeded demo account in the browser tests.
DEMO_PASSWORD = "browser walks past nine quiet chairs"
DEFAULT_VIEWPORT = {"width": 1024, "height": 768}
TIMEOUT_MS = 10_000


def in_ci():
    return os.environ.get("CI", "").strip().lower() in {"1", "true"}


def unavailable(message):
    """No browser: a failure in CI, a skip on a developer machine."""
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def open_every_day_with_three_chairs():
    """Whatever day the suite runs on, the clinic is open and has chairs to book."""
    from opsmgr.schedule.models import Chair, ClinicDay

    for day in db.session.query(ClinicDay):
        day.is_open = True
    db.session.add_all(Chair(name=f"Chair {n}", position=n) for n in (1, 2, 3))


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The app on a migrated, seeded SQLite file, served over HTTP on a free local port."""
    folder = tmp_path_factory.mktemp("browser")
    app = create_app(TestConfig(f"sqlite:///{folder / 'browser.sqlite3'}", folder / "instance"))
    with app.app_context():
        upgrade()
        seed_demo_staff(now=system_now(), password=DEMO_PASSWORD)
        open_every_day_with_three_chairs()
        db.session.commit()
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="opsmgr-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the whole session (never a downloaded browser)."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"{CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    manager = sync_playwright()
    try:
        driver = manager.start()
        # Playwright turns the back/forward cache off by default; real browsers keep it on, and the
        # sign-out test must see what Back does there.
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                                          ignore_default_args=["--disable-back-forward-cache"])
    except Exception as error:  # noqa: BLE001 - any launch failure means "no browser here"
        manager.__exit__(None, None, None)
        unavailable(f"could not launch {CHROMIUM} through Playwright: {error}")
    try:
        yield chromium
    finally:
        chromium.close()
        manager.__exit__(None, None, None)


@pytest.fixture
def viewport():
    """The window size; a test may override it with @pytest.mark.parametrize("viewport", [{...}])."""
    return DEFAULT_VIEWPORT


@pytest.fixture
def context(browser, viewport):
    """A fresh browser context (no cookies, no cache) for each test."""
    ctx = browser.new_context(viewport=viewport)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()
