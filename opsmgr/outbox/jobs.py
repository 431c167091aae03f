"""Scheduled work for the outbox: send what is due (the scheduler's "outbox.dispatch" tick)."""
from opsmgr.core.clock import utcnow
from opsmgr.outbox.service import default_worker_id, dispatch_due


def dispatch_outbox():
    """Claim, send and record every message due now, until none is left (after downtime, the whole
    backlog in this one tick); dispatch_due commits each claim and result itself."""
    return {"outbox messages handled": dispatch_due(utcnow(), worker_id=default_worker_id())}
