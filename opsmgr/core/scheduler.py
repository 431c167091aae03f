"""The one scheduler process: ticks that call jobs; all state lives in the database.

APScheduler 3.x does not coordinate between processes (its FAQ: sharing a job store
"can't" be done), so web workers never start it and this process refuses to run twice:
it holds an exclusive file lock and, on PostgreSQL, a session advisory lock.
"""
import fcntl
import logging
from pathlib import Path

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import text

from opsmgr.core.clock import system_now
from opsmgr.extensions import db

log = logging.getLogger(__name__)

#: (job id, import path, interval in seconds)
JOBS = (
    ("auth.sweep_sessions", "opsmgr.auth.jobs:sweep_sessions", 60),
    ("audit.anchor_chain_head", "opsmgr.audit.jobs:anchor_chain_head", 300),
    ("outbox.dispatch", "opsmgr.outbox.jobs:dispatch_outbox", 10),
    ("followups.plan", "opsmgr.followups.jobs:plan_followups", 600),
)
ADVISORY_LOCK_KEY = 0x6F70736D  # "opsm"
#: A tick that was missed while the process was down runs once on restart, however late
#: (APScheduler's default grace of 1 s would silently drop it).
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


class SchedulerAlreadyRunning(RuntimeError):
    pass


def acquire_file_lock(instance_path):
    path = Path(instance_path) / "scheduler.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "w")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SchedulerAlreadyRunning(f"another scheduler holds {path}") from None
    return handle


def acquire_database_lock():
    """On PostgreSQL, a session-level advisory lock shared by every host; None elsewhere."""
    if db.engine.dialect.name != "postgresql":
        return None
    connection = db.engine.connect()
    if not connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar():
        connection.close()
        raise SchedulerAlreadyRunning("another scheduler holds the PostgreSQL advisory lock")
    connection.commit()
    return connection


def _job(app, import_path):
    module_name, func_name = import_path.split(":")

    def run():
        import importlib

        func = getattr(importlib.import_module(module_name), func_name)
        with app.app_context():
            try:
                done = func()
            except Exception:
                db.session.rollback()
                log.exception("scheduled job %s failed", import_path)
                raise
        words = what_was_done(done)
        if words:
            log.info("%s: %s", import_path, words)

    return run


def what_was_done(counts):
    """A job's {what: how many} in words, leaving out what it did not do ("" when it did nothing): the
    console says when a job did something, not every ten seconds that it ran."""
    return ", ".join(f"{count} {what}" for what, count in (counts or {}).items() if count)


def quiet_apscheduler():
    """APScheduler says "Running job" and "executed successfully" at INFO on every tick: warnings and
    errors (a job that raised, a missed run) still show."""
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def build_scheduler(app):
    scheduler = BlockingScheduler(timezone="UTC", job_defaults=JOB_DEFAULTS)
    for job_id, import_path, seconds in JOBS:
        scheduler.add_job(_job(app, import_path), "interval", seconds=seconds, id=job_id, name=job_id,
                          next_run_time=system_now())
    return scheduler


def run_scheduler(app):
    """Take the locks and run the jobs until interrupted."""
    file_lock = acquire_file_lock(app.instance_path)
    quiet_apscheduler()
    with app.app_context():
        db_lock = acquire_database_lock()
    log.info("scheduler started with %d job(s)", len(JOBS))
    try:
        build_scheduler(app).start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if db_lock is not None:
            db_lock.close()
        file_lock.close()
