"""The scheduler's planning pass (see opsmgr.core.scheduler)."""
from sqlalchemy import and_, func, select

from opsmgr.core.clock import utcnow
from opsmgr.extensions import db
from opsmgr.followups.models import FollowUp
from opsmgr.followups.service import plan_due


def plan_followups():
    """Re-plan patients with sessions around today: reminders of sessions booked long ago, expiries.
    Returns what the pass changed, for the scheduler's log."""
    now = utcnow()
    plan_due(now=now)
    changes = planned_changes(now)
    db.session.commit()
    return changes


def planned_changes(now):
    """What a pass at `now` changed, from the rows it stamped with its `now`: re-planning a patient whose
    facts did not change stamps none, so an idle pass reports nothing."""
    from opsmgr.outbox.models import OutboxMessage

    def stamped(*conditions):
        return func.count().filter(and_(*conditions))

    follow_ups = db.session.execute(select(
        stamped(FollowUp.created_at == now), stamped(FollowUp.updated_at == now, FollowUp.created_at != now))).one()
    reminders = db.session.execute(select(
        stamped(OutboxMessage.created_at == now), stamped(OutboxMessage.closed_at == now))
        .where(OutboxMessage.dedupe_key.like("reminder:%"))).one()
    return {"follow-ups planned": follow_ups[0], "follow-ups closed": follow_ups[1],
            "reminders queued": reminders[0], "reminders cancelled": reminders[1]}
