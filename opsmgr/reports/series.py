"""Series summary use cases: what the series page shows, a DRAFT preview, and the physician's signing.

A series summary prints every session of the series that took place, each from its signed record
(sessions.record.load_record), the series' PHQ-9 and GAD-7 (checklist and phone), response and
remission as rules.outcomes decides them, the series' follow-ups, and the physician's paragraph.
It is signed by a physician re-entering their password, only when every session that took place
has a signed note (rules.reports); the signed PDF carries a PAdES signature in the physician's name
and is stored once with its SHA-256. A summary of the same sessions is signed once; a later one
(boosters added) is a new document and the earlier one stays.
"""
import logging
from collections import defaultdict
from dataclasses import dataclass

from flask import current_app
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import defer, selectinload

from opsmgr.audit.service import record
from opsmgr.auth.service import reauthenticate
from opsmgr.core.clock import clinic_zone
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.followups.models import FollowUp
from opsmgr.followups.worklist import KIND_LABELS
from opsmgr.infusion.models import DoseRecord
from opsmgr.notes.models import SessionNote
from opsmgr.patients.models import Patient
from opsmgr.permissions import can_sign_note
from opsmgr.reports import data, service
from opsmgr.reports.models import ReportDocument
from opsmgr.reports.render import render_pdf
from opsmgr.rules import outcomes, reports
from opsmgr.rules.findings import Problem
from opsmgr.scores.models import GAD7, PHQ9
from opsmgr.scores.service import scores_for
from opsmgr.series.models import InfusionSeries
from opsmgr.sessions.models import InfusionSession
from opsmgr.sessions.record import load_records
from opsmgr.twofactor import service as two_factor

log = logging.getLogger(__name__)

TITLE = "Series summary"
SIGN_REASON = "Series summary signed"
#: The definitions printed under the outcome (rules.outcomes, the clinic's outcome page's wording).
DEFINITIONS = tuple(item for item in outcomes.DEFINITIONS if item[0] in {"Baseline", "Response", "Remission"})


class SeriesSummaryRefused(DomainError):
    """A series summary that cannot be signed (sessions unsigned, a bad paragraph or password)."""


@dataclass(frozen=True)
class SeriesReport:
    """What the series page shows about summaries: the sessions' facts, the signed documents (newest
    first, bytes not loaded) and why signing is not possible now ([] when it is)."""

    facts: list
    documents: list
    problems: list
    #: Baseline, response and remission in words (data.outcome_block), and the PHQ-9/GAD-7 chart (SVG).
    outcome: dict
    trend: str
    #: {session id: whether its note is signed}, for the sessions that have a note.
    signed_notes: dict

    @property
    def can_sign(self):
        return not self.problems


def series_report(series):
    """The series page's summary section: whether it can be signed, the signed documents, the outcome
    and the PHQ-9/GAD-7 chart, in a constant number of statements whatever the series' length."""
    zone = clinic_zone()
    facts, documents, problems, signed = _signing_state(series, zone)
    visits = sorted(series.sessions, key=lambda visit: visit.number)
    scores = _series_scores(series, visits)
    outcome = _outcome(visits, scores, zone)
    took_place = [visit for visit in visits if visit.status not in reports.DID_NOT_TAKE_PLACE]
    trend = Markup(trend_svg(took_place, scores, baseline=outcome.baseline, zone=zone))  # noqa: S704  # nosec B704  # ElementTree-built, text escaped
    return SeriesReport(facts, documents, problems, data.outcome_block(outcome, zone), trend, signed)


def _signing_state(series, zone):
    """(session facts, signed series documents newest first without their bytes, why signing is not
    possible now, {session id: note signed}) in two statements."""
    signed = {row.session_id: row.signed_at is not None for row in db.session.execute(
        select(SessionNote.session_id, SessionNote.signed_at)
        .join(InfusionSession, InfusionSession.id == SessionNote.session_id)
        .where(InfusionSession.series_id == series.id))}
    facts = [reports.SeriesSessionFact(visit.number, visit.status, data.when(visit.starts_at, zone, data.DATE),
                                       signed.get(visit.id, False)) for visit in series.sessions]
    documents = list(db.session.scalars(
        select(ReportDocument).options(defer(ReportDocument.content))
        .where(ReportDocument.kind == "series", ReportDocument.series_id == series.id)
        .order_by(ReportDocument.created_at.desc(), ReportDocument.id.desc())))
    problems = reports.signing_problems(facts, signed_counts=[document.session_count for document in documents])
    return facts, documents, problems, signed


def series_summary_pdf(series, *, summary_text, signer=None, signed_at=None, document_id=None, draft=False):
    """The series summary as PDF/A-3b bytes: a DRAFT (no signer) or, with `signer` (a StaffUser) and
    `signed_at`, signed with PAdES in the signer's name."""
    zone = clinic_zone()
    summary, chart_input = _summary(series, summary_text=summary_text, signer=signer, signed_at=signed_at, zone=zone)
    assets, chart = _chart(chart_input, zone)
    content = render_pdf("reports/series.html", assets=assets, summary=summary, patient=summary["patient"],
                         title=TITLE, document_id=document_id, draft=draft, chart=chart, definitions=DEFINITIONS,
                         clinic_name=current_app.config["CLINIC_NAME"])
    if draft or signer is None:
        return content
    from opsmgr.reports.signing import sign_pdf

    return sign_pdf(content, signer_name=signer.full_name, signer_credentials=signer.credentials or "",
                    signed_at=signed_at, zone=zone, document_id=document_id, reason=SIGN_REASON,
                    app=current_app._get_current_object())


def preview_series_summary(series, *, summary_text, actor, now):
    """A DRAFT preview (bytes, never stored), with the paragraph typed so far."""
    content = series_summary_pdf(series, summary_text=summary_text, draft=True)
    record("report.previewed", actor=actor, now=now, object_type="infusion_series", object_id=series.id,
           patient_id=series.patient_id, details={"kind": "series"})
    return content


def sign_series_summary(series, *, physician, password, summary_text, actor, ip, now, totp_code=None):
    """Sign the series summary: checks, the physician's password, then the PDF made, signed and stored."""
    if not can_sign_note(physician, None):
        raise SeriesSummaryRefused([Problem(None, "Only a physician can sign a series summary.")])
    # Lock the series row: two physicians signing at once sign one after the other, and the second
    # sees the first one's summary (the unique index is the last word).
    db.session.execute(select(InfusionSeries.id).where(InfusionSeries.id == series.id).with_for_update())
    facts, _documents, not_ready, _signed = _signing_state(series, clinic_zone())
    problems = reports.summary_problems(summary_text) + not_ready
    if problems:
        record("report.sign_refused", actor=actor, now=now, outcome="denied", object_type="infusion_series",
               object_id=series.id, patient_id=series.patient_id, details={"kind": "series", "reason": "not ready"})
        raise SeriesSummaryRefused(problems, audited=True)
    if not reauthenticate(physician, password, ip=ip, now=now, purpose="report.sign"):
        raise SeriesSummaryRefused([Problem("password", "That password is not correct.")], audited=True)
    if not two_factor.check_signing_code(physician, totp_code, ip=ip, now=now, purpose="report.sign"):
        raise SeriesSummaryRefused([Problem("totp_code", two_factor.SIGNING_REFUSED)], audited=True)
    summary_text = summary_text.strip()
    document_id = service.new_document_id()
    content = series_summary_pdf(series, summary_text=summary_text, signer=physician, signed_at=now,
                                 document_id=document_id)
    covered = len(reports.covered(facts))
    document = ReportDocument(document_id=document_id, kind="series", patient_id=series.patient_id,
                              series_id=series.id, sha256=service.sha256_hex(content), content=content,
                              created_at=now, created_by_id=physician.id, session_count=covered,
                              summary_text=summary_text, signer=signer_line(physician))
    db.session.add(document)
    db.session.flush()  # a concurrent signing of the same sessions fails here: attempt() answers the conflict
    record("report.signed", actor=actor, now=now, object_type="report_document", object_id=document_id,
           patient_id=series.patient_id,
           details={"kind": "series", "series_id": series.id, "sessions": covered, "sha256": document.sha256})
    return document


def signer_line(physician):
    """"Name, credentials" as the summary prints and the signature names the physician."""
    return f"{physician.full_name}, {physician.credentials}" if physician.credentials else physician.full_name


def stored_document(document_id):
    """A stored report by its public document ID (None if unknown)."""
    return db.session.scalar(select(ReportDocument).where(ReportDocument.document_id == document_id))


def _summary(series, *, summary_text, signer, signed_at, zone):
    """(series_summary dict, chart input) from the series' signed records, scores and follow-ups."""
    series = db.session.scalar(select(InfusionSeries).where(InfusionSeries.id == series.id).options(
        selectinload(InfusionSeries.protocol), selectinload(InfusionSeries.sessions)))
    patient = db.session.get(Patient, series.patient_id)
    visits = sorted(series.sessions, key=lambda visit: visit.number)
    took_place = [visit for visit in visits if visit.status not in reports.DID_NOT_TAKE_PLACE]
    records = load_records([visit.id for visit in took_place])
    rows = [(visit, records.get(visit.id)) for visit in visits if visit.status != "scheduled"]
    scores = _series_scores(series, visits)
    outcome = _outcome(visits, scores, zone)
    session_ids = [visit.id for visit in visits]
    follow_ups = list(db.session.scalars(
        select(FollowUp).where((FollowUp.series_id == series.id) | FollowUp.session_id.in_(session_ids))
        .where(FollowUp.status != "cancelled").order_by(FollowUp.due_at, FollowUp.id)))
    summary = data.series_summary(series, patient=patient, rows=rows, outcome=outcome, scores=scores,
                                  follow_ups=follow_ups, kind_labels=KIND_LABELS, summary_text=summary_text,
                                  signer=signer_line(signer) if signer else None, signed_at=signed_at, zone=zone)
    chart_input = {"visits": took_place, "scores": scores, "baseline": outcome.baseline}
    return summary, chart_input


def _outcome(visits, scores, zone):
    return outcomes.series_outcome(
        [outcomes.SessionFact(visit.id, visit.starts_at, visit.status) for visit in visits],
        [outcomes.ScoreFact(score.taken_at, score.total, score.session_id) for score in scores
         if score.instrument == PHQ9], zone=zone)


def _series_scores(series, visits):
    """The series' PHQ-9 and GAD-7: those taken at its checklists, and phone scores taken while it was the
    patient's latest series begun (rules.outcomes.phone_scores_by_series), oldest first."""
    ids = {visit.id for visit in visits}
    mine, phone = [], []
    for score in scores_for(series.patient_id):
        if score.instrument not in (PHQ9, GAD7):
            continue
        if score.session_id in ids:
            mine.append(score)
        elif score.session_id is None:
            phone.append(score)
    if phone:
        starts = defaultdict(list)
        for row in db.session.execute(select(InfusionSession.series_id, InfusionSession.starts_at)
                                      .where(InfusionSession.patient_id == series.patient_id,
                                             InfusionSession.status.in_(outcomes.DOSED))):
            starts[row.series_id].append(row.starts_at)
        firsts = {series_id: min(times) for series_id, times in starts.items()}
        mine += outcomes.phone_scores_by_series(firsts, phone).get(series.id, [])
    return sorted(mine, key=lambda score: (score.taken_at, score.id))


def trend_svg(visits, scores, *, baseline, zone):
    """The series' PHQ-9/GAD-7 chart (SVG text), session dates and doses (mg/kg) marked: one picture for
    the series page and the PDF. `visits`: the sessions that took place."""
    from opsmgr.reports.charts import score_trend

    ids = [visit.id for visit in visits]
    given = dict(db.session.execute(select(DoseRecord.session_id, DoseRecord.mg_per_kg)
                                    .where(DoseRecord.session_id.in_(ids))).all()) if ids else {}
    return score_trend([(score.taken_at.astimezone(zone), score.instrument, score.total) for score in scores],
                       sessions=[visit.starts_at.astimezone(zone) for visit in visits],
                       doses=[(visit.starts_at.astimezone(zone), given[visit.id]) for visit in visits
                              if given.get(visit.id) is not None],
                       response_baseline=baseline, title="PHQ-9 and GAD-7 over the series")


def _chart(chart_input, zone):
    svg = trend_svg(chart_input["visits"], chart_input["scores"], baseline=chart_input["baseline"], zone=zone)
    return {"scores.svg": (svg.encode("utf-8"), "image/svg+xml")}, "opsmgr-asset:scores.svg"
