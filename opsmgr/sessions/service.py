"""The one loader of an infusion session, with what every page about it shows."""
from flask import abort
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from opsmgr.extensions import db
from opsmgr.patients.models import Patient
from opsmgr.series.models import InfusionSeries
from opsmgr.sessions.models import InfusionSession


def load_session(session_id, *, history=False):
    """The session with its patient, chair, series and protocol (and, with `history`, the patient's
    medications and weights, which the checklist compares against), or None."""
    patient = selectinload(InfusionSession.patient)
    options = [patient, selectinload(InfusionSession.chair),
               selectinload(InfusionSession.series).selectinload(InfusionSeries.protocol)]
    if history:
        options += [patient.selectinload(Patient.medications), patient.selectinload(Patient.weights)]
    return db.session.scalar(select(InfusionSession).where(InfusionSession.id == session_id).options(*options))


def session_or_404(session_id, *, history=False):
    """For views: the session, or a 404 page."""
    return load_session(session_id, history=history) or abort(404)
