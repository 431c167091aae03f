"""The physician's list of sessions waiting for an override, oldest first.

A session waits when a finding a physician may override is open at one of its gates: at the start,
from the checklist's stored evaluation (checked in or on the checklist); at discharge, from the
nurse's refused discharge answers while the patient is in recovery. Overrides already given cover
findings as at the gates themselves. A fixed number of statements, whatever the number of sessions.
"""
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from opsmgr.checklist.models import ChecklistResponse, FindingOverride
from opsmgr.checklist.service import as_overrides, covering_overrides, finding_from_dict
from opsmgr.extensions import db
from opsmgr.infusion.models import DischargeAssessment
from opsmgr.rules.findings import open_findings
from opsmgr.rules.session_states import SessionState
from opsmgr.sessions.models import InfusionSession

#: Before the dose, a checklist finding waits for the physician in these states.
CHECKLIST_STATES = (SessionState.CHECKED_IN.value, SessionState.CHECKLIST.value)


@dataclass(frozen=True)
class Waiting:
    infusion_session: InfusionSession
    #: "start" (the checklist) or "discharge".
    gate: str
    #: The open findings a physician may override.
    findings: tuple
    #: Since when the session waits: the checklist's evaluation, or the refused discharge.
    since: datetime


def _with_people(query):
    return query.options(selectinload(InfusionSession.patient), selectinload(InfusionSession.chair))


def _checklists():
    query = (select(InfusionSession, ChecklistResponse)
             .join(ChecklistResponse, ChecklistResponse.session_id == InfusionSession.id)
             .where(InfusionSession.status.in_(CHECKLIST_STATES), ChecklistResponse.outcome != "cleared"))
    return [(visit, "start", response.findings, response.evaluated_at)
            for visit, response in db.session.execute(_with_people(query)).all()]


def _discharges():
    latest = (select(func.max(DischargeAssessment.id)).group_by(DischargeAssessment.session_id)).scalar_subquery()
    query = (select(InfusionSession, DischargeAssessment)
             .join(DischargeAssessment, DischargeAssessment.session_id == InfusionSession.id)
             .where(InfusionSession.status == SessionState.RECOVERY.value, DischargeAssessment.id.in_(latest)))
    return [(visit, "discharge", row.open_findings, row.assessed_at)
            for visit, row in db.session.execute(_with_people(query)).all()]


def waiting_for_override():
    """Every session waiting for a physician's override, oldest first (a Waiting each)."""
    candidates = _checklists() + _discharges()
    ids = {visit.id for visit, *_ in candidates}
    overrides = {}
    if ids:
        for row in db.session.scalars(select(FindingOverride).where(FindingOverride.session_id.in_(ids))):
            overrides.setdefault((row.session_id, row.gate), []).append(row)
    waiting = []
    for visit, gate, stored, since in candidates:
        findings = [finding_from_dict(data) for data in stored or ()]
        bound = {f.code for f in findings} if gate == "discharge" else frozenset()
        rows = covering_overrides(visit, gate, findings, bound, rows=overrides.get((visit.id, gate), []))
        still = [f for f in open_findings(findings, as_overrides(rows)) if f.severity.overridable]
        if still:
            waiting.append(Waiting(visit, gate, tuple(still), since))
    return sorted(waiting, key=lambda row: (row.since, row.infusion_session.id))
