"""Reliability under concurrent writers and crashes (reliability.md §8, tests 20 and 21).

Both are marked `long`: `make test` runs a short sample, `make test-long` the full size (8 processes ×
1,000 transactions; 50 kills of the server per backend). Each prints its figures (run with -s to see them).
"""
import os
import random
import secrets
import shutil
import sqlite3
import statistics
import threading
import time

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError

from config import Config, TestConfig
from opsmgr import create_app
from opsmgr.audit.chain import HEAD_ID
from opsmgr.audit.models import AuditHead
from opsmgr.audit.service import Actor
from opsmgr.core import db as core_db
from opsmgr.core.clock import utcnow
from opsmgr.extensions import db
from opsmgr.infusion import dose as dose_service
from opsmgr.infusion.models import VitalSign
from opsmgr.patients.models import Patient
from opsmgr.sessions.models import InfusionSession
from tests.conftest import BACKENDS, LONG_RUN, FrozenClock
from tests.durability import concurrency
from tests.durability.server import Gunicorn, WriteLoad
from tests.factories import create_chairs, create_user

# --- test 20: SQLite under concurrent writers ---------------------------------------------------------

@pytest.fixture
def sqlite_on_disk(sqlite_template, tmp_path):
    """The app on its own migrated SQLite file in the test's folder (on disk, so commits pay their fsync)."""
    path = tmp_path / "durability.sqlite3"
    shutil.copyfile(sqlite_template, path)
    app = create_app(TestConfig(f"sqlite:///{path}", tmp_path / "instance", CLOCK=FrozenClock()))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def infusing_session(app):
    """A session at the chair (dose started), and the nurse who records its vitals."""
    from tests.test_infusion import make_session

    clock = app.config["CLOCK"]
    with app.app_context():
        create_chairs(2)
    session_id = make_session(app, clock)
    with app.app_context():
        made = create_user(role="nurse", username="durable-nurse", password="durable nurse passphrase", now=clock())
        nurse = Actor(made.id, made.username, made.role)
        dose_service.start_dose(db.session.get(InfusionSession, session_id), infusion_minutes=40, actor=nurse,
                                now=clock())
        db.session.commit()
    return session_id, nurse


@pytest.mark.long
def test_concurrent_vitals_writers_on_sqlite_lose_nothing_and_never_see_locked(sqlite_on_disk, long_run):
    app = sqlite_on_disk
    processes, transactions = (8, 1000) if long_run else (4, 10)
    session_id, nurse = infusing_session(app)
    concurrency.create_counter(app)
    concurrency.warm_up(app, session_id, nurse)
    with app.app_context():
        settings = {name: db.session.execute(text(f"PRAGMA {name}")).scalar()
                    for name in ("journal_mode", "synchronous", "busy_timeout")}
        head_before = db.session.get(AuditHead, HEAD_ID).last_event_id
        db.session.rollback()
    assert settings == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 15000}

    began = time.perf_counter()
    results = concurrency.run_writers(app, session_id, nurse, processes=processes, transactions=transactions)
    elapsed = time.perf_counter() - began

    errors = [error for result in results for error in result.errors]
    latencies = [ms for result in results for ms in result.latencies_ms]
    expected = processes * transactions
    with app.app_context():
        readings = db.session.scalar(select(func.count()).select_from(VitalSign)
                                     .where(VitalSign.session_id == session_id))
        counter = db.session.execute(text("SELECT value FROM durability_counter")).scalar_one() - 1
        head = db.session.get(AuditHead, HEAD_ID).last_event_id
        integrity = db.session.execute(text("PRAGMA integrity_check")).scalars().all()
        runner = app.test_cli_runner()
    verified = runner.invoke(args=["audit", "verify"])
    p95 = concurrency.percentile(latencies, 0.95) if latencies else None
    print(f"\ntest 20: {processes} processes x {transactions} transactions in {elapsed:.1f} s; "
          f"write latency p50 {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms, max {max(latencies):.1f} ms; "
          f"{sum('database is locked' in e for e in errors)} locked, {len(errors)} errors")
    assert [e for e in errors if concurrency.LOCKED in e] == []
    assert errors == []
    assert readings - 1 == counter == expected, "a lost update (the warm-up wrote one of each)"
    assert head - head_before == expected, "one audit event per transaction, none lost"
    assert integrity == ["ok"]
    assert verified.exit_code == 0 and verified.output.startswith("OK"), verified.output


def test_a_waiting_writer_begins_once_the_lock_frees_and_gives_up_as_locked_at_the_timeout(tmp_path, monkeypatch):
    """The write lock's wait (core.db): another connection's write transaction is waited for, with
    busy_timeout back to 15 s inside the transaction; held past the timeout, the error is SQLAlchemy's."""
    engine = create_engine(f"sqlite:///{tmp_path / 'lock.sqlite3'}")
    engine.connect().close()  # the file is created in WAL mode
    holder = sqlite3.connect(tmp_path / "lock.sqlite3", isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN IMMEDIATE")
        began = time.monotonic()
        threading.Timer(0.05, holder.execute, args=("ROLLBACK",)).start()
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == core_db.SQLITE_BUSY_TIMEOUT_MS
            assert 0.04 < time.monotonic() - began < 5
        monkeypatch.setattr(core_db, "SQLITE_BUSY_TIMEOUT_MS", 100)
        holder.execute("BEGIN IMMEDIATE")
        with engine.connect() as connection, pytest.raises(OperationalError, match="database is locked"):
            connection.execute(text("SELECT 1"))
    finally:
        holder.close()
        engine.dispose()


# --- test 21: crash durability over HTTP --------------------------------------------------------------

USERNAME = "durable-coordinator"


@pytest.fixture
def crash_database(backend, tmp_path, request):
    """A fresh migrated database: a SQLite file on disk, or a PostgreSQL database on the suite's server."""
    if backend == "sqlite":
        path = tmp_path / "crash.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server, template = request.getfixturevalue("pg_server"), request.getfixturevalue("pg_template")
    name = f"crash_{os.getpid()}_{secrets.token_hex(4)}"
    server.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
    yield server.url(name)
    server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def server_environment(url, folder):
    """What the server and this test's own app read: production configuration on `url`."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("OPSMGR_")}
    return {**inherited, "OPSMGR_DATABASE_URL": url, "OPSMGR_INSTANCE_PATH": str(folder / "instance"),
            "OPSMGR_TIMEZONE": "America/New_York", "OPSMGR_SECRET_KEY": secrets.token_hex(32),
            "OPSMGR_AUDIT_KEY": secrets.token_hex(32), "OPSMGR_LOG_LEVEL": "WARNING"}


def check_after_crash(app, backend, acknowledged):
    """Every acknowledged write is in the database, SQLite's integrity check passes, the audit chain verifies."""
    mrns = {ack.mrn: ack.patient_id for ack in acknowledged}
    with app.app_context():
        stored = dict(db.session.execute(select(Patient.mrn, Patient.id).where(Patient.mrn.like("DUR-%"))).all())
        # On SQLite also the settings that make a commit durable: WAL, synchronous=FULL (2).
        pragmas = ("integrity_check", "journal_mode", "synchronous") if backend == "sqlite" else ()
        checked = [db.session.execute(text(f"PRAGMA {name}")).scalar() for name in pragmas]
        db.session.remove()
        db.engine.dispose()
    verified = app.test_cli_runner().invoke(args=["audit", "verify"])
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    missing = {mrn: number for mrn, number in mrns.items() if stored.get(mrn) != number}
    assert missing == {}, f"{len(missing)} acknowledged writes lost"
    assert checked in ([], ["ok", "wal", 2]), checked
    assert verified.exit_code == 0 and verified.output.startswith("OK"), verified.output
    return len(stored)


#: PostgreSQL runs in the long form only: each start of the server costs seconds, and `make test` has none to spare.
@pytest.mark.long
@pytest.mark.parametrize("backend", BACKENDS if LONG_RUN else ["sqlite"])
def test_killing_the_server_under_write_load_loses_no_acknowledged_write(backend, crash_database, tmp_path,
                                                                         long_run):
    kills = int(os.environ.get("OPSMGR_CRASH_KILLS") or (50 if long_run else 1))  # the env var: a quick look
    rng = random.Random(f"test 21 {backend}")
    env = server_environment(crash_database, tmp_path)
    app = create_app(Config(env))
    password = secrets.token_urlsafe(18)
    with app.app_context():
        create_user(role="coordinator", username=USERNAME, password=password, now=utcnow())
        db.session.remove()
        db.engine.dispose()
    server = Gunicorn(env, tmp_path)
    load = WriteLoad(server, USERNAME, password)
    starts, threads = [], []
    try:
        began = time.perf_counter()
        server.start()
        starts.append(time.perf_counter() - began)
        load.up.set()
        threads = load.run()
        for kill in range(1, kills + 1):
            # A random moment: after a few more acknowledged writes, then a random point inside a request.
            assert load.wait_for_acknowledged(len(load.acknowledged) + rng.randint(1, 10)), server.error_log()[-2000:]
            assert load.unexpected == [], server.error_log()[-4000:]
            time.sleep(rng.uniform(0, 0.05))
            load.up.clear()
            server.kill()
            check_after_crash(app, backend, list(load.acknowledged))
            if kill < kills:  # restarted after each kill but the last, whose check is the final one
                began = time.perf_counter()
                server.start()
                starts.append(time.perf_counter() - began)
                load.up.set()
    finally:
        load.stop.set()
        load.up.set()
        server.kill()
    for thread in threads:
        thread.join(timeout=60)
    stored = check_after_crash(app, backend, load.acknowledged)
    print(f"\ntest 21 ({backend}): {kills} SIGKILLs of gunicorn (master and 2 workers), {len(load.acknowledged)} "
          f"acknowledged writes of {load.attempts} sent, all present ({stored} stored); "
          f"start to ready median {statistics.median(starts):.1f} s")
    assert load.unexpected == []
    assert len(load.acknowledged) >= kills
