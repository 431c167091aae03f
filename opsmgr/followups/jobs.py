"""The scheduler's planning pass (see opsmgr.core.scheduler)."""
import logging

from opsmgr.core.clock import utcnow
from opsmgr.extensions import db
from opsmgr.followups.service import plan_due

log = logging.getLogger(__name__)


def plan_followups():
    """Re-plan patients with sessions around today: reminders of sessions booked long ago, expiries."""
    count = plan_due(now=utcnow())
    db.session.commit()
    log.info("follow-up planning pass: %d patient(s) re-planned", count)
