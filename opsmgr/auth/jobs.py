"""Scheduled work for accounts: end sessions that ran past their limits."""
from opsmgr.auth import service
from opsmgr.core import flashes
from opsmgr.core.clock import utcnow
from opsmgr.extensions import db


def sweep_sessions():
    """End and audit idle or expired sessions even when their owner never comes back; forget the
    submission keys of ended sessions, sign-in failures past the address window and messages flashed
    to browsers that never came back. Returns what it did, for the scheduler's log."""
    now = utcnow()
    ended = service.expire_idle_sessions(now=now)
    forgotten = service.forget_submission_keys()
    failures = service.forget_sign_in_failures(now=now)
    stale = flashes.forget_stale(now=now)
    db.session.commit()
    return {"sessions ended": ended, "submission keys forgotten": forgotten,
            "sign-in failures forgotten": failures, "unshown messages forgotten": stale}
