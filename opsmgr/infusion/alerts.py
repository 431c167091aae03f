"""The in-chair alerts seen away from the chair page: open ones (not acknowledged, not withdrawn) for
every signed-in physician (there is no duty roster), and who acknowledged the others. One statement each.
"""
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from opsmgr.auth.models import StaffUser
from opsmgr.extensions import db
from opsmgr.infusion.models import InChairAlert, VitalSign
from opsmgr.infusion.service import COUNTED
from opsmgr.patients.models import Patient, display_name
from opsmgr.schedule.models import Chair
from opsmgr.sessions.models import InfusionSession

#: The most acknowledged alerts a physician's home lists.
ACKNOWLEDGED_SHOWN = 20

OPEN = InChairAlert.acknowledged_at.is_(None)


@dataclass(frozen=True)
class AlertRow:
    alert: InChairAlert
    patient_name: str
    chair_name: str
    #: Who acknowledged it (name and credentials); None while it is open.
    acknowledged_by: str | None


def rows_query(*where, order, limit=None):
    """The alerts matching `where` (withdrawn ones left out) with their patient, chair and acknowledger."""
    acknowledger = aliased(StaffUser)
    return (select(InChairAlert, Patient.legal_name, Patient.preferred_name, Chair.name, acknowledger)
            .select_from(InChairAlert).join(VitalSign, VitalSign.id == InChairAlert.vital_sign_id)
            .join(InfusionSession, InfusionSession.id == InChairAlert.session_id)
            .join(Patient, Patient.id == InfusionSession.patient_id)
            .join(Chair, Chair.id == InfusionSession.chair_id)
            .outerjoin(acknowledger, acknowledger.id == InChairAlert.acknowledged_by_id)
            .where(COUNTED, *where).order_by(*order).limit(limit))


def _rows(*where, order, limit=None):
    return [AlertRow(alert, display_name(legal, preferred), chair, by.display_name if by else None)
            for alert, legal, preferred, chair, by in db.session.execute(rows_query(*where, order=order,
                                                                                     limit=limit))]


def open_alert_count():
    """How many alerts wait for an acknowledgement, in one statement (built once: every physician's page
    shows the count in its navigation)."""
    return db.session.scalar(_OPEN_COUNT)


_OPEN_COUNT = (select(func.count()).select_from(InChairAlert)
               .join(VitalSign, VitalSign.id == InChairAlert.vital_sign_id).where(COUNTED, OPEN))


def open_or_acknowledged_since(since: datetime):
    return or_(OPEN, InChairAlert.acknowledged_at >= since)


def open_and_acknowledged(since: datetime):
    """(every alert waiting for an acknowledgement, oldest first; the alerts acknowledged since `since`, latest
    first, at most ACKNOWLEDGED_SHOWN), in one statement: a clinic day's acknowledged alerts are few."""
    rows = _rows(open_or_acknowledged_since(since), order=(InChairAlert.raised_at, InChairAlert.id))
    acknowledged = sorted((row for row in rows if row.alert.acknowledged_at is not None),
                          key=lambda row: (row.alert.acknowledged_at, row.alert.id), reverse=True)
    return [row for row in rows if row.alert.acknowledged_at is None], acknowledged[:ACKNOWLEDGED_SHOWN]


def alerts_by_session(session_ids):
    """{session id: its alerts, oldest first} for these sessions (withdrawn alerts left out)."""
    found = {}
    if session_ids:
        for row in _rows(InChairAlert.session_id.in_(list(session_ids)),
                         order=(InChairAlert.raised_at, InChairAlert.id)):
            found.setdefault(row.alert.session_id, []).append(row)
    return found
