"""Browser fixtures: one live server on SQLite and one headless Debian Chromium per session, and a
live server with the demo clinic on a clock the test can move forward.

These tests run on SQLite only (the PostgreSQL coverage is in the other tests), so no fixture
here depends on the parametrized ``backend`` fixture of tests/conftest.py.
"""
import itertools
import os
import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask_migrate import upgrade
from werkzeug.serving import make_server

from config import TestConfig
from opsmgr import create_app
from opsmgr.core.clock import system_now
from opsmgr.demo.service import seed_demo_clinic, seed_demo_staff
from opsmgr.extensions import db
from tests.sqlite_files import memory_folder

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


def open_every_day():
    from opsmgr.schedule.models import ClinicDay

    for day in db.session.query(ClinicDay):
        day.is_open = True


def open_every_day_with_three_chairs():
    """Whatever day the suite runs on, the clinic is open and has chairs to book."""
    from opsmgr.schedule.models import Chair

    open_every_day()
    db.session.add_all(Chair(name=f"Chair {n}", position=n) for n in (1, 2, 3))


def buffered(app):
    """`app` with each response read whole and closed before werkzeug's server writes it. A static file is
    otherwise sent from an open file that the dev server leaves to the garbage collector when the browser
    drops the connection mid-response (Chromium does, leaving a page), and the suite's warnings-as-errors
    then fail whichever test is running with a ResourceWarning (seen in make test-long's XSS sweep)."""

    def wsgi(environ, start_response):
        response = app(environ, start_response)
        try:
            return [b"".join(response)]
        finally:
            if hasattr(response, "close"):
                response.close()

    return wsgi


@contextmanager
def serving(app):
    """Serve `app` over HTTP on a free local port in a thread of this process; yields the base URL."""
    server = make_server("127.0.0.1", 0, buffered(app), threaded=True)
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


#: The suite's migrated SQLite file (the sqlite_template fixture of tests/conftest.py) and this worker's
#: folder on the /dev/shm tmpfs (tests/sqlite_files.py), once known.
_MIGRATED = {}
_files = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def _migrated_template(sqlite_template):
    """Lets migrated_app copy the migrated template instead of running every migration again, into memory
    where the machine has a tmpfs (commits then wait for no disk; the pragmas are the app's)."""
    _MIGRATED["path"], _MIGRATED["memory"] = sqlite_template, memory_folder()
    yield
    if _MIGRATED["memory"] is not None:
        shutil.rmtree(_MIGRATED["memory"], ignore_errors=True)
    _MIGRATED.clear()


def database_file(folder, name):
    """Where a browser test's SQLite file goes: in the worker's memory folder if any, else in `folder`."""
    memory = _MIGRATED.get("memory")
    return folder / f"{name}.sqlite3" if memory is None else memory / f"{name}-{next(_files)}.sqlite3"


def migrated_app(folder, name, seed, **overrides):
    """The app on a new SQLite file (database_file), migrated (a copy of the migrated template), with
    `seed()` run in it and committed."""
    path = database_file(folder, name)
    template = _MIGRATED.get("path")
    if template is not None:
        shutil.copyfile(template, path)
    app = create_app(TestConfig(f"sqlite:///{path}", folder / "instance", **overrides))
    with app.app_context():
        if template is None:
            upgrade()
        seed()
        db.session.commit()
        db.session.remove()
    return app


def seed_staff_and_three_chairs():
    seed_demo_staff(now=system_now(), password=DEMO_PASSWORD)
    open_every_day_with_three_chairs()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The app on a migrated, seeded SQLite file, served over HTTP on a free local port."""
    app = migrated_app(tmp_path_factory.mktemp("browser"), "browser", seed_staff_and_three_chairs)
    with serving(app) as url:
        yield url


class AdjustableClock:
    """Real time plus an offset the test moves forward; app.config["CLOCK"] of a live server.

    The server's threads call it while the test advances it: they share this one object, and
    reading or replacing a timedelta attribute is atomic under the GIL.
    """

    def __init__(self, offset=timedelta(0)):
        self.offset = offset

    def __call__(self):
        return system_now() + self.offset

    def advance(self, **delta):
        self.offset += timedelta(**delta)
        return self()


#: TestConfig's clinic zone.
CLINIC_ZONE = ZoneInfo("America/New_York")
#: Clinic time when the clocked server starts. A session walk takes about 90 minutes of clinic time:
#: starting mid-afternoon keeps all of it on one clinic day whenever the suite runs (at 23:30 New
#: York time, 90 minutes would cross midnight and leave "today's" board), and the demo board
#: (laid out around 15:00 at the latest, see demo.service.board_anchor) has its 16:00 booster
#: booking ten minutes ahead, as a patient arriving a little early would.
CLOCKED_START = time(15, 50)


@dataclass(frozen=True)
class ClockedServer:
    url: str
    clock: AdjustableClock

    def local_now(self):
        """The server's 'now' in the clinic's time zone."""
        return self.clock().astimezone(CLINIC_ZONE)


def seed_demo(clock):
    """The demo clinic as `flask demo seed` makes it, with every weekday open, so the demo courses
    (and the run) do not depend on the day of the week."""
    open_every_day()
    seed_demo_staff(now=clock(), password=DEMO_PASSWORD)
    seed_demo_clinic(now=clock())


@pytest.fixture(scope="session")
def seeded_demo_files(tmp_path_factory):
    """`start` -> a migrated SQLite file with the demo clinic seeded at exactly `start` (seed_demo),
    made on first use in this worker: a test copies it instead of migrating and seeding again."""
    files = {}

    def file_for(start):
        if start not in files:
            folder = tmp_path_factory.mktemp("seeded-demo")
            at = start.astimezone(UTC)

            def frozen():
                return at

            app = migrated_app(folder, "demo", lambda: seed_demo(frozen), CLOCK=frozen)
            with app.app_context():
                files[start] = Path(db.engine.url.database)
                db.engine.dispose()  # the last connection closes: WAL checkpointed, nothing left beside the file
        return files[start]

    return file_for


@pytest.fixture
def clocked_live_server(tmp_path, seeded_demo_files):
    """The demo clinic (`flask demo seed`: staff, four chairs, twelve patients, today's board) on its own
    migrated SQLite file, served on a free port, with a clock that starts at CLOCKED_START clinic time
    today and that the test advances (`clocked_live_server.clock.advance(minutes=10)`). The clinic is
    seeded at CLOCKED_START once per worker and day and copied for each test (seeded_demo_files).

    The idle limit stays at its default (IDLE_TIMEOUT, 15 minutes): a test that moves the clock must
    make a request at least every 15 clinic minutes, as a nurse at the chair would.
    """
    today = system_now().astimezone(CLINIC_ZONE).date()
    start = datetime.combine(today, CLOCKED_START, tzinfo=CLINIC_ZONE)
    path = database_file(tmp_path, "clocked")
    shutil.copyfile(seeded_demo_files(start), path)
    clock = AdjustableClock(start - system_now())
    app = create_app(TestConfig(f"sqlite:///{path}", tmp_path / "instance", CLOCK=clock))
    assert app.config["CLINIC_TIMEZONE"] == CLINIC_ZONE.key
    with serving(app) as url:
        yield ClockedServer(url, clock)


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


@pytest.fixture
def new_context(browser, viewport):
    """More browser contexts for one test (a second person on another tablet), each closed at the end."""
    contexts = []

    def make():
        ctx = browser.new_context(viewport=viewport)
        ctx.set_default_timeout(TIMEOUT_MS)
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()
