"""Fixtures: the app on SQLite and on a real PostgreSQL, clients that carry CSRF tokens, a frozen clock."""
import itertools
import os
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import request, session
from flask.testing import FlaskClient
from flask_login import login_user
from flask_migrate import upgrade
from itsdangerous import URLSafeTimedSerializer

from config import TestConfig
from opsmgr import create_app
from opsmgr.auth import service
from opsmgr.core.clock import utcnow
from opsmgr.extensions import db
from tests.counts import pytest_collection_modifyitems, pytest_runtest_logreport, pytest_terminal_summary  # noqa: F401
from tests.pg import PostgresServer, find_bindir
from tests.routing_cache import share_compiled_url_builders
from tests.shared_world import world_sources, worlds_by_backend
from tests.sqlite_files import SqliteCopies
from tests.templates_cache import share_compiled_templates
from tests.transactions import RolledBackDatabase

share_compiled_url_builders()  # every app the suite builds reuses werkzeug's compiled URL builders

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
#: `make test-long` sets OPSMGR_TEST_LONG=1: tests marked `long` then run at full size (see `long_run`).
LONG_RUN = os.environ.get("OPSMGR_TEST_LONG") == "1"
BACKENDS = ("sqlite", "postgresql")
START = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
_db_numbers = itertools.count(1)


class FrozenClock:
    """Injected as app.config["CLOCK"]: time moves only when a test moves it."""

    def __init__(self, now=START):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)
        return self.now


class StaffClient(FlaskClient):
    """A test client that adds a valid CSRF token to the forms it submits."""

    def csrf_token(self):
        with self.session_transaction() as sess:
            raw = sess.setdefault("csrf_token", secrets.token_hex(20))
        return URLSafeTimedSerializer(self.application.secret_key, salt="wtf-csrf-token").dumps(raw)

    def submit(self, url, data=None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf_token())
        return self.post(url, data=data, **kwargs)

    def login(self, username, password):
        return self.submit("/login", {"username": username, "password": password})

    def logout(self):
        return self.submit("/logout")


@pytest.fixture(scope="session")
def long_run():
    """True under `make test-long`: a test marked `long` picks its full size, else its short sample."""
    return LONG_RUN


@pytest.fixture(scope="session")
def pg_server():
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


def migrate_to_head(url, instance_path):
    app = create_app(TestConfig(url, instance_path))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sqlite-template")
    path = folder / "template.sqlite3"
    migrate_to_head(f"sqlite:///{path}", folder / "instance")
    return path


@pytest.fixture(scope="session")
def pg_template(pg_server, tmp_path_factory):
    pg_server.admin("CREATE DATABASE opsmgr_template")
    migrate_to_head(pg_server.url("opsmgr_template"), tmp_path_factory.mktemp("pg-template"))
    return "opsmgr_template"


@pytest.fixture(scope="session")
def pg_rolled_back(pg_server, pg_template):
    """This worker's one migrated PostgreSQL database for the tests that roll back (tests/transactions.py)."""
    pg_server.admin(f"CREATE DATABASE opsmgr_tests TEMPLATE {pg_template}")
    database = RolledBackDatabase(pg_server.url("opsmgr_tests"))
    yield database
    database.close()


@pytest.fixture(scope="session")
def sqlite_copies(sqlite_template, tmp_path_factory):
    """This worker's SQLite file and engine: a fresh copy of the template for each test (tests/sqlite_files.py)."""
    copies = SqliteCopies(sqlite_template, tmp_path_factory.mktemp("sqlite"))
    yield copies
    copies.close()


#: OPSMGR_DEMO_PASSWORD for the shared demo clinic (demo_clinic below).
DEMO_PASSWORD = "scripted demo passphrase"


def seed_the_demo_clinic(app):
    """`flask demo seed` on `app` (at its clock's time), every demo account given DEMO_PASSWORD."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPSMGR_DEMO_PASSWORD", DEMO_PASSWORD)
        result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    return {"output": result.output}


@pytest.fixture(scope="session")
def demo_worlds(tmp_path_factory):
    """Per backend, built on first use in this worker: the demo clinic as `flask demo seed` leaves it at
    START, and the one app serving it (tests/shared_world.py). Seeding takes about a second; about
    twenty tests only read or extend its result."""
    yield from worlds_by_backend(tmp_path_factory, "demo", seed_the_demo_clinic, StaffClient, FrozenClock)


@pytest.fixture
def demo_clinic(backend, demo_worlds, clock, request):
    """A fresh copy of the seeded demo clinic (demo_worlds) for one test: `.app` on this test's clock,
    `.data["output"]` what the seed printed. Its accounts' password is DEMO_PASSWORD."""
    sources = world_sources(backend, request)
    with demo_worlds(backend, *sources).fresh_copy(clock) as world:
        yield world


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def worker_database(backend, request):
    """The worker's database this test runs on, whose engine every app of the test uses: on SQLite a
    fresh copy of the template; on PostgreSQL the worker's database inside this test's transaction,
    rolled back at the end. None for PostgreSQL tests marked fresh_db."""
    if backend == "sqlite":
        with request.getfixturevalue("sqlite_copies").fresh_copy() as copies:
            yield copies
        return
    if request.node.get_closest_marker("fresh_db"):
        yield None
        return
    database = request.getfixturevalue("pg_rolled_back")
    with database.transaction():
        yield database
    if database.violation:
        pytest.fail(database.violation, pytrace=False)


@pytest.fixture
def database_url(backend, worker_database, request):
    """A migrated database for one test (see worker_database); for fresh_db tests on PostgreSQL, a
    database of its own made from the template."""
    if worker_database is not None:
        yield worker_database.url
        return
    server = request.getfixturevalue("pg_server")
    template = request.getfixturevalue("pg_template")
    name = f"test_{os.getpid()}_{next(_db_numbers)}"
    server.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
    yield server.url(name)
    server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def clock():
    return FrozenClock()


@pytest.fixture
def make_app(database_url, worker_database, tmp_path, clock):
    """Build an app on this test's database; more than one call gives separate 'workers'."""
    apps = []

    def build(**overrides):
        overrides.setdefault("CLOCK", clock)
        app = share_compiled_templates(create_app(TestConfig(database_url, tmp_path / "instance", **overrides)))
        app.test_client_class = StaffClient
        apps.append((app, worker_database.adopt(app) if worker_database else None))
        return app

    yield build
    for app, own_engine in apps:
        if worker_database:
            worker_database.release(app, own_engine)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_user(app, clock):
    """Create a staff member directly through the service; returns (user id, username, password)."""
    from tests.factories import create_user

    def make(role="nurse", username=None, password=PASSWORD, **fields):
        with app.app_context():
            return create_user(role=role, username=username, password=password, now=clock(), **fields)

    return make


def sign_in(client, username, password):
    """Sign a test client in as /login does (the same service call, audit event and Flask-Login
    session), without the HTTP round trip: a new staff session and its cookie."""
    app = client.application
    with app.test_request_context("/login", method="POST"):
        result = service.authenticate(username, password, ip=request.remote_addr, now=utcnow())
        db.session.commit()
        assert result.ok, f"{username} could not sign in"
        session.clear()
        login_user(result.user)
        signed_in = dict(session)
    with client.session_transaction() as cookie:
        cookie.clear()
        cookie.update(signed_in)


@pytest.fixture
def login_as(app, make_user):
    """A signed-in client for a role: login_as("nurse"). The sign-in is direct (see sign_in);
    tests/test_auth.py signs in through the form."""

    def login(role, username=None):
        user = make_user(role, username=username)
        client = app.test_client()
        sign_in(client, user.username, user.password)
        client.user = user
        return client

    return login


@pytest.fixture
def login_through_form(app, make_user):
    """login_as, signing in by posting the /login form."""

    def login(role, username=None):
        user = make_user(role, username=username)
        client = app.test_client()
        response = client.login(user.username, user.password)
        assert response.status_code == 302, response.get_data(as_text=True)
        client.user = user
        return client

    return login


def csrf_from(html):
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    return match.group(1) if match else None


__all__ = ["FrozenClock", "StaffClient", "PASSWORD", "DEMO_PASSWORD", "START", "csrf_from", "Path"]
