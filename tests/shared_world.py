"""Test data that many tests share, built once per worker and backend, and one app that serves it.

The role x endpoint matrix makes hundreds of requests against the same world (chairs, a patient with
a medication, a series of sessions, a target account and one account per role). Building that world
and an app for each row cost more than the rows themselves, so a ``SharedWorld`` builds it once into
a template and gives each test a clean copy of it:
- on SQLite, a fresh copy of the template file (tests/sqlite_files.py);
- on PostgreSQL, the template database inside a rolled-back transaction (tests/transactions.py).
The app is built once too: only its clock changes from test to test.
"""
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from config import TestConfig
from opsmgr import create_app
from opsmgr.extensions import db
from tests.sqlite_files import SqliteCopies
from tests.templates_cache import share_compiled_templates
from tests.transactions import RolledBackDatabase


@dataclass
class SharedWorld:
    app: object
    data: dict
    _reset: object

    @contextmanager
    def fresh_copy(self, clock):
        """The world as built, for one test, with the app reading `clock`."""
        with self._reset():
            self.app.config["CLOCK"] = clock
            yield self


def build_app(url, folder, client_class, clock):
    app = share_compiled_templates(create_app(TestConfig(url, folder / "instance", CLOCK=clock)))
    app.test_client_class = client_class
    return app


def dispose(app):
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def sqlite_world(template, folder, build, client_class, clock):
    """`build(app)` run once on a copy of `template`; each test then gets a fresh copy of the result."""
    folder = Path(folder)
    built = folder / "world.sqlite3"
    shutil.copyfile(template, built)
    builder = build_app(f"sqlite:///{built}", folder, client_class, clock)
    data = build(builder)
    dispose(builder)  # the last connection closes: WAL checkpointed, nothing left beside the file
    copies = SqliteCopies(built, folder / "copies")
    app = build_app(copies.url, folder, client_class, clock)
    own_engine = copies.adopt(app)

    def close():
        copies.release(app, own_engine)
        dispose(app)
        copies.close()

    return SharedWorld(app, data, copies.fresh_copy), close


def postgresql_world(server, template, name, folder, build, client_class, clock):
    """`build(app)` committed once into database `name` (from `template`); each test then runs on it
    inside a transaction that is rolled back."""
    folder = Path(folder)
    server.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
    builder = build_app(server.url(name), folder, client_class, clock)
    data = build(builder)
    dispose(builder)
    database = RolledBackDatabase(server.url(name))
    app = build_app(database.url, folder, client_class, clock)
    own_engine = database.adopt(app)

    @contextmanager
    def reset():
        with database.transaction():
            try:
                yield
            finally:
                with app.app_context():
                    db.session.remove()
        if database.violation:
            raise AssertionError(database.violation)

    def close():
        database.release(app, own_engine)
        dispose(app)
        database.close()

    return SharedWorld(app, data, reset), close


def worlds_by_backend(tmp_path_factory, name, build, client_class, clock_class):
    """A fixture body: yields `world_for(backend, *sources)`, which builds `build`'s world for that backend
    on first use in this worker (sqlite_world or postgresql_world, database "opsmgr_<name>") and returns
    it afterwards; every world is closed when the fixture ends."""
    worlds, closers = {}, []

    def world_for(backend, *sources):
        if backend not in worlds:
            folder = tmp_path_factory.mktemp(f"{name}-{backend}")
            if backend == "sqlite":
                world, close = sqlite_world(*sources, folder, build, client_class, clock_class())
            else:
                world, close = postgresql_world(*sources, f"opsmgr_{name}", folder, build, client_class,
                                                clock_class())
            worlds[backend] = world
            closers.append(close)
        return worlds[backend]

    yield world_for
    for close in closers:
        close()


def world_sources(backend, request):
    """What a world is copied from: the migrated SQLite template, or the PostgreSQL server and template."""
    if backend == "sqlite":
        return (request.getfixturevalue("sqlite_template"),)
    return request.getfixturevalue("pg_server"), request.getfixturevalue("pg_template")
