"""The session as it was decided: the one reader for the note page, the chair record and the PDFs.

Everything comes from stored rows: the checklist's findings as they were evaluated and the policy
version they were evaluated under, each override with the finding it covered, the physician's dose
orders and the dose with their policy versions, refused discharge answers, the discharge, the note
and its addenda. Nothing is evaluated again under today's policy, so a later policy change never
rewrites what was decided.
"""
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from opsmgr.auth.models import StaffUser
from opsmgr.extensions import db
from opsmgr.gates.service import finding_from_dict
from opsmgr.notes.canonical import load_aggregate
from opsmgr.notes.models import NoteAddendum
from opsmgr.series.models import InfusionSeries
from opsmgr.sessions.models import InfusionSession


@dataclass(frozen=True)
class SessionRecord:
    infusion_session: InfusionSession
    #: The checklist row, its findings as evaluated (Finding tuples) and the policy version of that evaluation.
    checklist: object
    checklist_findings: tuple
    overrides: tuple
    dose_orders: tuple
    dose: object
    controlled_substance: object
    vitals: tuple
    alerts: tuple
    infusion_events: tuple
    discharge_assessments: tuple
    discharge: object
    note: object
    adverse_events: tuple
    addenda: tuple
    #: {staff id: "Name, credentials"} for everyone the record names.
    staff: dict

    @property
    def policy_versions(self):
        """Every policy version a decision of this session was made under, in order."""
        rows = (self.checklist, *self.dose_orders, self.dose, *self.discharge_assessments, self.discharge)
        return tuple(sorted({row.policy_version for row in rows if row is not None and row.policy_version}))

    @property
    def dose_order(self):
        """The physician's order the dose was given under (None: the series dose)."""
        if self.dose is None or self.dose.dose_order_id is None:
            return None
        return next(order for order in self.dose_orders if order.id == self.dose.dose_order_id)

    def overrides_at(self, gate):
        return tuple(row for row in self.overrides if row.gate == gate)


#: Columns of the record's rows that name a staff member.
STAFF_COLUMNS = ("recorded_by_id", "changed_by_id", "ordered_by_id", "assessed_by_id", "witness_id",
                 "acknowledged_by_id", "physician_id", "discharged_by_id", "updated_by_id", "signed_by_id",
                 "author_id")


def load_record(session_id):
    """The whole session as decided (a SessionRecord), read fresh from the database; None if unknown."""
    if db.session.get(InfusionSession, session_id) is None:
        return None
    visit, note, parts = load_aggregate(session_id)
    db.session.scalar(select(InfusionSession).where(InfusionSession.id == session_id).options(
        selectinload(InfusionSession.patient), selectinload(InfusionSession.chair),
        selectinload(InfusionSession.series).selectinload(InfusionSeries.protocol)))
    addenda = tuple(db.session.scalars(select(NoteAddendum).where(NoteAddendum.note_id == note.id)
                                       .order_by(NoteAddendum.id))) if note is not None else ()
    checklist = parts["checklist"]
    rows = [checklist, note, parts["dose"], parts["controlled_substance"], parts["discharge"], *addenda,
            *(row for name in ("overrides", "dose_orders", "vitals", "alerts", "infusion_events",
                               "discharge_assessments", "adverse_events") for row in parts[name])]
    return SessionRecord(
        infusion_session=visit, checklist=checklist,
        checklist_findings=tuple(finding_from_dict(data) for data in (checklist.findings or ())) if checklist else (),
        overrides=tuple(parts["overrides"]), dose_orders=tuple(parts["dose_orders"]), dose=parts["dose"],
        controlled_substance=parts["controlled_substance"], vitals=tuple(parts["vitals"]),
        alerts=tuple(parts["alerts"]), infusion_events=tuple(parts["infusion_events"]),
        discharge_assessments=tuple(parts["discharge_assessments"]), discharge=parts["discharge"], note=note,
        adverse_events=tuple(parts["adverse_events"]), addenda=addenda, staff=staff_names(rows))


def staff_names(rows):
    """{staff id: "Name, credentials"} for everyone named by these rows, in one statement."""
    ids = {getattr(row, name, None) for row in rows if row is not None for name in STAFF_COLUMNS}
    ids.discard(None)
    if not ids:
        return {}
    found = db.session.execute(select(StaffUser.id, StaffUser.full_name, StaffUser.credentials)
                               .where(StaffUser.id.in_(ids))).all()
    return {row.id: f"{row.full_name}, {row.credentials}" if row.credentials else row.full_name for row in found}
