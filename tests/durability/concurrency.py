"""Test 20 (reliability.md §8): several processes run the vitals-entry transaction at once on one SQLite file.

Each transaction is one action as the app runs it: inside a POST request context, ``core.web.attempt``
runs the call and commits (BEGIN IMMEDIATE, from ``core.db``). The call reads the infusion session as the
view loads it, reads a counter row, records a reading through ``infusion.vitals.record_vitals`` (which
appends to the audit chain: the app's own read-then-write counter) and writes the counter back plus one.
A lost update shows as a counter below the number of transactions, or a gap in the audit chain.
"""
import math
import multiprocessing
import time
from dataclasses import dataclass, field

from sqlalchemy import text

from opsmgr.audit.service import Actor
from opsmgr.core.web import attempt
from opsmgr.extensions import db

#: The counter the transactions read and write back plus one (a table of this test only).
COUNTER_DDL = "CREATE TABLE durability_counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)"
LOCKED = "database is locked"


@dataclass
class WorkerResult:
    latencies_ms: list = field(default_factory=list)
    errors: list = field(default_factory=list)


def create_counter(app):
    with app.app_context():
        db.session.execute(text(COUNTER_DDL))
        db.session.execute(text("INSERT INTO durability_counter (id, value) VALUES (1, 0)"))
        db.session.commit()


def one_transaction(app, session_id, actor, now):
    """Read the session and the counter, record a reading, write the counter back plus one; commit."""
    from opsmgr.infusion import vitals
    from opsmgr.sessions.service import session_or_404

    def call():
        visit = session_or_404(session_id)
        seen = db.session.execute(text("SELECT value FROM durability_counter WHERE id = 1")).scalar_one()
        row, _ = vitals.record_vitals(visit, systolic=124, diastolic=78, heart_rate=72, spo2=98, moaas=5,
                                      taken_at=now, actor=actor, now=now)
        db.session.execute(text("UPDATE durability_counter SET value = :v WHERE id = 1"), {"v": seen + 1})
        return row.id

    def refused(error):
        raise AssertionError(f"refused: {error.errors}")

    with app.test_request_context(f"/sessions/{session_id}/infusion/vitals", method="POST"):
        try:
            return attempt(call, done=lambda vital_id: vital_id, refused=refused)
        finally:
            db.session.remove()


def warm_up(app, session_id, actor):
    """One transaction in the parent before the fork: the children inherit its imports and SQLAlchemy's
    compiled statements, so the latencies measured are those of a running server, not of a first request."""
    with app.app_context():
        one_transaction(app, session_id, actor, app.config["CLOCK"]())


def _work(app, session_id, actor, transactions, start, results):
    result = WorkerResult()
    try:
        with app.app_context():
            db.engine.dispose(close=False)  # never share the parent's connections (there are none: belt and braces)
            now = app.config["CLOCK"]()
            start.wait(timeout=120)
            for _ in range(transactions):
                began = time.perf_counter()
                try:
                    one_transaction(app, session_id, actor, now)
                except Exception as error:  # noqa: BLE001 - every failure reaching the caller is counted
                    result.errors.append(f"{type(error).__name__}: {error}"[:300])
                    continue
                result.latencies_ms.append((time.perf_counter() - began) * 1000)
            db.engine.dispose()
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which fails the test
        result.errors.append(f"writer failed: {type(error).__name__}: {error}"[:300])
    finally:
        results.put(result)


def run_writers(app, session_id, actor: Actor, *, processes, transactions):
    """Fork `processes` writers that start together; each runs `transactions` transactions. Returns the
    WorkerResults. Fork (not spawn): a child reuses the imported app instead of importing it again."""
    context = multiprocessing.get_context("fork")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    start, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_work, args=(app, session_id, actor, transactions, start, results))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    collected = [results.get(timeout=1500) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0, f"writer {worker.pid} exited with {worker.exitcode}"
    return collected


def percentile(values, share):
    """The nearest-rank percentile (share 0.95 → p95)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
