"""The audit trail: tamper evidence, the append-only guard, concurrent appends, `flask audit verify`,
the admin report (filters, dates, paging, sorting, bad input), the CSV export, and the details rule."""
import csv
import hashlib
import html as htmllib
import io
import json
import random
import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, event, func, insert, select, text, update
from sqlalchemy.exc import DatabaseError, StatementError

from opsmgr.audit.chain import CHAINED_FIELDS, GENESIS, canonical, canonical_details, link_hash
from opsmgr.audit.models import AuditEvent, AuditHead
from opsmgr.audit.service import Actor, record, record_event, verify_chain
from opsmgr.extensions import db
from tests.conftest import PASSWORD, START

EVENTS = AuditEvent.__table__
REPORT = "/admin/audit/"
EXPORT = "/admin/audit/export.csv"


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def add_event(app, action="test.event", *, username="alice", role="nurse", user_id=None, ip="10.0.0.1",
              now=START, outcome="ok", object_type=None, object_id=None, patient_id=None, details=None):
    """Append one event through the service and commit; returns its id."""
    with app.app_context():
        made = record_event(action, actor=Actor(user_id, username, role, ip), now=now,
                            key=app.config["AUDIT_KEY"], outcome=outcome, object_type=object_type,
                            object_id=object_id, patient_id=patient_id, details=details)
        db.session.commit()
        return made


def seed_chain(app, count, *, user_id=None, action_prefix="seed"):
    """`count` varied events in one transaction (every row's content differs from every other's)."""
    key = app.config["AUDIT_KEY"]
    actions = ("chart.viewed", "dose.recorded", "vitals.recorded", "login.failed", "session.started")
    with app.app_context():
        for i in range(count):
            record_event(
                f"{action_prefix}.{actions[i % len(actions)]}",
                actor=Actor(user_id if i % 3 == 0 else None, f"user{i % 7}", ("nurse", "physician")[i % 2],
                            f"10.0.{i % 4}.{i % 250}"),
                now=START + timedelta(minutes=i, microseconds=37 * i),
                key=key,
                outcome="denied" if i % 5 == 0 else "ok",
                object_type=None if i % 6 == 0 else "chair",
                object_id=None if i % 6 == 0 else i,
                patient_id=None if i % 4 == 0 else 100 + i % 13,
                details={"seq": i, "flag": bool(i % 2)},
            )
        db.session.commit()


def event_count():
    return db.session.scalar(select(func.count()).select_from(AuditEvent))


def event_ids():
    return list(db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))


def disable_append_only_guard():
    """Inside the current transaction: lift the triggers (undone by the rollback on both backends)."""
    if db.engine.dialect.name == "sqlite":
        db.session.execute(text("DROP TRIGGER audit_event_no_update"))
        db.session.execute(text("DROP TRIGGER audit_event_no_delete"))
    else:
        db.session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))


def enable_append_only_guard():
    """Undo disable_append_only_guard within the same transaction (for tampering that is committed)."""
    if db.engine.dialect.name == "sqlite":
        db.session.execute(text("CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
                                "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"))
        db.session.execute(text("CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
                                "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"))
    else:
        db.session.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))


def commit_tampering(app, *statements):
    """Tamper for real (committed), then put the guard back, as an intruder with DB access would."""
    with app.app_context():
        disable_append_only_guard()
        for statement in statements:
            db.session.execute(statement)
        enable_append_only_guard()
        db.session.commit()


def row(event_id):
    return dict(db.session.execute(select(EVENTS).where(EVENTS.c.id == event_id)).mappings().one())


def chained(values):
    return {name: values[name] for name in CHAINED_FIELDS}


def table_rows(page_html):
    """The report's table as lists of cell texts (the 'no events' row is left out)."""
    body = page_html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [htmllib.unescape(re.sub(r"<[^>]+>", "", td)).strip()
                 for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        if len(cells) == 10:
            rows.append(cells)
    return rows


def listed_ids(page_html):
    return [int(cells[0]) for cells in table_rows(page_html)]


def audit_rows(app, action=None):
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            query = query.where(AuditEvent.action == action)
        return [(e.id, e.action, e.username, e.outcome, e.occurred_at, json.loads(e.details))
                for e in db.session.scalars(query)]


def assert_chain_ok(app, expected_count=None):
    with app.app_context():
        result = verify_chain(app.config["AUDIT_KEY"])
        assert result.ok, result
        ids = event_ids()
        assert ids == list(range(1, len(ids) + 1))
        if expected_count is not None:
            assert result.checked == expected_count == len(ids)
        return result


def field_error(page_html, field):
    match = re.search(rf'<div id="{field}-error"[^>]*>(.*?)</div>', page_html, re.S)
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).strip() if match else None


# --------------------------------------------------------------------------------------------
# 1. Tamper evidence: randomized trials against verify_chain
# --------------------------------------------------------------------------------------------

TRIALS_PER_KIND = 25
SEED = 20261126
MODIFIABLE = ("occurred_at", "user_id", "username", "role", "action", "object_type", "object_id",
              "patient_id", "outcome", "ip", "details", "prev_hash", "row_hash")


def random_hash(rng):
    return f"{rng.getrandbits(256):064x}"


def flip_one_hex_digit(rng, value):
    position = rng.randrange(len(value))
    replacement = rng.choice([c for c in "0123456789abcdef" if c != value[position]])
    return value[:position] + replacement + value[position + 1:]


def forged_hash(rng, prev_hash, values, neighbour_hash=None):
    """What an intruder without the audit key can put in row_hash."""
    how = rng.choice(["sha256", "guessed-key", "random", "copied"] if neighbour_hash else
                     ["sha256", "guessed-key", "random"])
    if how == "sha256":
        return how, hashlib.sha256(f"{prev_hash}\n{canonical(values)}".encode()).hexdigest()
    if how == "guessed-key":
        return how, link_hash(rng.choice(["opsmgr", "secret", "audit", "changeme"]), prev_hash, values)
    if how == "copied":
        return how, neighbour_hash
    return how, random_hash(rng)


def altered(field, value, rng, context):
    if field == "occurred_at":
        return value + timedelta(seconds=rng.randint(1, 86400))
    if field == "user_id":
        return None if value is not None else context["user_id"]
    if field == "patient_id":
        return (value or 0) + rng.randint(1, 1000)
    if field == "outcome":
        return "denied" if value == "ok" else "ok"
    if field == "details":
        return canonical_details({**json.loads(value), "seq": rng.randint(10_000, 99_999)})
    if field in ("prev_hash", "row_hash"):
        return flip_one_hex_digit(rng, value) if rng.random() < 0.5 else random_hash(rng)
    return (value or "") + rng.choice("xyz")


def tamper_modify(rng, n, variant, context):
    k = rng.randint(1, n) if variant % 5 else (1, n)[variant % 2]
    original = row(k)
    field = MODIFIABLE[variant % len(MODIFIABLE)]
    changes = {field: altered(field, original[field], rng, context)}
    how = "hash kept"
    if field not in ("prev_hash", "row_hash") and rng.random() < 0.6:
        how, changes["row_hash"] = forged_hash(rng, original["prev_hash"], chained({**original, **changes}))
        how = f"rehashed with {how}"
    db.session.execute(update(EVENTS).where(EVENTS.c.id == k).values(**changes))
    return f"modify {field} of event {k} ({how})", k


def tamper_delete(rng, n, variant, context):
    where = ("first", "middle", "last")[variant % 3]
    k = {"first": 1, "last": n}.get(where) or rng.randint(2, n - 1)
    db.session.execute(delete(EVENTS).where(EVENTS.c.id == k))
    # A hole is seen at the row after it; a missing newest row is seen at the head.
    return f"delete the {where} event ({k})", n - 1 if k == n else k + 1


def _forged_values(rng, n, event_id, when):
    template = row(rng.randint(1, n))
    values = chained(template)
    values.update(id=event_id, occurred_at=when, action="chart.viewed", outcome="ok",
                  details=canonical_details({"seq": rng.randint(10_000, 99_999), "forged": True}))
    return values


def tamper_insert(rng, n, variant, context):
    where = ("end", "end-and-head", "between", "gap", "before-first")[variant % 5]
    last = row(n)
    if where in ("end", "end-and-head", "gap"):
        event_id = n + 1 if where != "gap" else n + rng.randint(2, 5)
        values = _forged_values(rng, n, event_id, last["occurred_at"] + timedelta(seconds=1))
        how, row_hash = forged_hash(rng, last["row_hash"], values, neighbour_hash=last["row_hash"])
        db.session.execute(insert(EVENTS).values(**values, prev_hash=last["row_hash"], row_hash=row_hash))
        if where == "end-and-head":
            db.session.execute(update(AuditHead.__table__).values(last_event_id=event_id, last_hash=row_hash))
        return f"insert a forged event {event_id} at the {where} ({how})", event_id
    if where == "before-first":
        values = _forged_values(rng, n, 0, row(1)["occurred_at"] - timedelta(seconds=1))
        how, row_hash = forged_hash(rng, GENESIS, values)
        db.session.execute(insert(EVENTS).values(**values, prev_hash=GENESIS, row_hash=row_hash))
        return f"insert a forged event 0 before the first ({how})", 0
    # Between two rows: shift the later ids up by one (in two steps, so the primary key never
    # collides) and slot the forged row into the freed id, linked to the row before it.
    k = rng.randint(1, n)
    before = row(k - 1) if k > 1 else None
    after = row(k)
    prev_hash = before["row_hash"] if before else GENESIS
    values = _forged_values(rng, n, k, after["occurred_at"] - timedelta(microseconds=1))
    how, row_hash = forged_hash(rng, prev_hash, values, neighbour_hash=after["row_hash"])
    db.session.execute(update(EVENTS).where(EVENTS.c.id >= k).values(id=-EVENTS.c.id - 1))
    db.session.execute(update(EVENTS).where(EVENTS.c.id < 0).values(id=-EVENTS.c.id))
    db.session.execute(insert(EVENTS).values(**values, prev_hash=prev_hash, row_hash=row_hash))
    if rng.random() < 0.5:
        db.session.execute(update(AuditHead.__table__).values(last_event_id=n + 1))
    return f"insert a forged event between {k - 1} and {k} ({how})", k


def tamper_swap(rng, n, variant, context):
    i, j = sorted(rng.sample(range(1, n + 1), 2))
    if variant % 4 == 0:
        j = i + 1 if i < n else i - 1
        i, j = sorted((i, j))
    first, second = row(i), row(j)
    columns = [c for c in first if c != "id"]
    with_hashes = variant % 2 == 0
    if not with_hashes:
        columns = [c for c in columns if c not in ("prev_hash", "row_hash")]
    db.session.execute(update(EVENTS).where(EVENTS.c.id == i).values(**{c: second[c] for c in columns}))
    db.session.execute(update(EVENTS).where(EVENTS.c.id == j).values(**{c: first[c] for c in columns}))
    return f"swap events {i} and {j} ({'with' if with_hashes else 'without'} their hashes)", i


def tamper_truncate(rng, n, variant, context):
    k = (1, n, None)[variant % 3] or rng.randint(2, n - 1)
    db.session.execute(delete(EVENTS).where(EVENTS.c.id > n - k))
    return f"truncate the last {k} events", (n - k) or None


TAMPERINGS = {
    "modify": tamper_modify,
    "delete": tamper_delete,
    "insert": tamper_insert,
    "swap": tamper_swap,
    "truncate": tamper_truncate,
}


def test_untampered_chain_verifies_and_links_each_row_to_the_one_before(app):
    with app.app_context():
        assert verify_chain(app.config["AUDIT_KEY"]).ok, "an empty chain is intact"
    seed_chain(app, 30)
    assert_chain_ok(app, 30)
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        assert rows[0].prev_hash == GENESIS
        assert all(later.prev_hash == earlier.row_hash for earlier, later in zip(rows, rows[1:], strict=False))
        head = db.session.get(AuditHead, 1)
        assert (head.last_event_id, head.last_hash) == (30, rows[-1].row_hash)


def test_randomized_tampering_is_always_detected(app, make_user):
    """125 seeded-random trials over five kinds of tampering; each is rolled back before the next."""
    rng = random.Random(SEED)
    user = make_user("nurse")
    seed_chain(app, 80, user_id=user.id)
    key = app.config["AUDIT_KEY"]
    with app.app_context():
        n = event_count()
        assert verify_chain(key).ok and verify_chain(key).checked == n
        plan = [kind for kind in TAMPERINGS for _ in range(TRIALS_PER_KIND)]
        rng.shuffle(plan)
        seen, failures = Counter(), []
        for kind in plan:
            db.session.rollback()
            disable_append_only_guard()
            description, expected_bad = TAMPERINGS[kind](rng, n, seen[kind], {"user_id": user.id})
            seen[kind] += 1
            db.session.expunge_all()
            result = verify_chain(key)
            db.session.rollback()
            if result.ok or result.bad_event_id != expected_bad or not result.problem:
                failures.append(f"{description}: expected event {expected_bad} reported, got {result}")
        assert len(plan) >= 100 and set(seen) == set(TAMPERINGS)
        assert not failures, "\n".join(failures)
        # Every trial was rolled back: the chain is whole again and the guard is back in place.
        result = verify_chain(key)
        assert result.ok and result.checked == n
        with pytest.raises(DatabaseError):
            db.session.execute(text("DELETE FROM audit_event WHERE id = 1"))
        db.session.rollback()


def test_truncated_tail_is_detected(app):
    seed_chain(app, 20)
    with app.app_context():
        disable_append_only_guard()
        db.session.execute(delete(EVENTS).where(EVENTS.c.id > 17))
        result = verify_chain(app.config["AUDIT_KEY"])
        db.session.rollback()
    assert not result.ok
    assert result.bad_event_id == 17 and result.checked == 17
    assert "cut off" in result.problem


def test_altered_chain_head_is_detected(app):
    seed_chain(app, 10)
    with app.app_context():
        db.session.execute(update(AuditHead.__table__).values(last_event_id=9))
        result = verify_chain(app.config["AUDIT_KEY"])
        db.session.rollback()
        assert not result.ok and result.problem
        db.session.execute(delete(AuditHead.__table__))
        result = verify_chain(app.config["AUDIT_KEY"])
        db.session.rollback()
    assert not result.ok and "head" in result.problem


def test_verify_closes_its_cursor_when_it_stops_at_a_bad_row(app):
    """verify_chain streams rows (a server-side cursor on PostgreSQL); returning early must close it."""
    seed_chain(app, 30)
    with app.app_context():
        disable_append_only_guard()
        db.session.execute(update(EVENTS).where(EVENTS.c.id == 3).values(action="covered.up"))
        result = verify_chain(app.config["AUDIT_KEY"])
        assert not result.ok and result.bad_event_id == 3
        if db.engine.dialect.name == "postgresql":
            assert db.session.scalars(text("SELECT name FROM pg_cursors")).all() == []
        db.session.rollback()


def test_a_different_key_does_not_verify(app):
    seed_chain(app, 5)
    with app.app_context():
        result = verify_chain("some-other-key")
    assert not result.ok and result.bad_event_id == 1


# --------------------------------------------------------------------------------------------
# 2. The append-only guard in the database
# --------------------------------------------------------------------------------------------

def test_append_only_guard_refuses_update_and_delete_through_orm_and_sql(app):
    seed_chain(app, 5)
    attempts = {
        "orm update": lambda: (setattr(db.session.get(AuditEvent, 2), "action", "covered.up"), db.session.flush()),
        "orm delete": lambda: (db.session.delete(db.session.get(AuditEvent, 2)), db.session.flush()),
        "orm bulk update": lambda: db.session.execute(update(AuditEvent).where(AuditEvent.id == 3)
                                                      .values(outcome="ok")),
        "orm bulk delete": lambda: db.session.execute(delete(AuditEvent).where(AuditEvent.id >= 4)),
        "sql update": lambda: db.session.execute(text("UPDATE audit_event SET username = 'nobody' WHERE id = 1")),
        "sql delete": lambda: db.session.execute(text("DELETE FROM audit_event WHERE id = 5")),
        "sql delete all": lambda: db.session.execute(text("DELETE FROM audit_event")),
    }
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        attempts["sql truncate"] = lambda: db.session.execute(text("TRUNCATE audit_event"))
    with app.app_context():
        for name, attempt in attempts.items():
            with pytest.raises(DatabaseError, match="append-only"):
                attempt()
                pytest.fail(f"{name} was allowed")
            db.session.rollback()
    assert_chain_ok(app, 5)
    add_event(app, "still.appendable")
    assert_chain_ok(app, 6)


# --------------------------------------------------------------------------------------------
# 3. Concurrent appenders
# --------------------------------------------------------------------------------------------

def append_concurrently(apps, threads_per_app, events_per_thread, *, events_per_commit=1):
    total_threads = len(apps) * threads_per_app
    barrier = threading.Barrier(total_threads)
    errors = []

    def work(worker_app, name):
        try:
            key = worker_app.config["AUDIT_KEY"]
            with worker_app.app_context():
                barrier.wait(timeout=60)
                for seq in range(events_per_thread):
                    record_event("load.append", actor=Actor(None, name, None), now=START + timedelta(seconds=seq),
                                 key=key, details={"seq": seq})
                    if (seq + 1) % events_per_commit == 0 or seq == events_per_thread - 1:
                        db.session.commit()
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append((name, repr(error)))
            barrier.abort()

    threads = [threading.Thread(target=work, args=(worker_app, f"w{a}t{t}"))
               for a, worker_app in enumerate(apps) for t in range(threads_per_app)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "an appender hung"
    assert not errors, errors
    return total_threads * events_per_thread


def assert_each_writer_in_order(app, writers, events_per_thread):
    with app.app_context():
        by_writer = {}
        for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
            by_writer.setdefault(e.username, []).append(json.loads(e.details)["seq"])
    assert len(by_writer) == writers
    assert all(seqs == list(range(events_per_thread)) for seqs in by_writer.values())


@pytest.mark.fresh_db
def test_concurrent_appends_keep_one_gap_free_chain(app):
    expected = append_concurrently([app], threads_per_app=8, events_per_thread=25)
    assert expected == 200
    assert_chain_ok(app, expected)
    assert_each_writer_in_order(app, 8, 25)


@pytest.mark.fresh_db
def test_concurrent_multi_event_transactions_keep_one_gap_free_chain(app):
    expected = append_concurrently([app], threads_per_app=6, events_per_thread=20, events_per_commit=5)
    assert_chain_ok(app, expected)
    assert_each_writer_in_order(app, 6, 20)


@pytest.mark.fresh_db
def test_two_workers_appending_to_one_database_keep_one_chain(make_app):
    worker_a, worker_b = make_app(), make_app()
    add_event(worker_a, "before.load")
    expected = append_concurrently([worker_a, worker_b], threads_per_app=4, events_per_thread=25)
    assert_chain_ok(worker_b, expected + 1)
    assert_chain_ok(worker_a, expected + 1)
    with worker_a.app_context():
        head = db.session.get(AuditHead, 1)
        assert head.last_event_id == expected + 1


# --------------------------------------------------------------------------------------------
# 4. `flask audit verify`
# --------------------------------------------------------------------------------------------

def test_cli_verify_prints_ok_for_an_intact_chain(app, runner):
    seed_chain(app, 12)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 12 audit events")
    assert "TAMPERED" not in result.output


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_verify_reads_without_holding_the_write_lock(app, monkeypatch, runner):
    """flask audit verify walks millions of rows for a minute or more: meanwhile every writer must go on.
    Outside a request a transaction begins IMMEDIATE (it holds SQLite's write lock), so verify reads in
    reads.reading(); here another connection takes the write lock at once, midway through the walk."""
    import sqlite3

    from opsmgr.audit import service as audit_service

    seed_chain(app, 12)
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    walked, real_link = [], audit_service.Linker

    class Probe(real_link):
        def __call__(self, prev_hash, values):
            if not walked:  # the first row: the walk's transaction is open
                other = sqlite3.connect(path, timeout=0, isolation_level=None)
                try:
                    other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if verify holds the lock
                    other.execute("ROLLBACK")
                    walked.append("a writer went on")
                finally:
                    other.close()
            return super().__call__(prev_hash, values)

    monkeypatch.setattr(audit_service, "Linker", Probe)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert walked == ["a writer went on"]


@pytest.mark.fresh_db
def test_verify_reads_one_snapshot_while_another_worker_appends(make_app, monkeypatch):
    """Live traffic appends to the chain while verify walks it: verify checks the chain as it stood when it
    began (rows and head from one snapshot), not a head that moved past the rows it read (which would read
    as rows cut off). Found by make bench on PostgreSQL (READ COMMITTED: each statement its own snapshot)."""
    from opsmgr.audit import service as audit_service

    verifier, writer = make_app(), make_app()
    seed_chain(verifier, 12)
    appended, real_link = [], audit_service.Linker

    class AppendMidway(real_link):
        def __call__(self, prev_hash, values):
            if not appended:  # the walk has begun: another worker appends and commits
                with writer.app_context():
                    audit_service.record_event("meanwhile", actor=audit_service.SYSTEM, now=START,
                                               key=writer.config["AUDIT_KEY"])
                    db.session.commit()
                appended.append(True)
            return super().__call__(prev_hash, values)

    monkeypatch.setattr(audit_service, "Linker", AppendMidway)
    result = verifier.test_cli_runner().invoke(args=["audit", "verify"])
    assert appended and result.exit_code == 0, result.output
    assert result.output.startswith("OK: 12 audit events")
    monkeypatch.setattr(audit_service, "Linker", real_link)
    assert verifier.test_cli_runner().invoke(args=["audit", "verify"]).output.startswith("OK: 13 audit events")


def test_cli_verify_reports_the_first_modified_event_and_exits_1(app, runner):
    seed_chain(app, 12)
    commit_tampering(app, update(EVENTS).where(EVENTS.c.id == 7).values(outcome="ok", patient_id=1))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("TAMPERED: event 7:")
    assert "6 events verified before it" in result.output


def test_cli_verify_reports_a_deleted_event_and_exits_1(app, runner):
    seed_chain(app, 12)
    commit_tampering(app, delete(EVENTS).where(EVENTS.c.id == 4))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("TAMPERED: event 5:")


def test_cli_verify_reports_a_truncated_tail_and_exits_1(app, runner):
    seed_chain(app, 12)
    commit_tampering(app, delete(EVENTS).where(EVENTS.c.id > 9))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("TAMPERED: event 9:")
    assert "cut off" in result.output
    # The guard is back after the committed tampering.
    with app.app_context(), pytest.raises(DatabaseError):
        db.session.execute(text("DELETE FROM audit_event WHERE id = 1"))


# --------------------------------------------------------------------------------------------
# 5. The admin report: access, filters, dates, paging, sorting, bad input
# --------------------------------------------------------------------------------------------

def test_report_is_for_admins_only_and_refusals_are_audited(app, login_as, client):
    anonymous = client.get(REPORT)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    for role in ("nurse", "coordinator", "physician"):
        staff = login_as(role)
        assert staff.get(REPORT).status_code == 403
        assert staff.get(EXPORT).status_code == 403
        denied = [(e[2], e[3], e[5]["endpoint"]) for e in audit_rows(app, "access.denied")
                  if e[2] == staff.user.username]
        assert denied == [(staff.user.username, "denied", "audit.event_list"),
                          (staff.user.username, "denied", "audit.export_csv")]
    assert audit_rows(app, "audit.viewed") == [] and audit_rows(app, "audit.exported") == []
    assert login_as("admin").get(REPORT).status_code == 200


def test_report_filters_by_user(app, login_as):
    admin = login_as("admin")
    alice = [add_event(app, username="alice"), add_event(app, username="alice", outcome="denied")]
    add_event(app, username="bob")
    add_event(app, username="alicex")
    page = admin.get(REPORT, query_string={"username": "  Alice "})
    assert page.status_code == 200
    assert sorted(listed_ids(page.get_data(as_text=True))) == alice
    assert "2 events" in page.get_data(as_text=True)


def test_report_filters_by_patient(app, login_as):
    admin = login_as("admin")
    mine = [add_event(app, patient_id=41, object_type="infusion", object_id=i) for i in range(3)]
    add_event(app, patient_id=42)
    add_event(app, patient_id=None)
    html = admin.get(REPORT, query_string={"patient_id": "41"}).get_data(as_text=True)
    assert sorted(listed_ids(html)) == mine
    assert {cells[6] for cells in table_rows(html)} == {"41"}


def test_report_filters_by_mrn_and_staff_name_and_words_outcomes_as_the_csv_does(app, login_as, clock):
    """Staff filter by what they know (an MRN, a colleague's name), never by internal numbers; the page and
    the CSV name the patient and the staff member and say "Allowed" / "Denied" alike."""
    from tests.factories import create_patient, create_user

    with app.app_context():
        patient, other = create_patient(now=clock(), mrn="AUD-0042"), create_patient(now=clock(), mrn="AUD-0043")
        dana = create_user(role="nurse", username="dnurse", full_name="Dana Ortiz", password=PASSWORD, now=clock())
        ids = (patient.id, other.id, dana.id)
    patient_id, other_id, dana_id = ids
    admin = login_as("admin")
    mine = [add_event(app, patient_id=patient_id, username="dnurse", user_id=dana_id),
            add_event(app, patient_id=patient_id, outcome="denied")]
    add_event(app, patient_id=other_id, username="dnurse", user_id=dana_id)
    by_mrn = admin.get(REPORT, query_string={"mrn": " aud-0042 ", "action": "test.event"}).get_data(as_text=True)
    assert sorted(listed_ids(by_mrn)) == mine
    assert [(cells[2], cells[6], cells[7]) for cells in table_rows(by_mrn)] == [
        ("alice", "AUD-0042", "Denied"), ("Dana Ortiz (dnurse)", "AUD-0042", "Allowed")]
    by_name = admin.get(REPORT, query_string={"username": "ortiz", "mrn": "AUD-0042"}).get_data(as_text=True)
    assert listed_ids(by_name) == [mine[0]]
    assert 'id="mrn"' in by_name and 'name="patient_id"' not in by_name  # the form asks for the MRN, not an id
    export = admin.get(EXPORT, query_string={"mrn": "AUD-0042", "action": "test.event"})
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    exported = [dict(zip(CSV_HEADER, row, strict=True)) for row in rows[1:]]
    assert [(row["outcome"], row["patient_mrn"], row["staff_name"]) for row in exported] == [
        ("Denied", "AUD-0042", ""), ("Allowed", "AUD-0042", "Dana Ortiz")]


def test_report_filters_by_action_and_outcome(app, login_as):
    admin = login_as("admin")
    ok_dose = add_event(app, "dose.recorded")
    denied_dose = add_event(app, "dose.recorded", outcome="denied")
    denied_chart = add_event(app, "chart.viewed", outcome="denied")
    by_action = admin.get(REPORT, query_string={"action": "dose.recorded"}).get_data(as_text=True)
    assert sorted(listed_ids(by_action)) == [ok_dose, denied_dose]
    by_outcome = admin.get(REPORT, query_string={"outcome": "denied"}).get_data(as_text=True)
    assert sorted(listed_ids(by_outcome)) == [denied_dose, denied_chart]
    allowed = listed_ids(admin.get(REPORT, query_string={"outcome": "ok"}).get_data(as_text=True))
    assert ok_dose in allowed and denied_dose not in allowed and denied_chart not in allowed
    both = admin.get(REPORT, query_string={"action": "dose.recorded", "outcome": "denied",
                                           "username": "alice"}).get_data(as_text=True)
    assert listed_ids(both) == [denied_dose]
    assert "Denied" in table_rows(both)[0][7]


def test_report_filters_by_clinic_local_date_range(app, login_as):
    """America/New_York: Nov 27 runs 05:00 UTC Nov 27 to 05:00 UTC Nov 28 (EST)."""
    admin = login_as("admin")

    def at(*args):
        return add_event(app, "dated.event", username="dater", now=datetime(*args, tzinfo=UTC))

    late_26 = at(2026, 11, 27, 4, 59, 59, 999999)
    start_27 = at(2026, 11, 27, 5, 0)
    late_27 = at(2026, 11, 28, 4, 59, 59)
    start_28 = at(2026, 11, 28, 5, 0)
    december = at(2026, 12, 5, 12, 0)

    def shown(**dates):
        page = admin.get(REPORT, query_string={"username": "dater", **dates})
        assert page.status_code == 200
        return sorted(listed_ids(page.get_data(as_text=True)))

    assert shown(start="2026-11-27", end="2026-11-27") == [start_27, late_27]
    assert shown(start="2026-11-28") == [start_28, december]
    assert shown(end="2026-11-26") == [late_26]
    assert shown(start="2026-11-26", end="2026-11-28") == [late_26, start_27, late_27, start_28]
    assert shown(start="2026-12-06") == []
    times = {int(c[0]): c[1] for c in table_rows(admin.get(REPORT, query_string={"username": "dater"})
                                                 .get_data(as_text=True))}
    assert times[start_27] == "2026-11-27 00:00:00" and times[late_26] == "2026-11-26 23:59:59"


def test_report_date_range_follows_daylight_saving_change(app, login_as):
    """2027-03-14 in New York starts 05:00 UTC (EST) and ends 04:00 UTC next day (EDT): 23 hours."""
    admin = login_as("admin")

    def at(*args):
        return add_event(app, "dst.event", username="dst", now=datetime(*args, tzinfo=UTC))

    at(2027, 3, 14, 4, 59)
    first = at(2027, 3, 14, 5, 0)
    last = at(2027, 3, 15, 3, 59, 59)
    at(2027, 3, 15, 4, 0)
    html = admin.get(REPORT, query_string={"username": "dst", "start": "2027-03-14", "end": "2027-03-14"})
    assert sorted(listed_ids(html.get_data(as_text=True))) == [first, last]


def test_report_pages_through_the_filtered_rows(make_app, make_user):
    small = make_app(AUDIT_PAGE_SIZE=5)
    user = make_user("admin")
    admin = small.test_client()
    assert admin.login(user.username, PASSWORD).status_code == 302
    ids = [add_event(small, "paged.event") for _ in range(12)]
    pages = {}
    for number in (1, 2, 3):
        response = admin.get(REPORT, query_string={"action": "paged.event", "page": number})
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert f"12 events · page {number} of 3" in html
        pages[number] = listed_ids(html)
    assert pages[1] == ids[::-1][:5] and pages[2] == ids[::-1][5:10] and pages[3] == ids[::-1][10:]
    first = admin.get(REPORT, query_string={"action": "paged.event"}).get_data(as_text=True)
    assert listed_ids(first) == pages[1]
    assert "action=paged.event" in first and "page=2" in first, "the next link keeps the filters"
    beyond = admin.get(REPORT, query_string={"action": "paged.event", "page": 9})
    assert beyond.status_code == 200 and listed_ids(beyond.get_data(as_text=True)) == []
    everything = admin.get(REPORT).get_data(as_text=True)
    assert len(listed_ids(everything)) == 5, "AUDIT_PAGE_SIZE applies to the unfiltered report too"


def test_default_page_size_is_fifty(app, login_as):
    admin = login_as("admin")
    seed_chain(app, 60)
    html = admin.get(REPORT, query_string={"username": "user1"}).get_data(as_text=True)
    assert len(listed_ids(html)) == len([i for i in range(60) if i % 7 == 1])
    html = admin.get(REPORT).get_data(as_text=True)
    assert len(listed_ids(html)) == 50


def test_report_sorts_by_an_allowlisted_column(app, login_as):
    admin = login_as("admin")
    b = add_event(app, "b.middle", username="sorter", patient_id=30)
    a = add_event(app, "a.first", username="sorter", patient_id=10)
    c = add_event(app, "c.last", username="sorter", patient_id=20)
    a2 = add_event(app, "a.first", username="sorter", patient_id=40)

    def order(**args):
        page = admin.get(REPORT, query_string={"username": "sorter", **args})
        assert page.status_code == 200
        return listed_ids(page.get_data(as_text=True))

    assert order(sort="action", direction="asc") == [a, a2, b, c]
    assert order(sort="action", direction="desc") == [c, b, a2, a]
    assert order(sort="patient", direction="asc") == [a, c, b, a2]
    assert order(sort="time", direction="asc") == [b, a, c, a2]
    assert order() == [a2, c, a, b], "newest first by default"


@pytest.mark.parametrize("sort", [
    "row_hash", "id; DROP TABLE audit_event", "occurred_at DESC", "(SELECT 1)", "__class__", "",
])
def test_unknown_sort_is_refused_without_error(app, login_as, sort):
    admin = login_as("admin")
    seed_chain(app, 5)
    response = admin.get(REPORT, query_string={"sort": sort, "direction": "asc"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    if sort:
        assert field_error(html, "sort"), "the refused sort is explained next to the field"
    assert len(listed_ids(html)) >= 5
    assert_chain_ok(app)
    with app.app_context():
        assert event_count() >= 5


def test_unknown_direction_is_refused_without_error(app, login_as):
    admin = login_as("admin")
    response = admin.get(REPORT, query_string={"direction": "sideways"})
    assert response.status_code == 200
    assert field_error(response.get_data(as_text=True), "direction")


@pytest.mark.parametrize("args,field,message", [
    ({"patient_id": "abc"}, "patient_id", "Not a valid integer value"),
    ({"patient_id": "0"}, "patient_id", "Number must be"),
    ({"start": "2026-11-27", "end": "2026-11-26"}, "end", "The end date is before the start date."),
    ({"start": "2026-02-30"}, "start", "Not a valid date value"),
    ({"end": "yesterday"}, "end", "Not a valid date value"),
    ({"outcome": "maybe"}, "outcome", "Not a valid choice"),
])
def test_invalid_filter_input_is_explained_next_to_the_field(app, login_as, args, field, message):
    admin = login_as("admin")
    response = admin.get(REPORT, query_string=args)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    error = field_error(html, field)
    assert error and message in error, error
    assert f'id="{field}"' in html and 'aria-invalid="true"' in html
    assert [e[1] for e in audit_rows(app)][-1] == "audit.viewed"


@pytest.mark.parametrize("args", [
    {"patient_id": "99999999999999999999999"},
    {"patient_id": "2147483648"},
    {"username": "a\x00b"},
    {"action": "x" * 5000},
    {"username": "\u202e\u0000'--"},
    {"page": "abc"},
    {"page": "0"},
    {"page": "100000"},
])
def test_hostile_filter_input_never_gives_a_server_error(app, login_as, args):
    admin = login_as("admin")
    seed_chain(app, 3)
    assert admin.get(REPORT, query_string=args).status_code == 200
    export = admin.get(EXPORT, query_string=args)
    assert export.status_code in (200, 400)
    assert_chain_ok(app)


def test_invalid_filter_input_never_widens_the_report_or_the_export(app, login_as):
    """One bad field must not silently drop the other, valid filters (the page still shows them)."""
    admin = login_as("admin")
    alice = add_event(app, username="alice", patient_id=7)
    add_event(app, username="bob", patient_id=8)
    widened = []
    for bad in ({"patient_id": "abc"}, {"start": "2026-11-27", "end": "2026-11-26"}, {"start": "2026-02-30"},
                {"sort": "bogus"}, {"page": "0"}):
        args = {"username": "alice", **bad}
        page = admin.get(REPORT, query_string=args)
        assert page.status_code == 200
        shown = listed_ids(page.get_data(as_text=True))
        if set(shown) - {alice}:
            widened.append(f"report {bad}: listed {len(shown)} events, not just alice's")
        export = admin.get(EXPORT, query_string=args)
        if export.status_code == 200:
            exported = list(csv.reader(io.StringIO(export.get_data(as_text=True))))[1:]
            if {row_[2] for row_ in exported} - {"alice"}:
                widened.append(f"export {bad}: exported {len(exported)} rows, other users' included")
    assert not widened, "\n".join(widened)


# --------------------------------------------------------------------------------------------
# 6. CSV export
# --------------------------------------------------------------------------------------------

CSV_HEADER = ["id", "occurred_at", "username", "role", "action", "object_type", "object_id",
              "patient_id", "outcome", "ip", "details", "patient_mrn", "staff_name"]


def test_csv_export_has_a_header_and_the_filtered_rows(app, login_as):
    admin = login_as("admin")
    mine = [add_event(app, "dose.recorded", patient_id=77, object_type="infusion", object_id=i,
                      details={"mg": 35 + i}) for i in range(3)]
    add_event(app, "dose.recorded", patient_id=78)
    response = admin.get(EXPORT, query_string={"patient_id": "77"})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == CSV_HEADER
    assert [int(r[0]) for r in rows[1:]] == mine[::-1]
    first = dict(zip(CSV_HEADER, rows[-1], strict=True))
    assert first["username"] == "alice" and first["patient_id"] == "77" and first["object_id"] == "0"
    assert first["occurred_at"] == START.isoformat() and json.loads(first["details"]) == {"mg": 35}


def test_csv_export_neutralises_formula_cells(app, login_as):
    admin = login_as("admin")
    hostile = {"username": "=HYPERLINK(\"http://x\")", "role": "+1+1", "ip": "-2+3", "object_type": "@SUM(A1)",
               "object_id": "\tcmd", "action": "=cmd|' /C calc'!A0"}
    add_event(app, hostile["action"], username=hostile["username"], role=hostile["role"], ip=hostile["ip"],
              object_type=hostile["object_type"], object_id=hostile["object_id"], patient_id=555)
    add_event(app, "plain.event", username="\rcarriage", patient_id=555)
    rows = list(csv.reader(io.StringIO(admin.get(EXPORT, query_string={"patient_id": "555"})
                                       .get_data(as_text=True))))
    assert len(rows) == 3
    for data in rows[1:]:
        for cell in data:
            assert cell[:1] not in {"=", "+", "-", "@", "\t", "\r"}, data
    written = dict(zip(CSV_HEADER, rows[2], strict=True))
    for column, value in hostile.items():
        assert written[column] == "'" + value
    assert dict(zip(CSV_HEADER, rows[1], strict=True))["username"] == "'\rcarriage"


def test_csv_export_is_itself_audited(app, login_as):
    admin = login_as("admin")
    for _ in range(4):
        add_event(app, "exported.event")
    rows = list(csv.reader(io.StringIO(admin.get(EXPORT, query_string={"action": "exported.event"})
                                       .get_data(as_text=True))))
    assert len(rows) == 5
    exported = audit_rows(app, "audit.exported")
    assert len(exported) == 1
    event_id, _, username, outcome, _, details = exported[0]
    assert (username, outcome, details) == (admin.user.username, "ok", {"rows": 4})
    assert {row[CSV_HEADER.index("outcome")] for row in rows[1:]} == {"Allowed"}
    assert event_id == audit_rows(app)[-1][0]
    assert_chain_ok(app)


# --------------------------------------------------------------------------------------------
# 7. Viewing is audited; the page's statement count does not grow with the data
# --------------------------------------------------------------------------------------------

def test_every_report_view_is_audited(app, login_as, clock):
    admin = login_as("admin")
    seed_chain(app, 3)
    times = []
    for args in ({}, {"page": "2"}, {"patient_id": "abc"}, {"action": "none.such"}):
        times.append(clock.advance(minutes=1))
        assert admin.get(REPORT, query_string=args).status_code == 200
    viewed = audit_rows(app, "audit.viewed")
    assert [(e[2], e[3]) for e in viewed] == [(admin.user.username, "ok")] * 4
    assert [e[4] for e in viewed] == times
    assert [e[5]["page"] for e in viewed] == [1, 2, 1, 1]
    assert_chain_ok(app)


def count_statements(app, request):
    with app.app_context():
        engine = db.engine
    statements = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        response = request()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert response.status_code == 200
    return statements


@pytest.mark.parametrize("args", [{}, {"sort": "user", "direction": "asc"}, {"outcome": "ok", "page": "2"}])
def test_report_runs_the_same_number_of_statements_whatever_the_data_size(app, login_as, args):
    admin = login_as("admin")
    seed_chain(app, 10)
    admin.get(REPORT, query_string=args)
    small = count_statements(app, lambda: admin.get(REPORT, query_string=args))
    seed_chain(app, 290, action_prefix="more")
    large = count_statements(app, lambda: admin.get(REPORT, query_string=args))
    assert len(small) == len(large), (small, large)
    assert len(large) < 25


def test_csv_export_runs_the_same_number_of_statements_whatever_the_data_size(app, login_as):
    admin = login_as("admin")
    seed_chain(app, 10)
    admin.get(EXPORT)
    small = count_statements(app, lambda: admin.get(EXPORT))
    seed_chain(app, 290, action_prefix="more")
    large = count_statements(app, lambda: admin.get(EXPORT))
    assert len(small) == len(large), (len(small), len(large))


# --------------------------------------------------------------------------------------------
# 8. No clinical free text in details
# --------------------------------------------------------------------------------------------

def test_details_refuse_long_strings_and_nested_structures():
    assert canonical_details({"b": 1, "a": "x" * 200}) == json.dumps({"a": "x" * 200, "b": 1}, separators=(",", ":"))
    assert canonical_details(None) == "{}"
    with pytest.raises(ValueError, match="too long"):
        canonical_details({"note": "x" * 201})
    with pytest.raises(ValueError):
        canonical_details({"vitals": {"bp": "120/80"}})
    with pytest.raises(ValueError):
        canonical_details({"x" * 41: 1})
    with pytest.raises(ValueError):
        canonical_details({3: "numbered"})


def test_details_lists_refuse_nested_values_and_long_text():
    """'a scalar or a list of scalars': a list must not smuggle in free text or structures."""
    with pytest.raises(ValueError):
        canonical_details({"notes": ["Patient reports suicidal ideation since last infusion. " * 5]})
    with pytest.raises(ValueError):
        canonical_details({"vitals": [{"bp": "120/80", "note": "anxious"}]})
    with pytest.raises(ValueError):
        canonical_details({"nested": [["a", "b"]]})


def test_refused_details_leave_the_chain_untouched(app):
    seed_chain(app, 3)
    with app.app_context():
        for details in ({"note": "free text " * 30}, {"vitals": {"hr": 80}}):
            with pytest.raises(ValueError):
                record("note.added", actor=Actor(None, "alice", "nurse"), now=START, details=details)
            db.session.rollback()
    assert_chain_ok(app, 3)


def test_naive_timestamps_are_refused(app):
    with app.app_context():
        with pytest.raises((ValueError, StatementError)):
            record("naive.time", actor=Actor(None, "alice", "nurse"), now=datetime(2026, 11, 26, 15, 0))
        db.session.rollback()
        assert event_count() == 0
    assert_chain_ok(app, 0)
