"""Migrations own the schema: upgrade an empty database, then `flask db check` finds nothing to do."""
import itertools

import pytest
from sqlalchemy import inspect, text

from config import TestConfig
from opsmgr import create_app
from opsmgr.extensions import db

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


def test_downgrade_to_base_and_upgrade_again(fresh_app):
    assert cli(fresh_app, "db", "upgrade")[0] == 0
    assert cli(fresh_app, "db", "downgrade", "base")[0] == 0
    with fresh_app.app_context():
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
    assert cli(fresh_app, "db", "upgrade")[0] == 0
    assert cli(fresh_app, "db", "check")[0] == 0


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
