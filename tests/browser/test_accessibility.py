"""An automated WCAG 2.1 A/AA audit with axe-core of the pages each role works in, on a tablet (768x1024)
(the live board and the physician's alerts on a desktop, 1366x768, too).

One server with the demo clinic (`flask demo seed`) on a clock at CLOCKED_START clinic time today, so the
board has sessions at every stage. The fixture adds what the seed leaves out: a reading raising an alert
for the infusing session; notes written, completed, signed and given an addendum through the notes
service; a second session in recovery (the 16:00 booster, taken there by the demo's own chair steps); then,
six minutes on, when the recovery observation is over, that session's discharge refused for MOAA/S 4 and
kept as a pending assessment waiting for the physician. The next week's booking of another patient is
audited as a session booked on another day (at CLOCKED_START no chair is free today, so "Move it to
today" is refused: that refusal is audited too, and changes nothing). Each role signs in once; every page
opens in a context of its own with ``bypass_csp=True`` (axe is injected, which the app's CSP forbids),
collapsed sections are unfolded, and the test fails with axe's list of violations: rule, impact, the
elements and what to fix.

A rule is only ever disabled for one page, with the reason next to it (none is, today). axe finds what
a machine can; keyboard order, focus visibility and meaning beyond colour still need a person's check.
"""
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from opsmgr.auth import service as auth_service
from opsmgr.auth.models import StaffUser
from opsmgr.auth.service import actor_for
from opsmgr.core.clock import system_now
from opsmgr.demo.chair import AtTheChair
from opsmgr.demo.service import DEMO_ACTOR, RESTRICTED_MRN
from opsmgr.exports import service as export_service
from opsmgr.extensions import db
from opsmgr.infusion import discharge as discharge_service
from opsmgr.infusion import gate as gate_service
from opsmgr.infusion import service as infusion
from opsmgr.infusion import vitals as vitals_service
from opsmgr.notes import service as notes
from opsmgr.patients.models import Patient
from opsmgr.restricted import service as restricted_service
from opsmgr.rules.session_states import SessionState
from opsmgr.schedule.models import ClinicClosure
from opsmgr.schedule.service import local_day_bounds
from opsmgr.sessions.models import InfusionSession
from tests.browser.a11y import report, violations
from tests.browser.conftest import (
    CLINIC_ZONE,
    CLOCKED_START,
    DEMO_PASSWORD,
    TIMEOUT_MS,
    AdjustableClock,
    migrated_app,
    seed_demo,
    serving,
)

pytestmark = pytest.mark.browser

TABLET = {"width": 768, "height": 1024}
DESKTOP = {"width": 1366, "height": 768}
#: The demo clinic's patients (opsmgr/demo/service.py) whose pages are audited.
CHECKED_IN, CLEARED, INFUSING, RECOVERY = "DEMO-0006", "DEMO-0007", "DEMO-0005", "DEMO-0008"
DISCHARGED_TODAY, WITH_ALERTS = "DEMO-0004", "DEMO-0009"
#: DEMO-0009's 16:00 booster, taken to recovery, whose discharge waits for the physician; DEMO-0010's
#: booster a week from today (a session booked on another day).
PENDING_DISCHARGE, BOOKED_NEXT_WEEK = "DEMO-0009", "DEMO-0010"
#: The demo's restricted record: only the demo physician is on its care team.
RESTRICTED = RESTRICTED_MRN
#: The recovery sessions' observation ends 5 minutes after the seed's clock (demo.chair): the pending
#: assessment is made past it, so the discharge form is offered and only the MOAA/S waits.
AFTER_THE_OBSERVATION_MINUTES = 6
NOTE = {"mindset": "Calm, a little tired after the drive.", "intention": "To sleep through the night again.",
        "dissociation_clinician": 5, "post_session_state": "Oriented, steady gait, escort driving.",
        "narrative": "Settled quickly; mild nausea at 20 minutes that passed without treatment."}


@dataclass
class Clinic:
    url: str
    ids: dict = field(default_factory=dict)


def _today_session(patient_id, today):
    """The patient's session on `today` (or any other clinic day), and all their sessions in order."""
    sessions = db.session.scalars(select(InfusionSession).where(InfusionSession.patient_id == patient_id)
                                  .order_by(InfusionSession.starts_at)).all()
    return next(s for s in sessions if s.starts_at.astimezone(CLINIC_ZONE).date() == today), sessions


def _dose_and_readings(clock, session_id):
    """The demo's infusing session has its dose and readings (demo seed): add a reading now that
    raises an alert, so the page shows one waiting to be acknowledged."""
    nurse = actor_for(db.session.scalar(select(StaffUser).where(StaffUser.username == "nurse")))
    session = db.session.get(InfusionSession, session_id)
    vitals_service.record_vitals(session, systolic=185, diastolic=112, heart_rate=80, spo2=97, moaas=5,
                                 taken_at=clock().replace(second=0, microsecond=0), actor=nurse, now=clock())


def _pending_discharge(clock, session_id, today):
    """A second session in recovery, by the demo's chair steps (so it has its checklist, dose,
    controlled substance and readings), then a discharge past the observation with MOAA/S 4: refused,
    and kept as the pending assessment the physician sees."""
    session = db.session.get(InfusionSession, session_id)
    day_starts_at = local_day_bounds(today, CLINIC_ZONE.key)[0]
    AtTheChair(clock(), {"physician": DEMO_PASSWORD}, day_starts_at=day_starts_at).hold(session, SessionState.RECOVERY)
    clock.advance(minutes=AFTER_THE_OBSERVATION_MINUTES)
    nurse = actor_for(db.session.scalar(select(StaffUser).where(StaffUser.username == "nurse")))
    with pytest.raises(infusion.InfusionError):
        discharge_service.discharge(session, moaas=4, escort_present=True, instructions_given=True,
                                    condition="Drowsy, opens his eyes to his name; escort here.", actor=nurse,
                                    now=clock())
    assert [f.code for f in gate_service.discharge_gate(session, now=clock(), **gate_service.assessment_answers(
        gate_service.pending_assessment(session))).open] == ["MENTAL_STATUS_NOT_BASELINE"]


def _notes(clock, signed_id, complete_id, draft_id):
    """A signed note with an addendum, a complete one waiting on "To sign", and a draft."""
    nurse = db.session.scalar(select(StaffUser).where(StaffUser.username == "nurse"))
    physician = db.session.scalar(select(StaffUser).where(StaffUser.username == "physician"))
    for session_id in (signed_id, complete_id):
        session = db.session.get(InfusionSession, session_id)
        note = notes.save_draft(session, NOTE, expected_version=None, actor=actor_for(nurse), now=clock()).row
        notes.complete_note(session, expected_version=note.version, actor=actor_for(nurse), now=clock())
    signed = db.session.get(InfusionSession, signed_id)
    note = notes.sign_note(signed, physician=physician, password=DEMO_PASSWORD, ip=None, now=clock(),
                           expected_version=notes.note_for(signed).version)
    assert note.status == "signed"
    notes.add_addendum(signed, author=physician, password=DEMO_PASSWORD, reason="Late report from the patient",
                       body="Phoned in the evening: a mild headache, resolved.", event_at=None, ip=None, now=clock())
    notes.save_draft(db.session.get(InfusionSession, draft_id), {"mindset": NOTE["mindset"]}, expected_version=None,
                     actor=actor_for(nurse), now=clock())


def _disclosed(clock, patient):
    """The restricted demo record disclosed twice: a covering nurse (not on its care team) breaks the glass,
    unreviewed, for the admins' list; the physician on the care team exports it as FHIR."""
    covering = auth_service.create_staff(username="covering-nurse", full_name="Covering Nurse (fictional)",
                                         role="nurse", password=DEMO_PASSWORD, actor=DEMO_ACTOR, now=clock())
    restricted_service.break_glass(patient, covering, reason="emergency", detail="Called to the chair: fainted.",
                                   password=DEMO_PASSWORD, actor=actor_for(covering), now=clock(),
                                   duration=timedelta(minutes=60))
    physician = db.session.scalar(select(StaffUser).where(StaffUser.username == "physician"))
    export_service.patient_bundle(patient, base_url="http://localhost/", actor=actor_for(physician), now=clock(),
                                  via="web")


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("a11y")
    today = system_now().astimezone(CLINIC_ZONE).date()
    clock = AdjustableClock(datetime.combine(today, CLOCKED_START, tzinfo=CLINIC_ZONE) - system_now())
    ids = {}

    def seed():
        seed_demo(clock)
        patient = {p.mrn: p.id for p in db.session.scalars(select(Patient))}
        ids["patient"] = patient[WITH_ALERTS]
        ids["hub"] = patient[DISCHARGED_TODAY]
        ids["checked_in"] = _today_session(patient[CHECKED_IN], today)[0].id
        ids["infusing"] = _today_session(patient[INFUSING], today)[0].id
        ids["cleared"] = _today_session(patient[CLEARED], today)[0].id
        ids["recovery"] = _today_session(patient[RECOVERY], today)[0].id
        _dose_and_readings(clock, ids["infusing"])
        today_session, course = _today_session(patient[DISCHARGED_TODAY], today)
        ids["draft"], (ids["signed"], ids["complete"]) = today_session.id, [s.id for s in course[:2]]
        _notes(clock, ids["signed"], ids["complete"], ids["draft"])
        ids["pending"] = _today_session(patient[PENDING_DISCHARGE], today)[0].id
        _pending_discharge(clock, ids["pending"], today)
        ids["other_day"] = _today_session(patient[BOOKED_NEXT_WEEK], today + timedelta(days=7))[0].id
        # The schedule: next week's day (free slots and a booking), a closure, and that patient to book.
        ids["next_week"], ids["closed_day"] = (today + timedelta(days=7)).isoformat(), today + timedelta(days=21)
        ids["to_book"] = patient[BOOKED_NEXT_WEEK]
        db.session.add(ClinicClosure(closed_on=ids["closed_day"], label="Demo holiday", created_at=clock()))
        ids["restricted"] = patient[RESTRICTED]
        _disclosed(clock, db.session.get(Patient, ids["restricted"]))

    app = migrated_app(folder, "a11y", seed, CLOCK=clock)
    with serving(app) as url:
        yield Clinic(url, ids)


@pytest.fixture(scope="module")
def signed_in(browser, clinic):
    """Each role's cookies, signed in once for the module: {username: storage state}."""
    states = {}
    for username in ("nurse", "physician", "admin", "coordinator"):
        ctx = browser.new_context(viewport=TABLET)
        ctx.set_default_timeout(TIMEOUT_MS)
        try:
            page = ctx.new_page()
            page.goto(f"{clinic.url}/login")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("button", name="Sign out", include_hidden=True)).to_be_attached()
            states[username] = ctx.storage_state()
        finally:
            ctx.close()
    return states


# --- what each audited page needs beyond opening its address ------------------------------------

def bad_sign_in(page):
    page.get_by_label("Username").fill("nobody-here")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")


def bad_checklist(page):
    page.get_by_label("Systolic blood pressure (mmHg)").fill("999")
    page.get_by_label("Oxygen saturation, SpO2 (%)").fill("250")
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_label("Systolic blood pressure (mmHg)")).to_have_attribute("aria-invalid", "true")


def checklist_with_findings(page):
    """Saved with a BP at the hard gate and no escort: a stop and an "answer below", each with its code for support."""
    page.get_by_label("Systolic blood pressure (mmHg)").fill("165")
    page.get_by_label("Diastolic blood pressure (mmHg)").fill("100")
    page.get_by_role("button", name="Save").first.click()
    expect(page.locator("[data-code='BP_HARD_GATE']")).to_contain_text("diastolic 100 is at or above 100")
    expect(page.locator("[data-code='ESCORT_MISSING']")).to_contain_text("Answer below")


def bad_note(page):
    """The server's page with the field error. With the page's script on, Save draft autosaves first and,
    that autosave being refused as invalid, never posts the form, so the error never shows next to the
    field (reported; a script change, not a template one). form.submit() posts the form the way a browser
    without the script would, past the script's submit handler."""
    page.get_by_label("Dissociation observed by the clinician (0–10)").fill("11")
    with page.expect_navigation():
        page.locator("#note-form").evaluate("form => form.submit()")
    expect(page.get_by_text("Enter a whole number from 0 to 10.")).to_be_visible()


def pending_for_the_physician(page):
    """The nurse's answers, the override form and the filled discharge form, all at once."""
    expect(page.get_by_role("button", name="Record override: MOAA/S 4 is not back to baseline (5).")).to_be_visible()
    expect(page.get_by_label("Mental status (MOAA/S)")).to_have_value("4")


def booking_refused(page):
    """The patient's series chosen, a start before opening: refused at the time field, the form kept."""
    page.get_by_label("Start time").fill("07:00")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.get_by_label("Start time")).to_have_attribute("aria-invalid", "true")


def move_refused(page):
    page.get_by_role("button", name="Move it to today").click()
    expect(page.get_by_test_id("move-to-today-error")).to_contain_text("Not moved: No chair is free today")


def blank_in_error_reason(page):
    """Marking the alerting reading entered in error without a reason: the error at the reason field."""
    row = page.get_by_test_id("reading").filter(has_text="185/112")
    row.locator("summary", has_text="Mark entered in error").click()
    row.get_by_role("button", name="Mark entered in error").click()
    reason = page.get_by_test_id("reading").filter(has_text="185/112").get_by_label("Why is it wrong?")
    expect(reason).to_have_attribute("aria-invalid", "true")


def bad_dose_order(page):
    """The physician's dose order refused for its dose (esketamine: whole devices under the policy), the
    form open with the field error (refused before the password is checked)."""
    page.get_by_text("Change this session's dose (physician)").click()
    page.get_by_label("New dose (mg)").fill("100")
    page.get_by_label("Reason for the change").fill("Partial response at 56 mg.")
    page.locator("#order-password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Order this dose").click()
    expect(page.get_by_label("New dose (mg)")).to_have_attribute("aria-invalid", "true")


def order_preview(page):
    """The plan of a booster ordered at 23:30, far ahead of the demo's series: moved, with why."""
    page.get_by_label("Protocol", exact=True).select_option(label="IV ketamine booster (v1)")
    page.get_by_label("Start date").fill((system_now() + timedelta(days=200)).date().isoformat())
    page.get_by_label("Preferred start time").fill("23:30")
    page.get_by_role("button", name="Check the plan").click()
    expect(page.get_by_test_id("plan")).to_contain_text("23:30 is after closing time")


def board_refreshed_then_paused(page):
    """The live board after a refresh in place (asked for at once, as on coming back to the tab), then paused."""
    page.locator("#board-live").evaluate("board => board.setAttribute('data-state', 'stale')")
    with page.expect_response(lambda response: "/today/live" in response.url):
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.get_by_test_id("board-update-state")).to_contain_text("Up to date")
    page.get_by_role("button", name="Pause updates").click()
    expect(page.get_by_test_id("board-update-state")).to_contain_text("Updates paused")


def break_glass_refused(page):
    """The break-glass form sent with no reason and no password: the errors at their fields."""
    page.get_by_role("button", name="Break the glass and open the record").click()
    expect(page.get_by_label("Your password")).to_have_attribute("aria-invalid", "true")


def csv_export_refused(page):
    """A CSV range that ends before it starts: refused at the field, the choices kept."""
    page.get_by_label("From (clinic date)").fill("2026-03-31")
    page.get_by_label("To (clinic date, inclusive)").fill("2026-03-01")
    page.get_by_role("button", name="Download CSV").click()
    expect(page.get_by_label("To (clinic date, inclusive)")).to_have_attribute("aria-invalid", "true")


@dataclass(frozen=True)
class Audited:
    """One page as one role sees it (role None: signed out). ``path`` takes the clinic's ids; ``shows`` is
    text the page must show before it is audited (so a page that lost its content fails rather than
    passes empty); ``action`` brings it to the state audited; ``disabled`` maps a rule id to why it is
    off on this page only; ``status`` is the answer expected (a restricted record is 403 with its page)."""

    name: str
    role: str | None
    path: str
    shows: str
    action: object = None
    disabled: dict = field(default_factory=dict)
    viewport: dict = field(default_factory=lambda: TABLET)
    status: int = 200


PAGES = (
    Audited("login", None, "/login", "Staff only."),
    Audited("login-error", None, "/login", "Staff only.", bad_sign_in),
    Audited("nurse-board", "nurse", "/today", "Casey Demo-Nakamura"),
    # The live board: an overdue reading (the recovery one, due 5 minutes after the seed), an open alert.
    Audited("nurse-board-live", "nurse", "/today", "Reading overdue by", board_refreshed_then_paused),
    Audited("nurse-board-live-desktop", "nurse", "/today", "Reading overdue by", board_refreshed_then_paused,
            viewport=DESKTOP),
    Audited("nurse-schedule-week", "nurse", "/schedule", "Previous week"),
    Audited("coordinator-schedule-week", "coordinator", "/schedule", "Previous week"),  # with "Book" links
    Audited("coordinator-schedule-today-desktop", "coordinator", "/schedule", "Previous week", viewport=DESKTOP),
    Audited("coordinator-schedule-next-week", "coordinator", "/schedule?day={next_week}", "Turnover"),
    Audited("coordinator-schedule-closed-day", "coordinator", "/schedule?day={closed_day}", "Closed: Demo holiday"),
    Audited("coordinator-book-search", "coordinator",
            "/schedule/book?q=demo&chair_id=1&day={next_week}&start_time=16:00", "Choose"),
    Audited("coordinator-book-refused", "coordinator", "/schedule/book?patient_id={to_book}&chair_id=1&day={next_week}",
            "That time is outside clinic hours", booking_refused),
    Audited("nurse-patients", "nurse", "/patients/", "Drew Demo-Kowalczyk"),
    Audited("nurse-patient-detail", "nurse", "/patients/{patient}", "Ibuprofen (hives)"),
    # The chart as the hub: sessions with their next step and notes (signed, complete, draft), the trend
    # with today's dose, the checklist's weight.
    Audited("physician-chart", "physician", "/patients/{hub}", "At the checklist, session 4"),
    Audited("physician-chart-desktop", "physician", "/patients/{hub}", "At the checklist, session 4",
            viewport=DESKTOP),
    Audited("nurse-session-detail", "nurse", "/sessions/{infusing}", "Casey Demo-Nakamura"),
    Audited("nurse-checklist", "nurse", "/sessions/{checked_in}/checklist", "Systolic blood pressure (mmHg)"),
    Audited("nurse-checklist-errors", "nurse", "/sessions/{checked_in}/checklist", "Systolic blood pressure (mmHg)",
            bad_checklist),
    Audited("nurse-checklist-findings", "nurse", "/sessions/{checked_in}/checklist", "For support",
            checklist_with_findings),
    # The checklist that cleared the session: its progress, all done, and "Start dose" right there.
    Audited("nurse-checklist-cleared", "nurse", "/sessions/{cleared}/checklist", "Every item is answered."),
    Audited("nurse-infusion", "nurse", "/sessions/{infusing}/infusion", "Acknowledge alert"),
    Audited("nurse-infusion-in-error-reason", "nurse", "/sessions/{infusing}/infusion", "Say why this entry is wrong",
            blank_in_error_reason),
    Audited("physician-start-gate", "physician", "/sessions/{cleared}/infusion", "Start gate"),
    Audited("physician-dose-order-error", "physician", "/sessions/{cleared}/infusion",
            "An esketamine dose must be 28, 56, 84 mg", bad_dose_order),
    Audited("nurse-discharge-gate", "nurse", "/sessions/{recovery}/infusion",
            "Is the escort here to take the patient home?"),
    Audited("physician-pending-discharge", "physician", "/sessions/{pending}/infusion", "Waiting for a physician",
            pending_for_the_physician),
    Audited("nurse-session-other-day", "nurse", "/sessions/{other_day}", "Move it to today first."),
    Audited("nurse-session-move-refused", "nurse", "/sessions/{other_day}", "Move it to today first.", move_refused),
    Audited("nurse-note-draft", "nurse", "/sessions/{draft}/note", "Mark complete"),
    Audited("nurse-note-error", "nurse", "/sessions/{draft}/note", "Mark complete", bad_note),
    Audited("physician-note-signed", "physician", "/sessions/{signed}/note", "Sign and add addendum"),
    Audited("physician-to-sign", "physician", "/signing", "Review and sign"),
    # The infusing session's alert, not acknowledged: listed, and counted in the navigation.
    Audited("physician-chair-alerts", "physician", "/signing", "In-chair alerts not acknowledged ("),
    Audited("physician-chair-alerts-desktop", "physician", "/signing", "In-chair alerts not acknowledged (",
            viewport=DESKTOP),
    # Not the count: the checklist saved with findings (above) may or may not have joined the list yet.
    Audited("physician-waiting", "physician", "/signing", "Waiting for your override ("),
    Audited("admin-staff", "admin", "/admin/staff", "Demo Nurse (fictional)"),
    Audited("admin-clinic", "admin", "/admin/clinic/", "Window chair"),
    Audited("admin-closures", "admin", "/admin/clinic/closures", "Add a closure"),
    Audited("physician-order-preview", "physician", "/patients/{patient}/series/new", "Nothing is booked yet.",
            order_preview),
    Audited("admin-policy", "admin", "/admin/policy/", "Save as a new version"),
    # The chair's steps the fixture adds push the seed's own events off the first page: filtered to them.
    Audited("admin-audit", "admin", "/admin/audit/?username=demo-seed", "demo.seeded"),
    Audited("admin-audit-denied", "admin", "/admin/audit/?outcome=denied", "discharge.refused"),
    # Restricted records (issue 16): the nurse outside the care team, the break-glass form refusing an
    # empty send, the care team page, the disclosures (a break-glass and an export), the admins' review.
    Audited("nurse-restricted-record", "nurse", "/patients/{restricted}", "Break the glass", status=403),
    Audited("nurse-restricted-record-desktop", "nurse", "/patients/{restricted}", "Break the glass",
            viewport=DESKTOP, status=403),
    Audited("nurse-break-glass-refused", "nurse", "/patients/{restricted}", "Break the glass", break_glass_refused,
            status=403),
    Audited("physician-restriction", "physician", "/patients/{restricted}/restriction", "Care team"),
    Audited("physician-disclosures", "physician", "/patients/{restricted}/disclosures", "Covering Nurse"),
    Audited("physician-disclosures-desktop", "physician", "/patients/{restricted}/disclosures", "Covering Nurse",
            viewport=DESKTOP),
    Audited("admin-restricted-records", "admin", "/admin/restricted-records", "Covering Nurse"),
    Audited("admin-restricted-records-desktop", "admin", "/admin/restricted-records", "Covering Nurse",
            viewport=DESKTOP),
    Audited("admin-exports", "admin", "/admin/exports", "CSV for a date range"),
    Audited("admin-exports-desktop", "admin", "/admin/exports", "CSV for a date range", viewport=DESKTOP),
    Audited("admin-exports-refused", "admin", "/admin/exports", "CSV for a date range", csv_export_refused),
    Audited("admin-two-factor-policy", "admin", "/admin/two-factor", "Two-factor"),
    Audited("coordinator-two-factor", "coordinator", "/account/two-factor", "Set up two-factor sign-in"),
)


@pytest.mark.parametrize("audited", PAGES, ids=[audited.name for audited in PAGES])
def test_page_has_no_wcag_21_aa_violations(browser, clinic, signed_in, audited):
    state = signed_in[audited.role] if audited.role else None
    ctx = browser.new_context(viewport=audited.viewport, bypass_csp=True, storage_state=state)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        page = ctx.new_page()
        address = audited.path.format(**clinic.ids)
        response = page.goto(clinic.url + address)
        assert response.status == audited.status, f"{address} answered {response.status}"
        if audited.role:
            expect(page.get_by_role("button", name="Sign out", include_hidden=True)).to_be_attached()
        if audited.action:
            audited.action(page)
        expect(page.locator("main").get_by_text(audited.shows).first).to_be_visible()
        # What a click unfolds (add a medication, record an adverse event...) is audited too.
        page.evaluate("document.querySelectorAll('main details').forEach(d => { d.open = true; })")
        found = violations(page, disabled=audited.disabled)
        if found:
            pytest.fail(report(found, f"{address} as {audited.role or 'signed out'}"), pytrace=False)
    finally:
        ctx.close()


# --- a chair tablet's PIN form and lock screen (issue 14 §6), enrolled for this test -------------------

LOCK_VIEWPORTS = ({"width": 768, "height": 1024}, {"width": 1366, "height": 768})


def _audit(page, where):
    found = violations(page)
    if found:
        pytest.fail(report(found, where), pytrace=False)


def _sign_in(page, url, username):
    page.goto(f"{url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out", include_hidden=True)).to_be_attached()


@pytest.mark.parametrize("size", LOCK_VIEWPORTS, ids=["768x1024", "1366x768"])
def test_tablet_pin_form_and_lock_screen_have_no_wcag_21_aa_violations(browser, clinic, size):
    """The admin's tablet page after enrolling this device; the coordinator's PIN form refusing a short PIN;
    the lock screen, and the lock screen refusing a wrong PIN."""
    ctx = browser.new_context(viewport=size, bypass_csp=True)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        page = ctx.new_page()
        _sign_in(page, clinic.url, "admin")
        page.goto(f"{clinic.url}/admin/tablets/")
        page.get_by_label("Device name").fill(f"Chair tablet {size['width']}")
        page.get_by_role("button", name="Enrol this device as a chair tablet").click()
        expect(page.get_by_test_id("tablets").get_by_text("This device")).to_be_visible()
        _audit(page, "/admin/tablets/")
        page.get_by_role("button", name="Sign out").click()

        _sign_in(page, clinic.url, "coordinator")
        page.goto(f"{clinic.url}/account/pin")
        for pin in ("12", "2468"):
            page.get_by_label("Your password").fill(DEMO_PASSWORD)
            page.get_by_label("New PIN", exact=True).fill(pin)
            page.get_by_label("Repeat the new PIN").fill(pin)
            page.get_by_role("button", name="Set PIN").click()
            if pin == "12":
                expect(page.get_by_label("New PIN", exact=True)).to_have_attribute("aria-invalid", "true")
                _audit(page, "/account/pin refusing a short PIN")
        expect(page.get_by_text("Your PIN is set.")).to_be_visible()

        page.locator("#tablet-lock").evaluate("form => form.submit()")  # what the idle timer does
        expect(page.get_by_role("heading", level=1)).to_have_text("Locked")
        _audit(page, "the lock screen")
        page.get_by_label("PIN", exact=True).fill("0000")
        page.get_by_role("button", name="Unlock").click()
        expect(page.get_by_label("PIN", exact=True)).to_have_attribute("aria-invalid", "true")
        _audit(page, "the lock screen refusing a wrong PIN")
    finally:
        ctx.close()
