"""The single scheduler process and the session sweep job."""
import pytest
from sqlalchemy import select

from opsmgr.audit.models import AuditEvent
from opsmgr.auth.jobs import sweep_sessions
from opsmgr.auth.models import StaffSession
from opsmgr.core.scheduler import (
    JOB_DEFAULTS,
    JOBS,
    SchedulerAlreadyRunning,
    acquire_database_lock,
    acquire_file_lock,
    build_scheduler,
)
from opsmgr.extensions import db


def test_a_second_scheduler_cannot_take_the_file_lock(tmp_path):
    first = acquire_file_lock(tmp_path)
    try:
        with pytest.raises(SchedulerAlreadyRunning):
            acquire_file_lock(tmp_path)
    finally:
        first.close()
    acquire_file_lock(tmp_path).close()


@pytest.mark.fresh_db
def test_a_second_scheduler_cannot_take_the_database_lock(make_app, backend):
    first_app, second_app = make_app(), make_app()
    with first_app.app_context():
        held = acquire_database_lock()
    try:
        with second_app.app_context():
            if backend == "postgresql":
                with pytest.raises(SchedulerAlreadyRunning):
                    acquire_database_lock()
            else:
                assert acquire_database_lock() is None, "SQLite relies on the file lock alone"
    finally:
        if held is not None:
            held.close()


def test_scheduler_registers_every_job_with_catch_up_settings(app):
    scheduler = build_scheduler(app)
    assert {job.id for job in scheduler.get_jobs()} == {job_id for job_id, *_ in JOBS}
    assert JOB_DEFAULTS == {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    assert scheduler._job_defaults == JOB_DEFAULTS


def test_sweep_ends_and_audits_sessions_whose_owner_walked_away(app, login_as, clock):
    login_as("nurse")
    active = login_as("physician")
    clock.advance(minutes=10)
    active.get("/today")
    clock.advance(minutes=6)
    with app.app_context():
        sweep_sessions()
        sessions = {row.user_id: row.end_reason for row in db.session.scalars(select(StaffSession))}
        timeouts = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "session.timeout")).all()
    assert sorted(sessions.values(), key=str) == sorted(["idle", None], key=str)
    assert len(timeouts) == 1



#: What the job under test returns on each run: nothing done, something done, no report at all.
RESULTS = []


def job_under_test():
    return RESULTS.pop(0)


def broken_job():
    return 1 / 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_console_is_quiet_unless_a_job_did_something(app, caplog):
    """APScheduler's "Running job" / "executed successfully" every ten seconds are muted; a job is logged
    only when it did something, in words; a job that fails is still logged."""
    import logging

    from opsmgr.core import scheduler

    level = logging.getLogger("apscheduler").level
    try:
        scheduler.quiet_apscheduler()
        executor = logging.getLogger("apscheduler.executors.default")
        assert not executor.isEnabledFor(logging.INFO) and executor.isEnabledFor(logging.WARNING)
    finally:
        logging.getLogger("apscheduler").setLevel(level)
    RESULTS[:] = [{"sessions ended": 0, "keys forgotten": 0}, {"sessions ended": 2, "keys forgotten": 0}, None]
    with caplog.at_level(logging.INFO, logger="opsmgr.core.scheduler"):
        run = scheduler._job(app, "tests.test_scheduler:job_under_test")
        for _ in range(3):
            run()
        with pytest.raises(ZeroDivisionError):
            scheduler._job(app, "tests.test_scheduler:broken_job")()
    messages = [record.getMessage() for record in caplog.records if record.name == "opsmgr.core.scheduler"]
    assert messages == ["tests.test_scheduler:job_under_test: 2 sessions ended",
                        "scheduled job tests.test_scheduler:broken_job failed"]
