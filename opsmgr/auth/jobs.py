"""Scheduled work for accounts: end sessions that ran past their limits."""
from opsmgr.auth import service
from opsmgr.core.clock import utcnow
from opsmgr.extensions import db


def sweep_sessions():
    """End and audit idle or expired sessions even when their owner never comes back; forget the
    submission keys of ended sessions. Returns what it did, for the scheduler's log."""
    ended = service.expire_idle_sessions(now=utcnow())
    forgotten = service.forget_submission_keys()
    db.session.commit()
    return {"sessions ended": ended, "submission keys forgotten": forgotten}
