"""One action per click (issue 9): a form's submission key, posted again, gets the first answer (the same
status, Location and flashed messages) and changes nothing: no second row, no second audit event.

ENDPOINTS holds every state-changing form endpoint with a request the server accepts; a new POST endpoint
fails test_the_table_covers_every_post_endpoint until it has a row here or a reason in EXCLUDED. The whole
table runs on SQLite; the rows in ON_POSTGRESQL run on PostgreSQL too.
"""
import re
import threading
from collections import namedtuple
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from flask import request_started
from sqlalchemy import func, select, text

from opsmgr.auth import jobs, tablets
from opsmgr.auth import service as auth
from opsmgr.auth.models import StaffUser
from opsmgr.checklist import service as checklist
from opsmgr.clinic import closures
from opsmgr.core.submissions import FIELD, Submission
from opsmgr.extensions import db
from opsmgr.feeds import service as feeds
from opsmgr.infusion.models import InChairAlert, VitalSign
from opsmgr.notes.models import AdverseEvent
from opsmgr.patients import service as patients
from opsmgr.patients.models import Patient, PatientWeight
from opsmgr.schedule.service import change_status
from opsmgr.series.models import Protocol
from opsmgr.sessions.models import InfusionSession
from opsmgr.tasks.models import PhysicianTask
from tests.conftest import PASSWORD
from tests.factories import FACTORY_ACTOR, create_chairs, create_patient, order_series
from tests.test_admin import NEW as NEW_STAFF
from tests.test_checklist_pages import CLEAR
from tests.test_clinic import IV_EDIT, WEEK
from tests.test_infusion import (
    clear_answers,
    discharge,
    done,
    fields,
    make_session,
    start,
    vitals,
    wait,
)
from tests.test_infusion import url as chair
from tests.test_message_templates import DEFAULTS as MESSAGE_TEXTS
from tests.test_notes import COMPLETE, note_url, version_of
from tests.test_patients import NEW as NEW_PATIENT
from tests.test_patients import edit_data
from tests.test_policy import form_values

ROOT = Path(__file__).resolve().parent.parent
KEY = "one-click-0123456789ab"
MONDAY = date(2026, 11, 30)

#: POST endpoints whose forms carry no key, and why.
EXCLUDED = {
    "auth.login": "no staff session yet to remember a key under; a repeat opens a second session and lands on "
                  "the same home page, changing no record",
    "auth.logout": "a repeat finds the session ended and lands on the sign-in page, as the first did",
    "auth.lock": "the tablet page's idle timer posts it with no form to key; a repeat finds the screen locked "
                 "already and lands on the same lock page, changing nothing",
    "auth.unlock": "like the sign-in form: each PIN is judged, a wrong one counting toward the lockout; a repeat "
                   "of a right one finds the screen open and lands on the same page",
    "notes.autosave": "the page's script posts the same form again and again (JSON, not a page); the note's "
                      "version guards it, a stale save being a conflict",
    "feeds.issue": "its answer is a page showing a new secret address once, which is never stored to show again; "
                   "a repeat replaces the address, and the page the browser shows is the live one",
    "messaging.sms_inbound": "Twilio's webhook: no staff session and no form; a signed request from Twilio, "
                             "idempotent in effect (a second YES confirms the same start, a second STOP "
                             "finds nothing left to cancel)",
    "messaging.sms_status": "Twilio's webhook: a repeated status callback finds the message already in that status",
    "reports.series_preview": "read-only: renders a DRAFT PDF of the series summary with the text typed so far, "
                              "stores nothing but its audit row; a repeat renders the same draft",
    "two_factor.sign_in_code": "like the sign-in form: no staff session yet; each code is judged and used once, "
                               "a repeat of a right one finds it used (or is already signed in)",
    "two_factor.confirm": "its answer is the page showing the recovery codes once, never stored to show again; "
                          "a repeat finds two-factor on and the code used, and is refused, changing nothing",
    "two_factor.renew_codes": "its answer is the page showing the new recovery codes once, never stored to show "
                              "again; a repeat finds the app code used and is refused, changing nothing (a new "
                              "code makes another set)",
    "reports.verify_upload": "read-only: checks an uploaded PDF in memory, stores nothing but its audit row; a "
                             "repeat gives the same answer",
}

Ctx = namedtuple("Ctx", "app clock login_as make_user")


def in_app(ctx, work):
    with ctx.app.app_context():
        result = work()
        db.session.commit()
        return result


# --- the states each request needs ---------------------------------------------------------------


def a_patient(ctx):
    return in_app(ctx, lambda: create_patient(now=ctx.clock()).id)


def a_series(ctx, start_on=MONDAY):
    """Two chairs and a patient on an IV induction; (series id, its first session id, chair ids)."""
    def make():
        chairs = create_chairs(2)
        series = order_series(patient_id=create_patient(now=ctx.clock()).id, now=ctx.clock(), start_on=start_on)
        return series.id, series.sessions[0].id, chairs
    return in_app(ctx, make)


def todays_session(ctx, **answers):
    """Today's first session, checked in, cleared by its checklist unless told `cleared=False`."""
    in_app(ctx, lambda: create_chairs(2))
    return make_session(ctx.app, ctx.clock, **answers)


def checked_in(ctx):
    session_id = todays_session(ctx, cleared=False)
    in_app(ctx, lambda: change_status(db.session.get(InfusionSession, session_id), "checked_in", reason="",
                                      actor=FACTORY_ACTOR, now=ctx.clock()))
    return session_id


def needs_physician(ctx):
    """Checked in with a checklist at BP 150/95: BP_SOFT_GATE waits for a physician's override."""
    session_id = checked_in(ctx)
    in_app(ctx, lambda: checklist.fill_checklist(
        db.session.get(InfusionSession, session_id), clear_answers(ctx.clock(), systolic=150, diastolic=95),
        expected_version=0, actor=FACTORY_ACTOR, now=ctx.clock()))
    return session_id


def infusing(ctx):
    session_id, nurse = todays_session(ctx), ctx.login_as("nurse")
    assert done(start(nurse, session_id))
    return session_id, nurse


def with_alert(ctx):
    """Infusing, with a 185/112 reading at 10:12 whose alert is open; (session, nurse, alert id)."""
    session_id, nurse = infusing(ctx)
    ctx.clock.advance(minutes=12)
    assert done(vitals(nurse, session_id, "10:12", 185, 112))
    alert_id = in_app(ctx, lambda: db.session.scalar(select(InChairAlert.id)))
    ctx.clock.advance(minutes=1)
    return session_id, nurse, alert_id


def recovering(ctx):
    session_id, nurse = infusing(ctx)
    for minute in (10, 20, 30, 40):
        ctx.clock.advance(minutes=10)
        assert done(vitals(nurse, session_id, f"10:{minute}"))
    assert done(nurse.submit(chair(session_id, "end")))
    return session_id, nurse


def discharged(ctx):
    session_id, nurse = recovering(ctx)
    wait(ctx.clock, 30, nurse)
    assert done(vitals(nurse, session_id, "11:10"))
    assert done(discharge(nurse, session_id))
    return session_id, nurse


def completed(ctx):
    session_id, nurse = discharged(ctx)
    assert nurse.submit(note_url(session_id), {"version": "0", **COMPLETE}).status_code == 302
    assert nurse.submit(note_url(session_id, "complete"),
                        {"version": str(version_of(ctx.app, session_id))}).status_code == 302
    return session_id


def user_row(user_id):
    return db.session.get(StaffUser, user_id)


# --- one request per endpoint: (client, url, data) --------------------------------------------------


def admin_target(action, prepare=None):
    def request(ctx):
        target = ctx.make_user("nurse")
        if prepare:
            in_app(ctx, lambda: prepare(user_row(target.id), actor=FACTORY_ACTOR, now=ctx.clock()))
        data = {"role": {"role": "physician"},
                "password": {"password": "temporary passphrase 42", "confirm": "temporary passphrase 42"}}
        return ctx.login_as("admin"), f"/admin/staff/{target.id}/{action}", data.get(action, {})
    return request


def change_pin(ctx):
    return ctx.login_as("nurse"), "/account/pin", {"password": PASSWORD, "pin": "2580", "confirm": "2580"}


def tablet_revoke(ctx):
    def enrol():
        admin = ctx.make_user("admin")
        return tablets.enrol_tablet("Chair 3 tablet", actor=replace(FACTORY_ACTOR, user_id=admin.id),
                                    now=ctx.clock())[0].id
    return ctx.login_as("admin"), f"/admin/tablets/{in_app(ctx, enrol)}/revoke", {}


def change_password(ctx):
    new = "a brand new passphrase"
    return ctx.login_as("nurse"), "/account/password", {"current_password": PASSWORD, "password": new,
                                                        "confirm": new}


def checklist_form(ctx):
    return ctx.login_as("nurse"), f"/sessions/{checked_in(ctx)}/checklist", {"version": "0", **CLEAR}


def checklist_override(ctx):
    return ctx.login_as("physician"), f"/sessions/{needs_physician(ctx)}/checklist/override", {
        "code": "BP_SOFT_GATE", "password": PASSWORD, "reason": "Known white-coat hypertension"}


def chair_update(ctx):
    chair_id = in_app(ctx, lambda: create_chairs(1)[0])
    return ctx.login_as("admin"), f"/admin/clinic/chairs/{chair_id}", {"name": "Renamed chair", "position": "1",
                                                                       "is_active": "y"}


def protocol_edit(ctx):
    protocol_id = in_app(ctx, lambda: db.session.scalar(
        select(Protocol.id).where(Protocol.code == "iv-induction", Protocol.is_current)))
    return ctx.login_as("admin"), f"/admin/clinic/protocols/{protocol_id}/edit", IV_EDIT


def closure_remove(ctx):
    closure_id = in_app(ctx, lambda: closures.add_closure(closed_on=date(2026, 12, 25), label="Christmas Day",
                                                          actor=FACTORY_ACTOR, now=ctx.clock())[0].id)
    return ctx.login_as("admin"), f"/admin/clinic/closures/{closure_id}/remove", {}


def feed_revoke(ctx):
    nurse = ctx.login_as("nurse")
    in_app(ctx, lambda: feeds.issue_token(user_row(nurse.user.id), actor=FACTORY_ACTOR, now=ctx.clock()))
    return nurse, "/account/calendar/revoke", {}


def chair_start(ctx):
    return ctx.login_as("nurse"), chair(todays_session(ctx), "start"), fields("start", infusion_minutes=40)


def order_dose(ctx):
    return ctx.login_as("physician"), chair(todays_session(ctx), "dose-order"), fields(
        "order", dose="0.8", reason="Partial response at 0.5 after four sessions", password=PASSWORD)


def chair_override(ctx):
    prefix = "override-start-BP_SOFT_GATE"
    return ctx.login_as("physician"), chair(needs_physician(ctx), "overrides/start/BP_SOFT_GATE"), fields(
        prefix, dose_order=0, infusion_minutes=40, password=PASSWORD, reason="White-coat; recheck every 10 min.")


def controlled_substance(ctx):
    session_id, nurse = infusing(ctx)
    witness = ctx.make_user("nurse")
    entry = {"product": "Ketamine 50 mg/mL, 10 mL vial", "lot": "KX2291", "expiry_on": "2027-06-30",
             "drawn_mg": "50", "given_mg": "36.2", "wasted_mg": "13.8", "witness_username": witness.username,
             "witness_password": PASSWORD}
    return nurse, chair(session_id, "controlled-substance"), fields("cs", **entry)


def chair_vitals(ctx):
    session_id, nurse = infusing(ctx)
    ctx.clock.advance(minutes=10)
    reading = {"systolic": 128, "diastolic": 80, "heart_rate": 76, "spo2": 97, "moaas": 5, "taken_at": "10:10"}
    return nurse, chair(session_id, "vitals"), fields("vitals", **reading)


def acknowledge(ctx):
    session_id, nurse, alert_id = with_alert(ctx)
    return nurse, chair(session_id, f"alerts/{alert_id}/acknowledge"), fields(
        f"alert{alert_id}", action="pause", note="BP high; infusion held, recheck in 5 min.")


def chair_resume(ctx):
    session_id, nurse, alert_id = with_alert(ctx)
    assert done(nurse.submit(chair(session_id, f"alerts/{alert_id}/acknowledge"),
                             fields(f"alert{alert_id}", action="pause", note="Held.")))
    ctx.clock.advance(minutes=5)
    return nurse, chair(session_id, "resume"), fields("resume", note="Rechecked 150/90.")


def chair_end(ctx):
    session_id, nurse = infusing(ctx)
    for minute in (10, 20, 30, 40):
        ctx.clock.advance(minutes=10)
        assert done(vitals(nurse, session_id, f"10:{minute}"))
    return nurse, chair(session_id, "end"), {}


def chair_discharge(ctx):
    session_id, nurse = recovering(ctx)
    wait(ctx.clock, 30, nurse)
    assert done(vitals(nurse, session_id, "11:10"))
    answers = {"moaas": 5, "escort_present": "yes", "instructions_given": "yes",
               "condition": "Alert and steady; leaving with her partner."}
    return nurse, chair(session_id, "discharge"), fields("discharge", **answers)


def vitals_in_error(ctx):
    session_id, nurse = infusing(ctx)
    ctx.clock.advance(minutes=10)
    assert done(vitals(nurse, session_id, "10:10"))
    reading_id = in_app(ctx, lambda: db.session.scalar(select(VitalSign.id)))
    return nurse, chair(session_id, f"vitals/{reading_id}/entered-in-error"), fields(
        f"in-error-vitals-{reading_id}", reason="Recorded on the wrong patient.")


def note_save(ctx):
    session_id, nurse = infusing(ctx)
    return nurse, note_url(session_id), {"version": "0", "mindset": "Calm, a little tired."}


def note_start_from_last(ctx):
    session_id, nurse = infusing(ctx)
    assert nurse.submit(note_url(session_id), {"version": "0", "music": "Ambient piano"}).status_code == 302
    later = in_app(ctx, lambda: db.session.scalar(select(InfusionSession.id).where(InfusionSession.sequence == 2)))
    return nurse, note_url(later, "start-from-last"), {"version": "0"}


AE = {"kind": "nausea", "onset_time": "10:05", "severity": "mild", "intervention": "Ondansetron offered",
      "drug_given": "", "outcome": "resolved", "alert_id": ""}


def adverse_event(ctx):
    session_id, nurse = infusing(ctx)
    return nurse, note_url(session_id, "adverse-events"), fields("ae", **AE)


def remove_adverse_event(ctx):
    session_id, nurse = infusing(ctx)
    assert nurse.submit(note_url(session_id, "adverse-events"), fields("ae", **AE)).status_code == 302
    event_id = in_app(ctx, lambda: db.session.scalar(select(AdverseEvent.id)))
    return nurse, note_url(session_id, f"adverse-events/{event_id}/remove"), {}


def note_complete(ctx):
    session_id, nurse = discharged(ctx)
    assert nurse.submit(note_url(session_id), {"version": "0", **COMPLETE}).status_code == 302
    return nurse, note_url(session_id, "complete"), {"version": str(version_of(ctx.app, session_id))}


def note_sign(ctx):
    session_id = completed(ctx)
    return ctx.login_as("physician"), note_url(session_id, "sign"), {
        "version": str(version_of(ctx.app, session_id)), "password": PASSWORD}


def note_addendum(ctx):
    session_id = completed(ctx)
    physician = ctx.login_as("physician")
    assert physician.submit(note_url(session_id, "sign"), {"version": str(version_of(ctx.app, session_id)),
                                                           "password": PASSWORD}).status_code == 302
    return physician, note_url(session_id, "addenda"), {
        "reason": "Late entry", "body": "Patient phoned: slept well.", "password": PASSWORD}


def series_summary_sign(ctx):
    session_id = completed(ctx)
    physician = ctx.login_as("physician")
    assert physician.submit(note_url(session_id, "sign"), {"version": str(version_of(ctx.app, session_id)),
                                                           "password": PASSWORD}).status_code == 302
    series_id = in_app(ctx, lambda: db.session.get(InfusionSession, session_id).series_id)
    return physician, f"/series/{series_id}/summary/sign", {
        "summary": "One session given and tolerated well; continue the series.", "password": PASSWORD}


def chart(path, data, prepare=None, role="nurse"):
    """A clinical-background form on a new patient's chart ({entry}: what `prepare(patient)` made)."""
    def request(ctx):
        def make():
            patient = db.session.get(Patient, create_patient(now=ctx.clock()).id)
            return patient.id, prepare(patient).id if prepare else None
        patient_id, entry = in_app(ctx, make)
        fill = {key.format(entry=entry): value for key, value in data.items()}
        return ctx.login_as(role), f"/patients/{patient_id}/" + path.format(entry=entry), fill
    return request


def a_medication(patient):
    return patients.add_medication(patient, name="Lamotrigine", med_class="lamotrigine", started_on=date(2025, 1, 1),
                                   stopped_on=None, actor=FACTORY_ACTOR, now=patient.created_at)


def a_weight(patient):
    return patients.add_weight(patient, kg=72, measured_on=date(2026, 11, 1), actor=FACTORY_ACTOR,
                               now=patient.created_at)


def patient_edit(ctx):
    patient_id, nurse = a_patient(ctx), ctx.login_as("nurse")
    return nurse, f"/patients/{patient_id}/edit", edit_data(nurse, patient_id, phone="503 555 0199")


def book(ctx):
    series_id, _, chairs = a_series(ctx)
    return ctx.login_as("coordinator"), "/schedule/book", {"series_id": series_id, "chair_id": chairs[1],
                                                            "day": "2026-12-01", "start_time": "14:00"}


def record_past(ctx):
    series_id, _, chairs = a_series(ctx)
    return ctx.login_as("physician"), "/schedule/record-past", {
        "series_id": series_id, "chair_id": chairs[0], "day": "2026-11-25", "start_time": "10:00",
        "reason": "Given during the network outage; paper record scanned."}


def change_to_checked_in(ctx):
    return ctx.login_as("nurse"), f"/sessions/{todays_session(ctx, cleared=False)}/status", {"target": "checked_in"}


def move(ctx):
    _, session_id, chairs = a_series(ctx)
    return ctx.login_as("coordinator"), f"/sessions/{session_id}/move", {
        "chair_id": chairs[0], "day": "2026-11-30", "start_time": "13:00"}


def confirm_session(ctx):
    return ctx.login_as("coordinator"), f"/sessions/{a_series(ctx)[1]}/confirmation", {"via": "phone"}


def a_follow_up(ctx):
    """A discharged session's next-day call on the coordinator's list; (item id, version)."""
    from opsmgr.followups.models import FollowUp

    session_id = a_series(ctx)[1]

    def discharge():
        visit = db.session.get(InfusionSession, session_id)
        visit.status, visit.status_changed_at = "discharged", ctx.clock()
    in_app(ctx, discharge)
    return in_app(ctx, lambda: db.session.execute(
        select(FollowUp.id, FollowUp.version).where(FollowUp.kind == "checkin_call")).one())


def follow_up(action, data):
    def case(ctx):
        item_id, version = a_follow_up(ctx)
        return ctx.login_as("coordinator"), f"/worklist/{item_id}/{action}", {"version": str(version), **data}
    return case


def move_to_today(ctx):
    return ctx.login_as("nurse"), f"/sessions/{a_series(ctx)[1]}/move-to-today", {}


def series_order(ctx):
    patient_id = a_patient(ctx)
    protocol_id = in_app(ctx, lambda: (create_chairs(2), db.session.scalar(
        select(Protocol.id).where(Protocol.code == "iv-induction", Protocol.is_current)))[1])
    physician, url = ctx.login_as("physician"), f"/patients/{patient_id}/series/new"
    order = {"protocol_id": protocol_id, "indication": "trd", "start_on": "2026-11-30", "preferred_time": "09:00"}
    preview = physician.submit(url, order).get_data(as_text=True)
    plan = re.search(r'name="plan" value="([^"]+)"', preview).group(1)
    return physician, url, {**order, "plan": plan, "step": "confirm"}


def series_stop(ctx):
    return ctx.login_as("physician"), f"/series/{a_series(ctx)[0]}/stop", {"reason": "Patient request"}


def task_resolve(ctx):
    session_id = checked_in(ctx)
    raised = ctx.login_as("nurse").submit(f"/sessions/{session_id}/checklist", {"version": "0", **CLEAR,
                                                                                "phq9_9": "1"})
    assert raised.status_code == 302
    task_id = in_app(ctx, lambda: db.session.scalar(select(PhysicianTask.id)))
    return ctx.login_as("physician"), f"/tasks/{task_id}/resolve", {
        f"task{task_id}-note": "Saw the patient: passive thoughts, no plan. Dose goes ahead."}


def restricted_patient(ctx, team_role="physician"):
    """A new patient restricted to a care team of one new `team_role` member (tests/test_restricted_records.py)."""
    from opsmgr.restricted import service as restricted

    member = ctx.make_user(team_role)

    def make():
        patient = create_patient(now=ctx.clock())
        restricted.set_restriction(patient, restricted=True, care_team=[member.id], reason="A staff member",
                                   actor=FACTORY_ACTOR, now=ctx.clock())
        return patient.id
    return in_app(ctx, make)


def restrict(ctx):
    patient_id, physician = a_patient(ctx), ctx.login_as("physician")
    return physician, f"/patients/{patient_id}/restriction", {
        "restricted": "yes", "care_team": str(physician.user.id), "reason": "Public figure"}


def break_glass(ctx):
    patient_id = restricted_patient(ctx)
    return ctx.login_as("nurse"), f"/patients/{patient_id}/break-glass", {
        "reason": "at_chair", "detail": "Patient at chair 2", "password": PASSWORD}


def break_glass_review(ctx):
    patient_id, nurse = restricted_patient(ctx), ctx.login_as("nurse")
    assert nurse.submit(f"/patients/{patient_id}/break-glass", {
        "reason": "emergency", "detail": "Fainted at check-in", "password": PASSWORD}).status_code == 302
    from opsmgr.restricted.models import BreakGlassEvent

    event_id = in_app(ctx, lambda: db.session.scalar(select(BreakGlassEvent.id)))
    return ctx.login_as("admin"), f"/admin/break-glass/{event_id}/review", {}


def two_factor_off(ctx):
    """A physician with two-factor on turns it off with a recovery code."""
    from opsmgr.twofactor import service as two_factor
    from opsmgr.twofactor.models import TwoFactor

    client = ctx.login_as("physician")

    def enrolled():
        two_factor.start_enrolment(user_row(client.user.id), actor=FACTORY_ACTOR, now=ctx.clock())
        db.session.get(TwoFactor, client.user.id).confirmed_at = ctx.clock()
        return two_factor._new_recovery_codes(client.user.id, ctx.clock())

    codes = in_app(ctx, enrolled)
    return client, "/account/two-factor/off", {"password": PASSWORD, "code": codes[0]}


# fmt: off
#: endpoint -> how to make one request the server accepts (client, url, data).
ENDPOINTS = {
    "admin.staff_create":          lambda ctx: (ctx.login_as("admin"), "/admin/staff/new", NEW_STAFF),
    "admin.staff_role":            admin_target("role"),
    "admin.staff_reset_password":  admin_target("password"),
    "admin.staff_deactivate":      admin_target("deactivate"),
    "admin.staff_reactivate":      admin_target("reactivate", auth.deactivate),
    "admin.staff_end_sessions":    admin_target("end-sessions"),
    "auth.change_password":        change_password,
    "auth.change_pin":             change_pin,
    "tablets.enrol":               lambda ctx: (ctx.login_as("admin"), "/admin/tablets/enrol",
                                                {"name": "Chair 3 tablet"}),
    "tablets.revoke":              tablet_revoke,
    "checklist.form":              checklist_form,
    "checklist.override":          checklist_override,
    "clinic.chair_create":         lambda ctx: (ctx.login_as("admin"), "/admin/clinic/chairs",
                                                {"name": "Garden chair", "position": "9"}),
    "clinic.chair_update":         chair_update,
    "clinic.hours":                lambda ctx: (ctx.login_as("admin"), "/admin/clinic/hours",
                                                {**WEEK, "days-5-is_open": "y"}),
    "clinic.settings":             lambda ctx: (ctx.login_as("admin"), "/admin/clinic/settings",
                                                {"turnover_minutes": "10"}),
    "clinic.protocol_edit":        protocol_edit,
    "clinic.closures_page":        lambda ctx: (ctx.login_as("admin"), "/admin/clinic/closures",
                                                {"closed_on": "2026-12-25", "label": "Christmas Day"}),
    "clinic.closure_remove":       closure_remove,
    "feeds.revoke":                feed_revoke,
    "infusion.start":              chair_start,
    "infusion.order_dose":         order_dose,
    "infusion.override":           chair_override,
    "infusion.controlled_substance": controlled_substance,
    "infusion.vitals":             chair_vitals,
    "infusion.vitals_in_error":    vitals_in_error,
    "infusion.acknowledge":        acknowledge,
    "infusion.resume":             chair_resume,
    "infusion.end":                chair_end,
    "infusion.discharge":          chair_discharge,
    "messaging.confirm_session":   confirm_session,
    "followups.done":              follow_up("done", {"outcome": "Reached; doing well."}),
    "followups.not_reached":       follow_up("not-reached", {}),
    "followups.escalate":          follow_up("escalate", {"note": "Asks for a call back."}),
    "notes.page":                  note_save,
    "notes.start_from_last":       note_start_from_last,
    "notes.add_adverse_event":     adverse_event,
    "notes.remove_adverse_event":  remove_adverse_event,
    "notes.complete":              note_complete,
    "notes.sign":                  note_sign,
    "notes.add_addendum":          note_addendum,
    "reports.series_sign":         series_summary_sign,
    "patients.create":             lambda ctx: (ctx.login_as("nurse"), "/patients/new", NEW_PATIENT),
    "patients.edit":               patient_edit,
    "patients.add_weight":         chart("weights", {"kg": "72.5", "measured_on": "2026-11-20"}),
    "patients.add_medication":     chart("medications", {"name": "Sertraline", "med_class": "ssri_snri",
                                                         "started_on": "2026-01-05"}),
    "patients.stop_medication":    chart("medications/{entry}/stop", {"med{entry}-stopped_on": "2026-11-20"},
                                         a_medication),
    "patients.add_contraindication": chart("contraindications", {"kind": "cardiac_disease", "detail": "Stent 2019",
                                                                 "noted_on": "2026-11-01"}),
    "patients.record_consent":     chart("consent", {"consent_on": "2026-11-20", "form_version": "v3"}),
    "patients.entry_in_error":     chart("weights/{entry}/entered-in-error",
                                         {"in-error-weights-{entry}-reason": "Weighed in coat and boots."},
                                         a_weight, role="physician"),
    "policy.edit":                 lambda ctx: (ctx.login_as("admin"), "/admin/policy/",
                                                form_values(bp_soft_systolic="135")),
    "message_templates.edit":      lambda ctx: (ctx.login_as("admin"), "/admin/messages",
                                                {**MESSAGE_TEXTS, "reminder_sms": "See you {{ session_day }}.",
                                                 "action": "save"}),
    "schedule.book":               book,
    "schedule.record_past":        record_past,
    "schedule.change_status":      change_to_checked_in,
    "schedule.move":               move,
    "schedule.move_to_today":      move_to_today,
    "series.order":                series_order,
    "series.stop":                 series_stop,
    "tasks.resolve":               task_resolve,
    "restricted.manage":           restrict,
    "restricted.break_glass":      break_glass,
    "restricted.review":           break_glass_review,
    "two_factor.start":            lambda ctx: (ctx.login_as("physician"), "/account/two-factor/start", {}),
    "two_factor.turn_off":         two_factor_off,
    "two_factor.policy":           lambda ctx: (ctx.login_as("admin"), "/admin/two-factor", {"nurse": "y"}),
    "two_factor.reset":            admin_target("two-factor/reset"),
}
# fmt: on
#: A representative handful on PostgreSQL too: a registration, a chair action, a note, an admin action.
ON_POSTGRESQL = ("patients.create", "infusion.vitals", "notes.page", "admin.staff_role")
CASES = [pytest.param("sqlite", endpoint, id=endpoint) for endpoint in ENDPOINTS] + [
    pytest.param("postgresql", endpoint, id=f"{endpoint}-postgresql") for endpoint in ON_POSTGRESQL]


# --- helpers -------------------------------------------------------------------------------------


def snapshot(app):
    """Every row of every table, in key order: what a request changed, if anything."""
    with app.app_context():
        return {table.name: db.session.execute(select(table).order_by(*table.primary_key.columns)).all()
                for table in db.metadata.sorted_tables}


def take_flashes(client):
    # Flashed messages wait on the server (core.flashes): the session reads them inside an app context.
    with client.application.app_context(), client.session_transaction() as cookie:
        return cookie.pop("_flashes", [])


def answer(response):
    return response.status_code, response.headers.get("Location")


def post_endpoints(app):
    return {rule.endpoint for rule in app.url_map.iter_rules() if "POST" in rule.methods}


# --- the table -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_table_covers_every_post_endpoint(backend, app):
    posts = post_endpoints(app)
    assert set(ENDPOINTS) | set(EXCLUDED) == posts, (
        f"POST endpoints without a row: {sorted(posts - set(ENDPOINTS) - set(EXCLUDED))}; "
        f"rows for endpoints that are gone: {sorted((set(ENDPOINTS) | set(EXCLUDED)) - posts)}")
    assert not set(ENDPOINTS) & set(EXCLUDED)


@pytest.mark.parametrize(("backend", "endpoint"), CASES, indirect=["backend"])
def test_a_repeated_key_gets_the_first_answer_and_changes_nothing(backend, endpoint, app, clock, login_as, make_user):
    client, url, data = ENDPOINTS[endpoint](Ctx(app, clock, login_as, make_user))
    data = {**data, FIELD: KEY}
    take_flashes(client)  # what getting here flashed
    before = snapshot(app)
    first = client.submit(url, data)
    assert first.status_code in {302, 303}, first.get_data(as_text=True)[:3000]
    first_flashes, after = take_flashes(client), snapshot(app)
    assert len(after["audit_event"]) > len(before["audit_event"]), "the first submission acted, and was audited"
    assert len(after["submission"]) == len(before["submission"]) + 1

    again = client.submit(url, data)
    assert answer(again) == answer(first)
    assert take_flashes(client) == first_flashes
    assert snapshot(app) == after, "the repeat wrote nothing: no row, no audit event"


# --- around the table ----------------------------------------------------------------------------


def weights(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(PatientWeight))


def test_a_refused_first_submission_keeps_no_key_and_its_repeat_is_refused_alike(app, clock, login_as):
    nurse, url, data = ENDPOINTS["patients.stop_medication"](Ctx(app, clock, login_as, None))
    data = {**data, next(iter(data)): "2024-01-01", FIELD: KEY}  # before the medication started
    refusals = [nurse.submit(url, data) for _ in range(2)]
    assert [r.status_code for r in refusals] == [400, 400]
    assert all("The stop date is before the start date." in r.get_data(as_text=True) for r in refusals)
    assert snapshot(app)["submission"] == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_key_belongs_to_its_staff_session(backend, app, clock, login_as):
    """Another sign-in sending the same key is a new submission, and never sees the first one's messages."""
    _, url, data = ENDPOINTS["patients.add_weight"](Ctx(app, clock, login_as, None))
    for nurse in (login_as("nurse"), login_as("nurse")):
        response = nurse.submit(url, {**data, FIELD: KEY})
        assert response.status_code == 302 and take_flashes(nurse) == [("success", "Weight 72.5 kg recorded.")]
    assert weights(app) == 2


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_without_a_key_every_post_acts_as_before(backend, app, clock, login_as):
    nurse, url, data = ENDPOINTS["patients.add_weight"](Ctx(app, clock, login_as, None))
    assert [nurse.submit(url, data).status_code for _ in range(2)] == [302, 302]
    assert weights(app) == 2 and snapshot(app)["submission"] == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_autosave_leaves_the_page_key_to_save_draft(backend, app, clock, login_as):
    """The note's script autosaves with the whole form, key included: the key still saves the draft after."""
    nurse, url, data = ENDPOINTS["notes.page"](Ctx(app, clock, login_as, None))
    take_flashes(nurse)
    saved = nurse.submit(f"{url}/autosave", {**data, FIELD: KEY}, headers={"Accept": "application/json"})
    assert saved.status_code == 200 and saved.json["status"] == "saved"
    draft = nurse.submit(url, {**data, "version": "1", "mindset": "Calm, then sleepy.", FIELD: KEY})
    assert draft.status_code == 302 and take_flashes(nurse) == [("success", "Draft saved.")]


def test_the_sweep_forgets_the_keys_of_ended_sessions(app, clock, login_as):
    nurse, url, data = ENDPOINTS["patients.add_weight"](Ctx(app, clock, login_as, None))
    assert nurse.submit(url, {**data, FIELD: KEY}).status_code == 302
    assert nurse.logout().status_code == 302
    other = login_as("nurse")
    assert other.submit(url, {**data, FIELD: KEY}).status_code == 302
    with app.app_context():
        jobs.sweep_sessions()
        assert db.session.scalar(select(func.count()).select_from(Submission)) == 1, "the live session's key stays"


@pytest.mark.fresh_db
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_two_posts_of_one_key_at_once_record_one_reading(backend, app, clock, login_as, monkeypatch):
    """A double click's two requests overlap: the second waits for the first's transaction (on the key's unique
    index on PostgreSQL, on the write lock on SQLite), then answers as the first did."""
    nurse, url, data = ENDPOINTS["patients.add_weight"](Ctx(app, clock, login_as, None))
    data = {**data, FIELD: KEY, "csrf_token": nurse.csrf_token()}
    twin = app.test_client()
    cookie = nurse.get_cookie(app.config["SESSION_COOKIE_NAME"])
    twin.set_cookie(cookie.key, cookie.value)
    first_inside, second_started, go_on = threading.Event(), threading.Event(), threading.Event()
    add_weight = patients.add_weight

    def held(*args, **kwargs):  # the first request stops inside its transaction, key claimed, weight written
        row = add_weight(*args, **kwargs)
        if not first_inside.is_set():
            first_inside.set()
            assert go_on.wait(30)
        return row

    def started(sender, **extra):
        if threading.current_thread().name == "second":
            second_started.set()

    monkeypatch.setattr(patients, "add_weight", held)
    answers = {}

    def post(name, client):
        answers[name] = client.post(url, data=data)

    first = threading.Thread(target=post, args=("first", nurse), name="first")
    second = threading.Thread(target=post, args=("second", twin), name="second")
    with request_started.connected_to(started, app):
        first.start()
        assert first_inside.wait(30)
        second.start()
        assert second_started.wait(30)
        if backend == "postgresql":
            wait_for_a_blocked_query(app)
        go_on.set()
        first.join(30)
        second.join(30)
    assert answer(answers["first"]) == answer(answers["second"]) and answers["first"].status_code == 302
    assert weights(app) == 1


def wait_for_a_blocked_query(app):
    """Until another connection waits on a lock (the second request's key, behind the first's)."""
    import time

    with app.app_context():
        for _ in range(1500):
            waiting = db.session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"))
            db.session.rollback()
            if waiting:
                return
            time.sleep(0.02)
    pytest.fail("the second request never waited on the first one's key")


# --- every form carries a key ------------------------------------------------------------------------

#: Templates whose posting forms carry no key (see EXCLUDED): the sign-in and its code step, the sign-out, the new
#: feed address, a tablet's lock screen (its PIN and "Not you?") and its idle lock.
KEYLESS = {"auth/login.html": 1, "twofactor/code.html": 1, "base.html": 1, "feeds/manage.html": 1,
           "auth/locked.html": 2, "auth/_tablet_lock.html": 1}


def test_every_form_with_a_security_token_carries_a_submission_key():
    missing = {}
    for path in sorted((ROOT / "templates").rglob("*.html")):
        source = path.read_text()
        tokens = len(re.findall(r"csrf_token\(\)|hidden_tag\(\)", source))
        keys = source.count("submission_key()")
        name = str(path.relative_to(ROOT / "templates"))
        if tokens - keys != KEYLESS.get(name, 0):
            missing[name] = tokens - keys
    assert not missing, f"forms without <input type=\"hidden\" name=\"{FIELD}\" ...>: {missing}"
