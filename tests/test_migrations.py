"""Migrations own the schema: upgrade an empty database, then `flask db check` finds nothing to do."""
import hashlib
import itertools
import json
from pathlib import Path

import pytest
from sqlalchemy import column, inspect, select, table, text

from config import TestConfig
from opsmgr import create_app
from opsmgr.backup.manifest import encode_value
from opsmgr.extensions import db
from tests.conftest import FrozenClock
from tests.demo_copies import demo_clinic_copy

_names = itertools.count(1)


@pytest.fixture
def empty_database(backend, tmp_path, request):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    server = request.getfixturevalue("pg_server")
    name = f"empty_{next(_names)}"
    server.admin(f"CREATE DATABASE {name}")
    yield server.url(name)
    server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def fresh_app(empty_database, tmp_path):
    app = create_app(TestConfig(empty_database, tmp_path / "instance"))
    yield app
    with app.app_context():
        db.engine.dispose()


def cli(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    return result.exit_code, result.output


def test_upgrade_on_an_empty_database_then_check_is_clean(fresh_app):
    assert cli(fresh_app, "db", "upgrade")[0] == 0
    code, output = cli(fresh_app, "db", "check")
    assert code == 0, output
    with fresh_app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    assert {"staff_user", "staff_session", "audit_event", "audit_head", "alembic_version"} <= tables


def test_check_fails_when_models_and_migrations_disagree(fresh_app):
    cli(fresh_app, "db", "upgrade")
    with fresh_app.app_context(), db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE stray_table (id INTEGER PRIMARY KEY)"))
    code, _ = cli(fresh_app, "db", "check")
    assert code != 0, "a schema that differs from the models must fail the check"


def test_sqlite_runs_wal_with_foreign_keys_full_sync_and_a_busy_timeout(tmp_path):
    app = create_app(TestConfig(f"sqlite:///{tmp_path / 'pragma.sqlite3'}", tmp_path / "instance"))
    with app.app_context():
        conn = db.session.connection()
        pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")}
        db.session.rollback()
        db.engine.dispose()
    assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 2, "busy_timeout": 15000}


def test_every_locked_table_has_its_triggers_at_head(fresh_app):
    """A later batch migration on SQLite recreates tables and would silently drop their triggers:
    at head, every table of the signed-session aggregate must still be guarded."""
    from opsmgr.sessions.record import LOCKED_MODELS

    assert cli(fresh_app, "db", "upgrade")[0] == 0
    with fresh_app.app_context(), db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            rows = conn.execute(text("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'"))
        else:
            rows = conn.execute(text("SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c "
                                     "ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"))
        triggers = {}
        for table, name in rows:
            triggers.setdefault(table, set()).add(name)
    for model in LOCKED_MODELS:
        table = model.__tablename__
        assert any("signed" in name for name in triggers.get(table, ())), f"{table} has lost its lock trigger"
    assert triggers.get("note_addendum") and triggers.get("audit_event")


#: Nine steps back from head: through the batch rebuild of `patient` (search keys) and the move of
#: scores into their own table, on a database that holds the demo clinic.
SEEDED_STEP_TARGET = "f3b2c8d9e0a3"


@pytest.fixture
def seeded_app(backend, tmp_path, request):
    """The demo clinic at head on a database of the test's own (tests/demo_copies.py)."""
    app = create_app(TestConfig(demo_clinic_copy(backend, request, tmp_path), tmp_path / "instance",
                                CLOCK=FrozenClock()))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def column_digests(app):
    """{table: {column: checksum of its values in primary-key order, "#rows": row count}} (alembic_version aside)."""
    result = {}
    with app.app_context(), db.engine.connect() as conn:
        inspector = inspect(conn)
        for name in inspector.get_table_names():
            if name == "alembic_version":
                continue
            columns = [info["name"] for info in inspector.get_columns(name)]
            keys = inspector.get_pk_constraint(name)["constrained_columns"] or columns
            rows = table(name, *map(column, columns))
            hashes, count = {each: hashlib.sha256() for each in columns}, 0
            for row in conn.execute(select(rows).order_by(*(rows.c[key] for key in keys))):
                count += 1
                for each, value in zip(columns, row, strict=True):
                    hashes[each].update(json.dumps(value, default=encode_value).encode() + b"\n")
            result[name] = {"#rows": count, **{each: digest.hexdigest() for each, digest in hashes.items()}}
    with app.app_context():
        db.engine.dispose()  # before the next migration, which runs on a connection of its own
    return result


def test_a_seeded_database_goes_down_and_up_again_keeping_its_rows_then_down_to_base_and_up_to_head(seeded_app):
    """Row 23 of the reliability goals, on the demo clinic. Down several steps and up again: tables that
    exist at the lower revision keep their row counts, and every column that exists at both revisions
    keeps its checksum. Then down to base (every table dropped) and up to head with no error, clean."""
    app = seeded_app
    at_head = column_digests(app)
    assert at_head["patient"]["#rows"] > 0 and at_head["infusion_session"]["#rows"] > 0
    code, output = cli(app, "db", "downgrade", SEEDED_STEP_TARGET)
    assert code == 0, output
    lower = column_digests(app)
    assert len(lower) < len(at_head)
    code, output = cli(app, "db", "upgrade")
    assert code == 0, output
    again = column_digests(app)
    for name, columns in lower.items():
        kept = columns.keys() & at_head[name].keys()
        assert {each: again[name][each] for each in kept} == {each: at_head[name][each] for each in kept}, name

    code, output = cli(app, "db", "downgrade", "base")
    assert code == 0, output
    with app.app_context():
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
    assert cli(app, "db", "upgrade")[0] == 0
    assert cli(app, "db", "check")[0] == 0


def test_the_migrations_have_exactly_one_head():
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    folder = Path(__file__).resolve().parent.parent / "migrations"
    config = AlembicConfig(str(folder / "alembic.ini"))
    config.set_main_option("script_location", str(folder))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1
