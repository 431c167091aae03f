"""Who may reach what: the deny-by-default guard, the role x endpoint matrix, object-level rules."""
import inspect
import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from flask_login import AnonymousUserMixin
from sqlalchemy import select

from opsmgr import permissions
from opsmgr.audit.models import AuditEvent
from opsmgr.auth import service
from opsmgr.auth.models import Role, StaffSession, StaffUser
from opsmgr.core.guard import PUBLIC_ENDPOINTS, TOKEN_ENDPOINTS, WEBHOOK_ENDPOINTS
from opsmgr.extensions import db
from tests.conftest import PASSWORD, FrozenClock, StaffClient, sign_in
from tests.factories import FACTORY_ACTOR, build_world, create_user
from tests.shared_world import world_sources, worlds_by_backend

ROLES = ("anonymous", "nurse", "coordinator", "physician", "admin")
STAFF_ROLES = tuple(role.value for role in Role)
TARGET_NAME = "Zebediah Q. Targetperson"

# fmt: off
#: The expected status of one request per endpoint, for each role. Every endpoint in the
#: url_map must be here: a new endpoint fails test_matrix_covers_every_endpoint until added.
#: 302 for anonymous on a protected endpoint is always the login redirect (checked below).
MATRIX = {
    #                             anonymous nurse coordinator physician admin
    "static":                      (200,    200,  200,        200,      200),
    "core.healthz":                (200,    200,  200,        200,      200),
    "core.home":                   (302,    302,  302,        302,      302),
    "core.ping":                   (302,    200,  200,        200,      200),
    "auth.login":                  (200,    302,  302,        302,      302),
    "auth.logout":                 (302,    302,  302,        302,      302),
    "auth.change_password":        (302,    200,  200,        200,      200),
    "auth.change_pin":             (302,    200,  200,        200,      200),
    # A desktop session has no screen to lock or unlock: both send it back where it was.
    "auth.lock":                   (302,    302,  302,        302,      302),
    "auth.unlock":                 (302,    302,  302,        302,      302),
    "tablets.overview":            (302,    403,  403,        403,      200),
    "tablets.enrol":               (302,    403,  403,        403,      302),
    "tablets.revoke":              (302,    403,  403,        403,      404),
    "admin.staff_list":            (302,    403,  403,        403,      200),
    "admin.staff_create":          (302,    403,  403,        403,      200),
    "admin.staff_detail":          (302,    403,  403,        403,      200),
    "admin.staff_role":            (302,    403,  403,        403,      302),
    "admin.staff_reset_password":  (302,    403,  403,        403,      302),
    "admin.staff_deactivate":      (302,    403,  403,        403,      302),
    "admin.staff_reactivate":      (302,    403,  403,        403,      302),
    "admin.staff_end_sessions":    (302,    403,  403,        403,      302),
    # The second step of a sign-in: without a password just given it goes back to /login.
    "two_factor.sign_in_code":     (302,    302,  302,        302,      302),
    "two_factor.account":          (302,    200,  200,        200,      200),
    "two_factor.start":            (302,    302,  302,        302,      302),
    "two_factor.confirm":          (302,    400,  400,        400,      400),
    "two_factor.turn_off":         (302,    400,  400,        400,      400),
    "two_factor.renew_codes":      (302,    400,  400,        400,      400),
    "two_factor.policy":           (302,    403,  403,        403,      200),
    "two_factor.reset":            (302,    403,  403,        403,      302),
    "audit.event_list":            (302,    403,  403,        403,      200),
    "audit.export_csv":            (302,    403,  403,        403,      200),
    "patients.list":               (302,    200,  200,        200,      403),
    "patients.create":             (302,    200,  200,        200,      403),
    "patients.detail":             (302,    200,  200,        200,      403),
    "patients.edit":               (302,    200,  200,        200,      403),
    "patients.add_weight":         (302,    302,  403,        302,      403),
    "patients.add_medication":     (302,    302,  403,        302,      403),
    "patients.stop_medication":    (302,    302,  403,        302,      403),
    "patients.add_contraindication": (302,  302,  403,        302,      403),
    "patients.record_consent":     (302,    302,  403,        302,      403),
    # The world's medication was added by no staff member: only a physician may mark it (400: no reason).
    "patients.entry_in_error":     (302,    403,  403,        400,      403),
    "series.order":                (302,    403,  403,        200,      403),
    "series.detail":               (302,    200,  200,        200,      403),
    "series.stop":                 (302,    403,  403,        302,      403),
    "worklists.board":             (302,    200,  200,        200,      403),
    "worklists.board_live":        (302,    200,  200,        200,      403),
    "worklists.week":              (302,    200,  200,        200,      403),
    "worklists.physician_home":    (302,    403,  403,        200,      403),
    "schedule.book":               (302,    403,  200,        200,      403),
    "schedule.session_detail":     (302,    200,  200,        200,      403),
    "schedule.move":               (302,    403,  302,        302,      403),
    "schedule.change_status":      (302,    302,  403,        302,      403),
    "schedule.move_to_today":      (302,    302,  403,        302,      403),
    "schedule.record_past":        (302,    403,  403,        200,      403),
    "clinic.overview":             (302,    403,  403,        403,      200),
    "clinic.chair_create":         (302,    403,  403,        403,      302),
    "clinic.chair_update":         (302,    403,  403,        403,      302),
    "clinic.hours":                (302,    403,  403,        403,      200),
    "clinic.closures_page":        (302,    403,  403,        403,      200),
    "clinic.closure_remove":       (302,    403,  403,        403,      404),
    "clinic.settings":             (302,    403,  403,        403,      302),
    "clinic.protocol_detail":      (302,    403,  403,        403,      200),
    "clinic.protocol_edit":        (302,    403,  403,        403,      200),
    "feeds.manage":                (302,    200,  200,        200,      403),
    "feeds.issue":                 (302,    200,  200,        200,      403),
    "feeds.revoke":                (302,    302,  302,        302,      403),
    "feeds.clinic_feed":           (404,    404,  404,        404,      404),
    "policy.edit":                 (302,    403,  403,        403,      200),
    "message_templates.edit":      (302,    403,  403,        403,      200),
    "checklist.form":              (302,    200,  403,        200,      403),
    "checklist.override":          (302,    403,  403,        400,      403),
    "infusion.page":               (302,    200,  403,        200,      403),
    "infusion.start":              (302,    400,  403,        400,      403),
    "infusion.override":           (302,    403,  403,        400,      403),
    "infusion.order_dose":         (302,    403,  403,        400,      403),
    "infusion.controlled_substance": (302,  400,  403,        400,      403),
    "infusion.vitals":             (302,    400,  403,        400,      403),
    "infusion.acknowledge":        (302,    404,  403,        404,      403),
    "infusion.vitals_in_error":    (302,    404,  403,        404,      403),
    "infusion.end":                (302,    400,  403,        400,      403),
    "infusion.discharge":          (302,    400,  403,        400,      403),
    "infusion.resume":             (302,    400,  403,        400,      403),
    "tasks.resolve":               (302,    403,  403,        404,      403),
    "notes.page":                  (302,    200,  403,        200,      403),
    "notes.autosave":              (302,    200,  403,        200,      403),
    "notes.start_from_last":       (302,    302,  403,        302,      403),
    "notes.add_adverse_event":     (302,    400,  403,        400,      403),
    "notes.remove_adverse_event":  (302,    404,  403,        404,      403),
    "notes.complete":              (302,    409,  403,        409,      403),
    "notes.sign":                  (302,    403,  403,        400,      403),
    "notes.add_addendum":          (302,    400,  403,        400,      403),
    # A missing session (a PDF body is not text; tests/test_reports.py covers previews, 403s and downloads).
    "reports.session_pdf":         (302,    404,  404,        404,      403),
    "outcomes.page":               (302,    403,  403,        200,      200),
    # Exports (tests/test_exports.py): FHIR for physicians; CSV for admins; disclosures for both.
    "exports.patient_fhir":        (302,    403,  403,        200,      403),
    "exports.disclosures":         (302,    403,  403,        200,      200),
    "exports.admin_page":          (302,    403,  403,        403,      200),
    # No dates or MRN given: the admin gets the form back with the messages (a physician has no such form).
    "exports.csv_download":        (302,    403,  403,        403,      400),
    "exports.disclosure_lookup":   (302,    403,  403,        400,      400),
    # Restricted records (tests/test_restricted_records.py): the world's patient is not restricted, so the
    # break-glass form sends a nurse or physician straight to the chart.
    "restricted.break_glass":      (302,    302,  403,        302,      403),
    "restricted.manage":           (302,    403,  403,        200,      200),
    "restricted.admin_page":       (302,    403,  403,        403,      200),
    "restricted.review":           (302,    403,  403,        403,      404),
    "reports.verify":              (302,    200,  200,        200,      403),
    # Missing document and series: the series tests (tests/test_series_summary.py) cover the rest.
    "reports.document_pdf":        (302,    404,  404,        404,      403),
    "reports.series_preview":      (302,    404,  403,        404,      403),
    "reports.series_sign":         (302,    403,  403,        404,      403),
    "reports.verify_upload":       (302,    400,  400,        400,      403),
    "feeds.chair_feed":            (404,    404,  404,        404,      404),
    "messaging.confirm_session":   (302,    302,  302,        302,      403),
    "followups.worklist_page":     (302,    200,  200,        200,      403),
    "followups.item_page":         (302,    404,  404,        404,      403),
    "followups.done":              (302,    404,  404,        404,      403),
    "followups.not_reached":       (302,    404,  404,        404,      403),
    "followups.escalate":          (302,    404,  404,        404,      403),
    # Twilio's webhooks: no login, but nothing without its signature (none here), whoever sends it.
    "messaging.sms_inbound":       (403,    403,  403,        403,      403),
    "messaging.sms_status":        (403,    403,  403,        403,      403),
}

#: How each endpoint is exercised: method, URL ({target} is another staff member's id), form data.
#: POSTs go through client.submit (valid CSRF token) with data that an admin would get accepted.
REQUESTS = {
    "static":                      ("GET",  "/static/css/app.css", None),
    "core.healthz":                ("GET",  "/healthz", None),
    "core.home":                   ("GET",  "/", None),
    "core.ping":                   ("GET",  "/session/ping", None),
    "auth.login":                  ("GET",  "/login", None),
    "auth.logout":                 ("POST", "/logout", {}),
    "auth.change_password":        ("GET",  "/account/password", None),
    "auth.change_pin":             ("GET",  "/account/pin", None),
    "auth.lock":                   ("POST", "/lock", {"next": "/"}),
    "auth.unlock":                 ("POST", "/unlock", {"pin": "2580", "next": "/"}),
    "tablets.overview":            ("GET",  "/admin/tablets/", None),
    "tablets.enrol":               ("POST", "/admin/tablets/enrol", {"name": "Chair 9 tablet"}),
    "tablets.revoke":              ("POST", "/admin/tablets/999999/revoke", {}),
    "admin.staff_list":            ("GET",  "/admin/staff", None),
    "admin.staff_create":          ("GET",  "/admin/staff/new", None),
    "admin.staff_detail":          ("GET",  "/admin/staff/{target}", None),
    "admin.staff_role":            ("POST", "/admin/staff/{target}/role", {"role": "physician"}),
    "admin.staff_reset_password":  ("POST", "/admin/staff/{target}/password",
                                    {"password": "temporary passphrase 42", "confirm": "temporary passphrase 42"}),
    "admin.staff_deactivate":      ("POST", "/admin/staff/{target}/deactivate", {}),
    "admin.staff_reactivate":      ("POST", "/admin/staff/{target}/reactivate", {}),
    "admin.staff_end_sessions":    ("POST", "/admin/staff/{target}/end-sessions", {}),
    "two_factor.sign_in_code":     ("GET",  "/login/code", None),
    "two_factor.account":          ("GET",  "/account/two-factor", None),
    "two_factor.start":            ("POST", "/account/two-factor/start", {}),
    "two_factor.confirm":          ("POST", "/account/two-factor/confirm", {"code": "000000"}),
    "two_factor.turn_off":         ("POST", "/account/two-factor/off", {"password": PASSWORD, "code": "AAAAA-AAAAA"}),
    "two_factor.renew_codes":      ("POST", "/account/two-factor/recovery-codes",
                                    {"renew-password": PASSWORD, "renew-code": "000000"}),
    "two_factor.policy":           ("GET",  "/admin/two-factor", None),
    "two_factor.reset":            ("POST", "/admin/staff/{target}/two-factor/reset", {}),
    "audit.event_list":            ("GET",  "/admin/audit/", None),
    "audit.export_csv":            ("GET",  "/admin/audit/export.csv", None),
    "patients.list":               ("GET",  "/patients/", None),
    "patients.create":             ("GET",  "/patients/new", None),
    "patients.detail":             ("GET",  "/patients/{patient}", None),
    "patients.edit":               ("GET",  "/patients/{patient}/edit", None),
    "patients.add_weight":         ("POST", "/patients/{patient}/weights", {"kg": "72.5", "measured_on": "2026-11-20"}),
    "patients.add_medication":     ("POST", "/patients/{patient}/medications",
                                    {"name": "Sertraline", "med_class": "ssri_snri", "started_on": "2026-01-05"}),
    "patients.stop_medication":    ("POST", "/patients/{patient}/medications/{medication}/stop",
                                    {"med{medication}-stopped_on": "2026-11-20"}),
    "patients.add_contraindication": ("POST", "/patients/{patient}/contraindications",
                                      {"kind": "cardiac_disease", "detail": "Stent 2019", "noted_on": "2026-11-01"}),
    "patients.record_consent":     ("POST", "/patients/{patient}/consent",
                                    {"consent_on": "2026-11-20", "form_version": "v3"}),
    "patients.entry_in_error":     ("POST", "/patients/{patient}/medications/{medication}/entered-in-error", {}),
    "series.order":                ("GET",  "/patients/{patient}/series/new", None),
    "series.detail":               ("GET",  "/series/{series}", None),
    "series.stop":                 ("POST", "/series/{series}/stop", {"reason": "Patient request"}),
    "worklists.board":             ("GET",  "/today", None),
    "worklists.board_live":        ("GET",  "/today/live", None),
    "worklists.week":              ("GET",  "/schedule", None),
    "worklists.physician_home":    ("GET",  "/signing", None),
    "schedule.book":               ("GET",  "/schedule/book", None),
    "schedule.session_detail":     ("GET",  "/sessions/{session}", None),
    "schedule.move":               ("POST", "/sessions/{session}/move",
                                    {"chair_id": "{chair}", "day": "2026-11-30", "start_time": "13:00"}),
    "schedule.change_status":      ("POST", "/sessions/{session}/status", {"target": "checked_in"}),
    "schedule.move_to_today":      ("POST", "/sessions/{session}/move-to-today", {}),
    "schedule.record_past":        ("GET",  "/schedule/record-past", None),
    "clinic.overview":             ("GET",  "/admin/clinic/", None),
    "clinic.chair_create":         ("POST", "/admin/clinic/chairs", {"name": "Garden chair", "position": "9"}),
    "clinic.chair_update":         ("POST", "/admin/clinic/chairs/{chair}",
                                    {"name": "Renamed chair", "position": "1", "is_active": "y"}),
    "clinic.hours":                ("GET",  "/admin/clinic/hours", None),
    "clinic.closures_page":        ("GET",  "/admin/clinic/closures", None),
    "clinic.closure_remove":       ("POST", "/admin/clinic/closures/1/remove", {}),
    "clinic.settings":             ("POST", "/admin/clinic/settings", {"turnover_minutes": "10"}),
    "clinic.protocol_detail":      ("GET",  "/admin/clinic/protocols/{protocol}", None),
    "clinic.protocol_edit":        ("GET",  "/admin/clinic/protocols/{protocol}/edit", None),
    "feeds.manage":                ("GET",  "/account/calendar", None),
    "feeds.issue":                 ("POST", "/account/calendar/token", {}),
    "feeds.revoke":                ("POST", "/account/calendar/revoke", {}),
    "feeds.clinic_feed":           ("GET",  "/calendar/clinic.ics?token=not-a-token", None),
    "policy.edit":                 ("GET",  "/admin/policy/", None),
    "message_templates.edit":      ("GET",  "/admin/messages", None),
    "checklist.form":              ("GET",  "/sessions/{session}/checklist", None),
    "checklist.override":          ("POST", "/sessions/{session}/checklist/override",
                                    {"code": "BP_SOFT_GATE", "password": PASSWORD, "reason": "Reviewed; proceed"}),
    "infusion.page":               ("GET",  "/sessions/{session}/infusion", None),
    "infusion.start":              ("POST", "/sessions/{session}/infusion/start", {"start-infusion_minutes": "40"}),
    "infusion.override":           ("POST", "/sessions/{session}/infusion/overrides/start/BP_SOFT_GATE",
                                    {"override-start-BP_SOFT_GATE-password": PASSWORD,
                                     "override-start-BP_SOFT_GATE-reason": "Reviewed; proceed"}),
    "infusion.order_dose":         ("POST", "/sessions/{session}/infusion/dose-order", {}),
    "infusion.controlled_substance": ("POST", "/sessions/{session}/infusion/controlled-substance", {}),
    "infusion.vitals":             ("POST", "/sessions/{session}/infusion/vitals", {}),
    "infusion.acknowledge":        ("POST", "/sessions/{session}/infusion/alerts/1/acknowledge", {}),
    "infusion.vitals_in_error":    ("POST", "/sessions/{session}/infusion/vitals/1/entered-in-error", {}),
    "infusion.end":                ("POST", "/sessions/{session}/infusion/end", {}),
    "infusion.discharge":          ("POST", "/sessions/{session}/infusion/discharge", {}),
    "infusion.resume":             ("POST", "/sessions/{session}/infusion/resume", {}),
    "tasks.resolve":               ("POST", "/tasks/1/resolve", {"task1-note": "Saw the patient; safe to proceed."}),
    "notes.page":                  ("GET",  "/sessions/{session}/note", None),
    "notes.autosave":              ("POST", "/sessions/{session}/note/autosave", {"version": "0", "mindset": "Calm"}),
    "notes.start_from_last":       ("POST", "/sessions/{session}/note/start-from-last", {"version": "0"}),
    "notes.add_adverse_event":     ("POST", "/sessions/{session}/note/adverse-events", {}),
    "notes.remove_adverse_event":  ("POST", "/sessions/{session}/note/adverse-events/1/remove", {}),
    "notes.complete":              ("POST", "/sessions/{session}/note/complete", {"version": "0"}),
    "notes.sign":                  ("POST", "/sessions/{session}/note/sign", {}),
    "notes.add_addendum":          ("POST", "/sessions/{session}/note/addenda", {}),
    "reports.session_pdf":         ("GET",  "/sessions/999999/summary.pdf", None),
    "outcomes.page":               ("GET",  "/reports/outcomes", None),
    "exports.patient_fhir":        ("GET",  "/patients/{patient}/fhir.json", None),
    "exports.disclosures":         ("GET",  "/patients/{patient}/disclosures", None),
    "exports.admin_page":          ("GET",  "/admin/exports", None),
    "exports.csv_download":        ("GET",  "/admin/exports/export.csv", None),
    "exports.disclosure_lookup":   ("GET",  "/admin/exports/disclosures", None),
    "restricted.break_glass":      ("POST", "/patients/{patient}/break-glass", {}),
    "restricted.manage":           ("GET",  "/patients/{patient}/restriction", None),
    "restricted.admin_page":       ("GET",  "/admin/restricted-records", None),
    "restricted.review":           ("POST", "/admin/break-glass/999999/review", {}),
    "reports.verify":              ("GET",  "/reports/verify", None),
    "reports.document_pdf":        ("GET",  "/reports/documents/NOSUCHDOCUMENT.pdf", None),
    "reports.series_preview":      ("POST", "/series/999999/summary/preview", {}),
    "reports.series_sign":         ("POST", "/series/999999/summary/sign", {}),
    "reports.verify_upload":       ("POST", "/reports/verify/upload", {}),
    "feeds.chair_feed":            ("GET",  "/calendar/chairs/{chair}.ics?token=not-a-token", None),
    "messaging.confirm_session":   ("POST", "/sessions/{session}/confirmation", {"via": "phone"}),
    "followups.worklist_page":     ("GET",  "/worklist/", None),
    "followups.item_page":         ("GET",  "/worklist/1", None),
    "followups.done":              ("POST", "/worklist/1/done", {"version": "1", "outcome": "Reached."}),
    "followups.not_reached":       ("POST", "/worklist/1/not-reached", {"version": "1"}),
    "followups.escalate":          ("POST", "/worklist/1/escalate", {"version": "1", "note": "Please call."}),
    "messaging.sms_inbound":       ("POST", "/sms/inbound", {"From": "+15035550142", "Body": "STOP"}),
    "messaging.sms_status":        ("POST", "/sms/status", {"MessageSid": "SM1", "MessageStatus": "delivered"}),
}
# fmt: on

#: Endpoints whose target starts deactivated, so the allowed request has something to do.
TARGET_STARTS_DEACTIVATED = {"admin.staff_reactivate"}
#: Endpoints requested on the day the world's session is booked for (a check-in is refused on any other).
ON_THE_SESSION_DAY = {"schedule.change_status": datetime(2026, 11, 30, 15, 0, tzinfo=UTC)}


def endpoint_methods(app):
    methods = {}
    for rule in app.url_map.iter_rules():
        methods.setdefault(rule.endpoint, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return methods


def denied_events(app):
    with app.app_context():
        return db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "access.denied").order_by(AuditEvent.id)
        ).all()


def staff_row(app, user_id):
    with app.app_context():
        row = db.session.execute(select(StaffUser.__table__).where(StaffUser.id == user_id)).one()
        sessions = db.session.execute(
            select(StaffSession.id, StaffSession.ended_at, StaffSession.end_reason)
            .where(StaffSession.user_id == user_id).order_by(StaffSession.id)
        ).all()
        return tuple(row), [tuple(s) for s in sessions]


# --- 1. the guard covers every route -------------------------------------------------------------


def test_public_endpoints_are_exactly_login_its_code_step_static_and_healthz():
    assert {"auth.login", "two_factor.sign_in_code", "static", "core.healthz"} == PUBLIC_ENDPOINTS


def test_token_endpoints_are_exactly_the_calendar_feeds():
    assert {"feeds.clinic_feed", "feeds.chair_feed"} == TOKEN_ENDPOINTS


def test_webhook_endpoints_are_exactly_twilios_post_only_callbacks(app):
    """The one exception to "signed in": Twilio's webhooks, which the guard lets through only signed."""
    assert {"messaging.sms_inbound", "messaging.sms_status"} == WEBHOOK_ENDPOINTS
    assert endpoint_methods(app)["messaging.sms_inbound"] == endpoint_methods(app)["messaging.sms_status"] == {"POST"}
    assert not any(hasattr(app.view_functions[endpoint], "permission") for endpoint in WEBHOOK_ENDPOINTS)


def test_every_endpoint_is_public_or_names_a_permission(app):
    unguarded = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS | TOKEN_ENDPOINTS | WEBHOOK_ENDPOINTS:
            continue
        view = app.view_functions[rule.endpoint]
        if not callable(getattr(view, "permission", None)):
            unguarded.append(f"{rule.endpoint} ({rule.rule})")
    assert not unguarded, f"endpoints without @requires(...) and not public: {unguarded}"


def test_an_unmarked_endpoint_is_refused_even_to_admins(make_app, make_user):
    app = make_app()
    app.add_url_rule("/unmarked", "unmarked", lambda: "secret page content")
    admin = make_user("admin")
    client = app.test_client()
    client.login(admin.username, PASSWORD)
    response = client.get("/unmarked")
    assert response.status_code == 403
    assert b"secret page content" not in response.data


# --- 2. the role x endpoint matrix ---------------------------------------------------------------


def test_matrix_covers_every_endpoint(app):
    methods = endpoint_methods(app)
    assert set(MATRIX) == set(methods), (
        f"missing from MATRIX: {sorted(set(methods) - set(MATRIX))}; "
        f"no longer in url_map: {sorted(set(MATRIX) - set(methods))}"
    )
    assert set(REQUESTS) == set(MATRIX)
    for endpoint, (method, _url, _data) in REQUESTS.items():
        assert method in methods[endpoint], f"{endpoint} does not accept {method}"
        if "GET" in methods[endpoint]:
            assert method == "GET", f"{endpoint} accepts GET: the matrix uses a plain GET"


@pytest.fixture
def world(app, clock):
    return build_world(app, clock, patient_name=TARGET_NAME)


def fill(template, ids):
    return template.format(**ids) if isinstance(template, str) else template


def test_post_only_endpoints_refuse_get(login_as, app, world):
    admin = login_as("admin")
    for endpoint, methods in endpoint_methods(app).items():
        if methods == {"POST"}:
            url = fill(REQUESTS[endpoint][1], {**world, "target": admin.user.id})
            assert admin.get(url).status_code == 405, endpoint


def build_matrix_world(app):
    """What every row of the matrix points at: the world, a target account, one account per role."""
    clock = app.config["CLOCK"]
    ids = build_world(app, clock, patient_name=TARGET_NAME)
    with app.app_context():
        target = create_user(role="nurse", username="zeb-target", password=PASSWORD, now=clock(),
                             full_name=TARGET_NAME)
        staff = {role: create_user(role=role, username=None, password=PASSWORD, now=clock()) for role in STAFF_ROLES}
    return {"ids": ids, "target": target, "staff": staff}


@pytest.fixture(scope="module")
def matrix_worlds(tmp_path_factory):
    """Per backend, built on first use in this worker: the matrix world and the one app serving it."""
    yield from worlds_by_backend(tmp_path_factory, "matrix", build_matrix_world, StaffClient, FrozenClock)


@pytest.fixture
def matrix(backend, matrix_worlds, clock, request):
    """A fresh copy of the matrix world for one row, served by the backend's one app on this row's clock."""
    sources = world_sources(backend, request)
    with matrix_worlds(backend, *sources).fresh_copy(clock) as world:
        yield world


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_role_endpoint_matrix(matrix, clock, endpoint, role):
    app, world, target = matrix.app, matrix.data["ids"], matrix.data["target"]
    expected = dict(zip(ROLES, MATRIX[endpoint], strict=True))[role]
    method, url, data = REQUESTS[endpoint]
    clock.now = ON_THE_SESSION_DAY.get(endpoint, clock.now)
    if method == "POST":
        sign_in(app.test_client(), target.username, PASSWORD)  # a live session, so ending sessions is visible
    if endpoint in TARGET_STARTS_DEACTIVATED:
        with app.app_context():
            service.deactivate(db.session.get(StaffUser, target.id), actor=FACTORY_ACTOR, now=clock())
            db.session.commit()
    client = app.test_client()
    if role != "anonymous":
        client.user = matrix.data["staff"][role]
        sign_in(client, client.user.username, PASSWORD)
    ids = {**world, "target": target.id}
    url = fill(url, ids)
    data = {fill(key, ids): fill(value, ids) for key, value in data.items()} if data else data
    target_before = staff_row(app, target.id)
    denied_before = len(denied_events(app))

    response = client.submit(url, data) if method == "POST" else client.get(url)

    body = response.get_data(as_text=True)
    response.close()  # static files hold an open file until closed
    assert response.status_code == expected, f"{role} {method} {url}"
    new_denials = denied_events(app)[denied_before:]
    if role == "anonymous" and endpoint not in PUBLIC_ENDPOINTS | TOKEN_ENDPOINTS | WEBHOOK_ENDPOINTS:
        assert urlsplit(response.headers["Location"]).path == "/login"
        assert TARGET_NAME not in body
        assert "Staff accounts" not in body and "Audit trail" not in body and "Lamotrigine" not in body
    if expected == 403:
        assert TARGET_NAME not in body and target.username not in body and "Lamotrigine" not in body
        assert "Not allowed" in body
        assert len(new_denials) == 1, [e.action for e in new_denials]
        event = new_denials[0]
        who = (None, None) if role == "anonymous" else (client.user.username, role)
        assert (event.action, event.outcome, event.username, event.role) == ("access.denied", "denied", *who)
        assert json.loads(event.details) == {"endpoint": endpoint, "method": method}
    else:
        assert new_denials == []
    if endpoint.startswith("admin.") and method == "POST":
        changed = staff_row(app, target.id) != target_before
        refused = role != "admin"
        assert changed is not refused, "refused requests change nothing; an admin's accepted one does"


# --- 3. object-level rules ------------------------------------------------------------------------

SELF_ACTIONS = {
    "admin.staff_role": {"role": "nurse"},
    "admin.staff_reset_password": {"password": "temporary passphrase 42", "confirm": "temporary passphrase 42"},
    "admin.staff_deactivate": {},
    "admin.staff_reactivate": {},
    "admin.staff_end_sessions": {},
    "two_factor.reset": {},
}


@pytest.mark.parametrize("endpoint", list(SELF_ACTIONS))
def test_an_admin_cannot_change_their_own_account(app, login_as, endpoint):
    admin = login_as("admin")
    before = staff_row(app, admin.user.id)
    url = REQUESTS[endpoint][1].format(target=admin.user.id)
    response = admin.submit(url, SELF_ACTIONS[endpoint])
    assert response.status_code == 403
    assert staff_row(app, admin.user.id) == before
    events = denied_events(app)
    assert [(e.username, json.loads(e.details)["endpoint"]) for e in events] == [(admin.user.username, endpoint)]
    assert admin.get("/admin/staff").status_code == 200, "still signed in as an admin"


def test_an_admin_sees_their_own_detail_page_without_the_change_forms(login_as):
    admin = login_as("admin")
    html = admin.get(f"/admin/staff/{admin.user.id}").get_data(as_text=True)
    assert "This is your own account" in html
    assert f"/admin/staff/{admin.user.id}/deactivate" not in html


def test_another_admin_can_demote_and_deactivate_an_admin(app, login_as):
    first = login_as("admin")
    second = login_as("admin")
    assert second.submit(f"/admin/staff/{first.user.id}/role", {"role": "nurse"}).status_code == 302
    assert second.submit(f"/admin/staff/{first.user.id}/deactivate").status_code == 302
    with app.app_context():
        user = db.session.get(StaffUser, first.user.id)
        assert (user.role, user.is_active_account) == ("nurse", False)
    assert first.get("/admin/staff").status_code == 302


def test_a_missing_target_is_404_for_an_admin_and_403_for_others(login_as):
    assert login_as("admin").get("/admin/staff/999999").status_code == 404
    assert login_as("nurse").get("/admin/staff/999999").status_code == 403


# --- 4. the predicates themselves -----------------------------------------------------------------

#: Which roles each predicate in opsmgr.permissions.ALL lets through.
PREDICATE_ROLES = {
    "is_staff": {"nurse", "coordinator", "physician", "admin"},
    "can_change_own_password": {"nurse", "coordinator", "physician", "admin"},
    "can_view_physician_home": {"physician"},
    "can_manage_staff": {"admin"},
    "can_change_staff": {"admin"},  # on another person's account
    "can_view_audit": {"admin"},
    "can_export_audit": {"admin"},
    "can_view_patients": {"nurse", "coordinator", "physician"},
    "can_register_patient": {"nurse", "coordinator", "physician"},
    "can_edit_demographics": {"nurse", "coordinator", "physician"},
    "can_view_clinical_background": {"nurse", "physician"},
    "can_edit_clinical_background": {"nurse", "physician"},
    "can_mark_entered_in_error": {"physician"},  # on an entry someone else recorded
    "can_order_series": {"physician"},
    "can_stop_series": {"physician"},
    "can_view_schedule": {"nurse", "coordinator", "physician"},
    "can_book_sessions": {"coordinator", "physician"},
    "can_move_session": {"coordinator", "physician"},
    "can_override_same_day": {"physician"},
    "can_record_past_session": {"physician"},
    "can_cancel_session": {"nurse", "coordinator", "physician"},
    "can_mark_no_show": {"nurse", "coordinator", "physician"},
    "can_record_confirmation": {"nurse", "coordinator", "physician"},
    "can_advance_session": {"nurse", "physician"},
    "can_override_finding": {"physician"},
    "can_order_dose": {"physician"},
    "can_resolve_physician_task": {"physician"},
    "can_see_note_status": {"nurse", "coordinator", "physician"},
    "can_view_note": {"nurse", "physician"},
    "can_write_note": {"nurse", "physician"},
    "can_sign_note": {"physician"},
    "can_add_addendum": {"nurse", "physician"},
    "can_view_unsigned_notes": {"physician"},
    "can_download_reports": {"nurse", "coordinator", "physician"},
    "can_preview_reports": {"nurse", "physician"},
    "can_view_outcomes": {"physician", "admin"},
    "can_export_patient": {"physician"},
    "can_restrict_patients": {"physician", "admin"},
    "can_break_glass": {"nurse", "physician"},
    "can_review_break_glass": {"admin"},
    "can_export_csv": {"admin"},
    "can_view_disclosures": {"physician", "admin"},
    "can_verify_reports": {"nurse", "coordinator", "physician"},
    "can_manage_clinic": {"admin"},
    "can_edit_message_templates": {"admin"},
    "can_work_followups": {"nurse", "coordinator", "physician"},
    "can_use_calendar_feed": {"nurse", "coordinator", "physician"},
}


def staff(user_id, role, active=True):
    """A detached StaffUser: the predicates must need nothing but its attributes."""
    return StaffUser(id=user_id, role=role, is_active_account=active)


def call(predicate, user, target):
    extra = len(inspect.signature(predicate).parameters) - 1
    return predicate(user, *([target] * extra))


def test_the_predicate_table_covers_every_predicate():
    assert set(PREDICATE_ROLES) == set(permissions.ALL)


@pytest.mark.parametrize("name", sorted(PREDICATE_ROLES))
@pytest.mark.parametrize("role", STAFF_ROLES)
def test_predicates_are_plain_functions_of_the_user(name, role):
    assert call(permissions.ALL[name], staff(1, role), staff(2, "nurse")) is (role in PREDICATE_ROLES[name])


@pytest.mark.parametrize("name", sorted(PREDICATE_ROLES))
@pytest.mark.parametrize("role", STAFF_ROLES)
def test_a_deactivated_account_gets_false_from_every_predicate(name, role):
    assert call(permissions.ALL[name], staff(1, role, active=False), staff(2, "nurse")) is False


@pytest.mark.parametrize("name", sorted(PREDICATE_ROLES))
def test_anonymous_users_get_false_from_every_predicate(name):
    assert call(permissions.ALL[name], AnonymousUserMixin(), staff(2, "nurse")) is False


def test_nobody_may_change_their_own_account():
    admin = staff(7, "admin")
    assert permissions.can_change_staff(admin, admin) is False
    assert permissions.can_change_staff(admin, staff(8, "admin")) is True
