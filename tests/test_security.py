"""CSRF, safe GETs, security headers, the health check, error pages, no inline script, hostile input."""
import json
import logging
import re
from html.parser import HTMLParser

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from opsmgr.audit.models import AuditEvent
from opsmgr.auth import service
from opsmgr.auth.models import StaffSession, StaffUser
from opsmgr.core.guard import WEBHOOK_ENDPOINTS
from opsmgr.extensions import db
from opsmgr.permissions import is_staff
from tests.conftest import PASSWORD
from tests.factories import FACTORY_ACTOR, build_world

ROLES = ("anonymous", "nurse", "coordinator", "physician", "admin")
#: Sample values for URL parameters; a new parameter name fails url_for_rule until added here.
URL_ARGUMENTS = {"user_id": None, "filename": "css/app.css", "patient_id": None, "medication_id": None,
                 "series_id": None, "session_id": None, "chair_id": None, "protocol_id": None,
                 "gate": "start", "code": "BP_SOFT_GATE", "alert_id": 1,
                 "task_id": 1, "event_id": 1, "closure_id": 1,
                 "kind": "weights", "entry_id": 1, "vital_sign_id": 1, "item_id": 1,
                 "document_id": "NOSUCHDOCUMENT", "tablet_id": 1, "break_glass_id": 1}
#: Tables a request may legitimately write to: reads are audited, sessions record last-seen.
MAY_CHANGE_ON_GET = {"audit_event", "audit_head", "staff_session"}
CANARY = "CANARY-PHI-123"


def rules(app, method):
    return [rule for rule in app.url_map.iter_rules() if method in rule.methods]


@pytest.fixture
def world(app, clock):
    """Real objects for every URL parameter, so pages render their content rather than a 404."""
    ids = build_world(app, clock)
    return {"patient_id": ids["patient"], "medication_id": ids["medication"], "series_id": ids["series"],
            "session_id": ids["session"], "chair_id": ids["chair"], "protocol_id": ids["protocol"]}


def url_for_rule(app, rule, target_id, ids=None):
    values = {name: (ids or {}).get(name, URL_ARGUMENTS[name]) for name in rule.arguments}
    if "user_id" in values:
        values["user_id"] = target_id
    return app.url_map.bind("localhost").build(rule.endpoint, values, method=sorted(rule.methods)[0])


def fetch(client, url, **kwargs):
    """GET and read the whole body, then close (static files hold an open file until closed)."""
    response = client.get(url, **kwargs)
    response.get_data()
    response.close()
    return response


def snapshot(app, skip=()):
    """Every row of every table except those in skip; session last-seen times left out."""
    state = {}
    with app.app_context():
        for table in db.metadata.sorted_tables:
            if table.name in skip:
                continue
            columns = [c for c in table.c if c.name != "last_seen_at"]
            state[table.name] = [tuple(r) for r in db.session.execute(
                select(*columns).order_by(*table.primary_key.columns)).all()]
    return state


def events(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                  .order_by(AuditEvent.id)).all()


def deactivated_user(app, make_user, clock):
    user = make_user("nurse")
    with app.app_context():
        service.deactivate(db.session.get(StaffUser, user.id), actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
    return user


# --- 1. CSRF ---------------------------------------------------------------------------------------


def post_data(endpoint, admin):
    """Form data each POST endpoint would accept from this admin if the CSRF token were right."""
    new_password = "a brand new passphrase"
    return {
        "auth.login": {"username": admin.user.username, "password": PASSWORD},
        "auth.change_password": {"current_password": PASSWORD, "password": new_password, "confirm": new_password},
        "admin.staff_create": {"username": "newcomer", "full_name": "New Comer", "role": "nurse",
                               "password": new_password, "confirm": new_password},
        "admin.staff_role": {"role": "physician"},
        "admin.staff_reset_password": {"password": new_password, "confirm": new_password},
    }.get(endpoint, {})


def garbage_token(client):
    return "not-a-token"


def token_signed_with_another_key(client):
    with client.session_transaction() as sess:
        raw = sess.setdefault("csrf_token", "0" * 40)
    return URLSafeTimedSerializer("some other secret key", salt="wtf-csrf-token").dumps(raw)


def token_from_another_session(client):
    return client.application.test_client().csrf_token()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the HTTP layer, not the database
@pytest.mark.parametrize("make_token", [None, garbage_token, token_signed_with_another_key,
                                        token_from_another_session],
                         ids=["missing", "garbage", "other-key", "other-session"])
def test_every_post_endpoint_refuses_a_bad_csrf_token(app, clock, make_user, login_as, world, make_token):
    admin = login_as("admin")
    target = make_user("nurse")
    app.test_client().login(target.username, PASSWORD)
    inactive = deactivated_user(app, make_user, clock)
    post_rules = rules(app, "POST")
    assert {"auth.login", "auth.logout", "admin.staff_deactivate"} <= {r.endpoint for r in post_rules}
    for rule in post_rules:
        target_id = inactive.id if rule.endpoint == "admin.staff_reactivate" else target.id
        url = url_for_rule(app, rule, target_id, world)
        data = post_data(rule.endpoint, admin)
        if make_token is not None:
            data["csrf_token"] = make_token(admin)
        before, failures = snapshot(app, skip={"audit_event", "audit_head"}), len(events(app, "csrf.failed"))
        response = admin.post(url, data=data)
        if rule.endpoint in WEBHOOK_ENDPOINTS:  # exempt from CSRF (Twilio has no token): its signature guards it
            assert response.status_code == 403, rule.endpoint
            assert snapshot(app, skip={"audit_event", "audit_head"}) == before, f"{rule.endpoint} changed data"
            continue
        assert response.status_code == 400, rule.endpoint
        assert "Form expired or invalid" in response.get_data(as_text=True)
        assert snapshot(app, skip={"audit_event", "audit_head"}) == before, f"{rule.endpoint} changed data"
        new = events(app, "csrf.failed")[failures:]
        assert [(e.outcome, e.username) for e in new] == [("denied", admin.user.username)], rule.endpoint
        assert json.loads(new[0].details)["endpoint"] == rule.endpoint
    assert admin.get("/admin/staff").status_code == 200, "still signed in: the logout was refused too"


def test_login_without_a_csrf_token_is_refused_and_opens_no_session(app, client, make_user):
    user = make_user("nurse")
    response = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(StaffSession)) == 0
    assert events(app, "login.succeeded") == []
    with client.session_transaction() as sess:
        assert "_user_id" not in sess
    assert client.get("/today").status_code == 302


def test_a_valid_csrf_token_is_accepted(login_as, make_user):
    """The control for the refusals above: the same request with a good token goes through."""
    admin = login_as("admin")
    target = make_user("nurse")
    assert admin.submit(f"/admin/staff/{target.id}/role", post_data("admin.staff_role", admin)).status_code == 302


# --- 2. no GET changes state ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the HTTP layer, not the database
@pytest.mark.parametrize("role", ROLES)
def test_no_get_changes_state(app, make_user, login_as, world, role):
    target = make_user("nurse")
    client = app.test_client() if role == "anonymous" else login_as(role)
    get_rules = rules(app, "GET")
    before = snapshot(app, skip=MAY_CHANGE_ON_GET)
    for rule in get_rules:
        fetch(client, url_for_rule(app, rule, target.id, world))
        fetch(client, url_for_rule(app, rule, target.id, world) + "?page=2&username=x&start=2026-01-01")
    assert snapshot(app, skip=MAY_CHANGE_ON_GET) == before
    assert before["staff_user"], "the snapshot saw the staff"


# --- 3. security headers --------------------------------------------------------------------------


def csp_directives(header):
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name.lower()] = sources
    return directives


def assert_security_headers(response, url):
    where = f"{response.status_code} {url}"
    csp = csp_directives(response.headers["Content-Security-Policy"])
    assert csp["object-src"] == ["'none'"], where
    assert csp["base-uri"] == ["'none'"], where
    assert csp["frame-ancestors"] == ["'none'"], where
    script = csp.get("script-src", csp.get("default-src"))
    assert script and "'unsafe-inline'" not in script and "*" not in script, where
    assert response.headers["X-Content-Type-Options"] == "nosniff", where
    assert response.headers["Referrer-Policy"] == "same-origin", where
    if not url.startswith("/static/"):
        assert "no-store" in response.headers.get("Cache-Control", ""), where


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the HTTP layer, not the database
@pytest.mark.parametrize("role", ["anonymous", "nurse", "admin"])
def test_every_response_carries_the_security_headers(app, make_user, login_as, world, role):
    target = make_user("nurse")
    client = app.test_client() if role == "anonymous" else login_as(role)
    urls = [url_for_rule(app, rule, target.id, world) for rule in rules(app, "GET")]
    urls += ["/no-such-page", "/admin/staff/999999", "/static/css/app.css", "/static/no-such.css",
             "/healthz", "/login", "/logout"]
    seen = set()
    for url in urls:
        response = fetch(client, url)
        seen.add(response.status_code)
        assert_security_headers(response, url)
    expected = {"anonymous": {200, 302, 404, 405}, "nurse": {200, 302, 403, 404, 405},
                "admin": {200, 302, 403, 404, 405}}[role]
    assert expected <= seen, "the walk covered pages, redirects, refusals and errors"


def test_error_responses_carry_the_headers_too(login_as, client):
    nurse = login_as("nurse")
    assert_security_headers(nurse.get("/admin/staff"), "/admin/staff")
    assert_security_headers(client.post("/login", data={}), "/login (CSRF 400)")


def test_https_adds_strict_transport_security(make_app, make_user):
    app = make_app(HTTPS=True)
    client = app.test_client()
    for url in ("/login", "/healthz", "/today", "/no-such-page", "/static/css/app.css"):
        response = fetch(client, url)
        match = re.search(r"max-age=(\d+)", response.headers.get("Strict-Transport-Security", ""))
        assert match and int(match.group(1)) >= 31536000, url


def test_plain_http_sends_no_strict_transport_security(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers


# --- 4. the health check --------------------------------------------------------------------------


def test_healthz_is_public_json_and_sets_no_cookie(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok", "database": "ok"}
    assert "Set-Cookie" not in response.headers


def test_healthz_for_a_signed_in_client_sets_no_cookie(login_as):
    nurse = login_as("nurse")
    response = nurse.get("/healthz")
    assert response.get_json() == {"status": "ok", "database": "ok"}
    assert "Set-Cookie" not in response.headers


# --- 5. error pages -------------------------------------------------------------------------------


@pytest.mark.parametrize("signed_in", [False, True])
def test_404_is_the_friendly_page(client, login_as, signed_in):
    user_client = login_as("admin") if signed_in else client
    for url in ("/no-such-page", "/admin/staff/999999" if signed_in else "/no/such/page"):
        response = user_client.get(url)
        html = response.get_data(as_text=True)
        assert response.status_code == 404
        assert "There is nothing at this address." in html and "Traceback" not in html
        assert response.mimetype == "text/html"


def test_500_shows_the_friendly_page_and_never_the_exception(make_app, make_user, caplog):
    app = make_app()

    def boom():
        message = CANARY  # a variable, so the traceback's source lines do not spell the canary either
        raise RuntimeError(message)

    boom.permission = is_staff
    app.add_url_rule("/boom", "boom", boom)
    user = make_user("nurse")
    client = app.test_client()
    assert client.login(user.username, PASSWORD).status_code == 302
    caplog.set_level(logging.DEBUG, logger="opsmgr")

    response = client.get("/boom")

    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in html
    assert "Traceback" not in html and CANARY not in html and "RuntimeError" not in html
    assert_security_headers(response, "/boom")
    assert "RuntimeError" in caplog.text, "the error is logged, by type"
    assert CANARY not in caplog.text
    for record in caplog.records:
        assert CANARY not in record.getMessage() and record.exc_info is None
    assert client.get("/today").status_code == 200, "the app keeps working"


# --- 6. no inline script --------------------------------------------------------------------------


class InlineCodeFinder(HTMLParser):
    def __init__(self):
        super().__init__()
        self.problems = []

    def handle_starttag(self, tag, attrs):
        names = {name.lower(): value or "" for name, value in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("<script> without src")
        if tag == "style":
            self.problems.append("<style> block (the CSP style-src forbids it)")
        for name, value in names.items():
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
            if name == "style":
                self.problems.append(f"<{tag} style=...> (the CSP style-src forbids it)")
            if value.strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}=javascript:...>")


def inline_code(html):
    finder = InlineCodeFinder()
    finder.feed(html)
    finder.close()
    return finder.problems


def test_inline_code_finder_catches_what_it_looks_for():
    assert inline_code('<script>x()</script><a onclick="x()" href="javascript:x()">') == [
        "<script> without src", "<a onclick=...>", "<a href=javascript:...>"]
    assert inline_code('<script src="/static/js/app.js" defer></script>') == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the HTTP layer, not the database
@pytest.mark.parametrize("role", ["anonymous", "nurse", "coordinator", "physician", "admin"])
def test_no_page_has_inline_script_or_event_handlers(app, make_user, login_as, world, role):
    target = make_user("nurse")
    client = app.test_client() if role == "anonymous" else login_as(role)
    pages = 0
    for rule in rules(app, "GET"):
        url = url_for_rule(app, rule, target.id, world)
        response = fetch(client, url)
        if response.mimetype == "text/html":
            pages += 1
            assert inline_code(response.get_data(as_text=True)) == [], url
    assert pages >= (1 if role == "anonymous" else 3)


def test_login_page_and_admin_pages_have_no_inline_script(client, login_as):
    html = client.get("/login").get_data(as_text=True)
    assert "<form" in html and inline_code(html) == []
    admin = login_as("admin")
    other = login_as("nurse")
    for url in ("/admin/staff", f"/admin/staff/{other.user.id}", "/admin/staff/new", "/admin/audit/"):
        html = admin.get(url).get_data(as_text=True)
        assert "<form" in html and inline_code(html) == [], url


# --- 7. debug mode ---------------------------------------------------------------------------------


def test_create_app_refuses_debug_mode(make_app):
    with pytest.raises(RuntimeError, match="debug"):
        make_app(DEBUG=True)


# --- 8. hostile login input -----------------------------------------------------------------------

HOSTILE = {
    "10kb-username": ("a" * 10240, PASSWORD),
    "10kb-password": ("nurse-h", "p" * 10240),
    "nul-in-username": ("nurse\x00-h", "not the password at all"),
    "nul-only": ("\x00", "\x00" * 20),
    "nul-in-password": ("nurse-h", "correct horse\x00battery staple"),
    # Bidirectional controls are removed from every text field (core.forms.clean_text), like surrounding
    # space: with the right password this one would sign in as nurse-h, so it carries a wrong one.
    "rtl-override-username": ("\u202enurse-h", "not the password at all"),
    "rtl-marks": ("nurse-h\u200f", "\u202e" + PASSWORD),
    "sql-tautology": ("' OR '1'='1", "' OR '1'='1"),
    "sql-drop": ("nurse-h'; DROP TABLE staff_user; --", "x"),
    "sql-sleep": ("nurse-h\" --", "\\'; SELECT pg_sleep(5); --"),
    "format-strings": ("%00%27%22", "%s%s%s%n"),
    "script-tag": ("<script>alert(1)</script>", "</script>"),
    "header-injection": ("\r\nSet-Cookie: x=1", "\r\n"),
    "blank": ("   ", "   "),
    "emoji": ("\U0001f600" * 64, "\U0001f600" * 300),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_login_input_never_fails_the_server(app, client, make_user, name):
    username, password = HOSTILE[name]
    user = make_user("nurse", username="nurse-h")
    response = client.submit("/login", {"username": username, "password": password})
    assert response.status_code in {200, 400}
    html = response.get_data(as_text=True)
    assert "<script>alert(1)" not in html
    assert "Set-Cookie: x=1" not in str(response.headers)
    with app.app_context():
        assert db.session.scalars(select(StaffUser.username)).all() == ["nurse-h"], "the table survived"
    assert app.test_client().login(user.username, PASSWORD).status_code == 302, "the real user still signs in"


#: Query strings for the audit report's GET filter form, as an admin could type or paste them.
HOSTILE_AUDIT_QUERIES = {
    "nul-username": "/admin/audit/?username=nurse%00",
    "nul-action": "/admin/audit/?action=login%00.failed",
    "long-username": "/admin/audit/?username=" + "a" * 10240,
    "patient-id-over-int32": "/admin/audit/?patient_id=3000000000",
    "patient-id-over-int64": "/admin/audit/export.csv?patient_id=99999999999999999999",
    "last-day-of-calendar": "/admin/audit/?end=9999-12-31",
    "first-day-of-calendar": "/admin/audit/?start=0001-01-01&end=0001-01-01",
    "nonsense-choices": "/admin/audit/?page=100000&sort=nonsense&direction=sideways&outcome=maybe&start=x",
}


@pytest.mark.parametrize("name", list(HOSTILE_AUDIT_QUERIES))
def test_hostile_audit_filters_never_fail_the_server(login_as, name):
    admin = login_as("admin")
    response = admin.get(HOSTILE_AUDIT_QUERIES[name])
    assert response.status_code in {200, 400}, HOSTILE_AUDIT_QUERIES[name][:120]


#: Changes to an otherwise valid staff-creation form, as a non-browser client could send it.
HOSTILE_STAFF_FORMS = {
    "no-credentials-field": {"credentials": None},
    "nul-in-full-name": {"full_name": "New\x00Comer"},
    "nul-in-credentials": {"credentials": "RN\x00"},
    "nul-in-username": {"username": "new\x00comer"},
    "rtl-full-name": {"full_name": "\u202eNew Comer\u202c"},
    "unknown-role": {"role": "superuser"},
}


@pytest.mark.parametrize("name", list(HOSTILE_STAFF_FORMS))
def test_hostile_staff_forms_never_fail_the_server(login_as, name):
    admin = login_as("admin")
    data = {"username": "newcomer", "full_name": "New Comer", "credentials": "", "role": "nurse",
            "password": "a brand new passphrase", "confirm": "a brand new passphrase"}
    data.update(HOSTILE_STAFF_FORMS[name])
    data = {key: value for key, value in data.items() if value is not None}
    response = admin.submit("/admin/staff/new", data)
    assert response.status_code in {200, 302, 400}
