"""The CSRF sweep (reliability.md §8 row 6): every state-changing route refuses a request without a valid
token, and no GET changes a row.

Generated from app.url_map against the canary world of tests/access_world.py (SQLite: the token check and
the read phase do not depend on the database). tests/test_security.py already posts a missing, garbage,
foreign-key and foreign-session token to every POST route as an admin; this sweep adds the stale token
(older than WTF_CSRF_TIME_LIMIT, forged with itsdangerous) and, on HTTPS, a valid token with another site's
Referer or none (Flask-WTF's SSL-strict check; the Origin header is not checked apart), sent by users the
route's permission lets in (so a missing check would have let the change through); the exemptions (exactly
the signed Twilio webhooks); the production configuration; and the GET crawl over a world where every id
names a real object, with the audit trail checked too.
"""
import json
import secrets
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from config import Config, TestConfig
from opsmgr import create_app
from opsmgr.audit.service import verify_chain
from opsmgr.core.guard import PUBLIC_ENDPOINTS, TOKEN_ENDPOINTS, WEBHOOK_ENDPOINTS
from opsmgr.extensions import csrf
from tests.access_world import (
    STAFF_ROLES,
    audit_head,
    audit_since,
    canary_world,
    counts,
    fill,
    request_data,
    role_user,
    sign_in_all,
    snapshot,
    url,
)

ROLES = ("anonymous", *STAFF_ROLES)
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
#: missing: no token; stale: a token signed WTF_CSRF_TIME_LIMIT + 60 s ago; on HTTPS with a valid token,
#: cross-origin: another site's Referer; no-referer: none (what a site sending no referrer makes the browser do).
KINDS = ("missing", "stale", "cross-origin", "no-referer")
#: What a GET may append to the audit trail: reads (an ok outcome) and refusals (outcome denied).
READ_ACTIONS = {
    "audit.exported", "audit.viewed", "board.refreshed", "board.viewed", "booking.patient_shown",
    "disclosures.viewed", "export.csv", "export.fhir",
    "calendar.feed_read", "calendar.viewed", "checklist.viewed", "follow_up.viewed", "infusion.viewed",
    "note.viewed", "patient.viewed", "patients.searched", "physician_home.viewed", "report.downloaded",
    "report.exported", "report.previewed", "report.verified", "reports.outcomes_viewed", "series.previewed",
    "series.viewed", "session.viewed", "worklist.viewed",
}
#: Tables a GET may write that hold no record: the flashed messages a browser has not seen yet, kept on the
#: server instead of in the cookie (opsmgr/core/flashes.py), e.g. "Please sign in" on the way to the login page.
SESSION_STATE = {"pending_flash"}
#: GET routes the short sample requests as a role refused there, as the allowed request takes seconds (a PDF
#: rendered, the outcome charts): the long run makes it (and tests/test_security.py crawls the outcome page).
SHORT_AS = {"reports.session_pdf": "coordinator", "outcomes.page": "nurse"}


@pytest.fixture
def world(clock, request):
    with canary_world(request, clock) as shared:
        yield shared


def test_production_configuration_keeps_csrf_on(tmp_path):
    config = Config({"OPSMGR_INSTANCE_PATH": str(tmp_path), "OPSMGR_TIMEZONE": "UTC"})
    assert config.WTF_CSRF_ENABLED is True
    assert config.WTF_CSRF_TIME_LIMIT == int(config.ABSOLUTE_TIMEOUT.total_seconds()) > 0
    assert getattr(config, "WTF_CSRF_SSL_STRICT", True) is True
    assert getattr(config, "WTF_CSRF_CHECK_DEFAULT", True) is True
    for setting in ("WTF_CSRF_ENABLED", "WTF_CSRF_CHECK_DEFAULT"):
        with pytest.raises(RuntimeError, match="CSRF"):
            create_app(TestConfig(f"sqlite:///{tmp_path}/unused.sqlite3", tmp_path / "instance", **{setting: False}))


def test_the_csrf_exemptions_are_exactly_the_signed_webhooks(world):
    app = world.app
    exempt = {endpoint for endpoint, view in app.view_functions.items()
              if f"{view.__module__}.{view.__name__}" in csrf._exempt_views}
    assert exempt == WEBHOOK_ENDPOINTS
    assert csrf._exempt_blueprints == set()


def stale_token(client, age):
    """The client's CSRF token as it was signed `age` seconds ago."""
    client.csrf_token()
    with client.session_transaction() as sess:
        raw = sess["csrf_token"]

    class Then(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - age

    return URLSafeTimedSerializer(client.application.secret_key, salt="wtf-csrf-token", signer=Then).dumps(raw)


def post(client, url, data, kind, limit):
    data = dict(data, submission_key=secrets.token_urlsafe(16))
    if kind == "stale":
        data["csrf_token"] = stale_token(client, limit + 60)
    elif kind in {"cross-origin", "no-referer"}:
        data["csrf_token"] = client.csrf_token()
        headers = {"Referer": "https://attacker.example/form"} if kind == "cross-origin" else {}
        return client.post(url, data=data, base_url="https://localhost", headers=headers)
    return client.post(url, data=data)


def permitted(app, endpoint):
    """The roles the route lets in ("anonymous" for a public or token route)."""
    permission = getattr(app.view_functions[endpoint], "permission", None)
    if permission is None:
        return ["anonymous"]
    return [role for role in STAFF_ROLES if permission(role_user(role))]


@pytest.mark.long
def test_every_state_changing_route_refuses_a_missing_stale_or_cross_origin_token(world, long_run):
    """long_run: every route x every role x every kind; else each route once, as a role it lets in, the
    kinds in turn."""
    app, data = world.app, world.data
    limit = app.config["WTF_CSRF_TIME_LIMIT"]
    clients = {**{role: client for role, client in sign_in_all(app, data).items() if role in STAFF_ROLES},
               "anonymous": app.test_client()}
    rules = [rule for rule in app.url_map.iter_rules() if rule.methods & STATE_CHANGING]
    assert {method for rule in rules for method in rule.methods & STATE_CHANGING} == {"POST"}
    start = audit_head(app)
    rows, sizes, head, refused, turn = snapshot(app, audit_up_to=start), counts(app), start, 0, 0
    for rule in sorted(rules, key=lambda r: r.rule):
        target = url(app, rule, fill(world.data, rule))
        if rule.endpoint in WEBHOOK_ENDPOINTS:  # no token: Twilio's signature instead, refused without it
            assert clients["anonymous"].post(target, data={"Body": "STOP"}).status_code == 403
            assert counts(app) == sizes
            head = audit_head(app)
            continue
        roles = ROLES if long_run else [permitted(app, rule.endpoint)[0]]
        kinds = KINDS if long_run else [KINDS[turn % len(KINDS)]]
        turn += 1
        for role in roles:
            for kind in kinds:
                response = post(clients[role], target, request_data(rule.endpoint, world.data), kind, limit)
                where = f"{kind} token: {role} POST {target} ({rule.endpoint})"
                assert response.status_code == 400, where
                assert "Form expired or invalid" in response.get_data(as_text=True), where
                new = audit_since(app, head)
                assert [(e.action, e.outcome, json.loads(e.details)["endpoint"]) for e in new] == [
                    ("csrf.failed", "denied", rule.endpoint)], where
                head, refused = new[-1].id, refused + 1
                assert counts(app) == sizes, f"{where}: a row was added or removed"
    assert snapshot(app, audit_up_to=start) == rows, "a refused request changed a row"
    print(f"csrf sweep: {len(rules)} state-changing routes, {refused} refusals audited")
    # The controls: the same token signed just inside the limit, and the same origin on HTTPS, are accepted.
    nurse = clients["nurse"]
    fresh = {"csrf_token": stale_token(nurse, limit - 120), "next": "/today"}
    assert nurse.post("/lock", data=fresh).status_code == 302
    same_site = nurse.post("/lock", data={"csrf_token": nurse.csrf_token(), "next": "/today"},
                           base_url="https://localhost", headers={"Referer": "https://localhost/today"})
    assert same_site.status_code == 302


@pytest.mark.long
def test_no_get_changes_a_row_whoever_crawls(world, long_run):
    app, data = world.app, world.data
    clients = {**{role: client for role, client in sign_in_all(app, data).items() if role in STAFF_ROLES},
               "anonymous": app.test_client()}
    start = audit_head(app)
    rows, sizes = snapshot(app, audit_up_to=start, skip=SESSION_STATE), counts(app, skip=SESSION_STATE)
    head, requests, seen = start, 0, set()
    rules = sorted((rule for rule in app.url_map.iter_rules() if "GET" in rule.methods), key=lambda r: r.rule)
    for index, rule in enumerate(rules):
        target = url(app, rule, fill(data, rule))
        if rule.endpoint in TOKEN_ENDPOINTS:
            target += f"?token={data['feed_token']}"
        if long_run:
            roles = ROLES
        else:
            allowed = permitted(app, rule.endpoint)
            roles = [SHORT_AS.get(rule.endpoint) or allowed[index % len(allowed)]]
        for role in roles:
            response = clients[role].get(target)
            response.get_data()
            response.close()
            requests += 1
            where = f"{role} GET {target} ({rule.endpoint}): {response.status_code}"
            assert response.status_code < 500, where
            assert counts(app, skip=SESSION_STATE) == sizes, f"{where} added or removed a row"
            new = audit_since(app, head)
            writes = [e.action for e in new if e.outcome != "denied" and e.action not in READ_ACTIONS]
            assert writes == [], f"{where} audited more than a read"
            seen |= {e.action for e in new}
            head = new[-1].id if new else head
    assert snapshot(app, audit_up_to=start, skip=SESSION_STATE) == rows, "a GET changed a row"
    with app.app_context():
        assert verify_chain(app.config["AUDIT_KEY"]).ok, "the reads extended the audit chain, unbroken"
    assert {rule.endpoint for rule in rules} >= PUBLIC_ENDPOINTS - {"auth.login"} | TOKEN_ENDPOINTS
    print(f"get crawl: {len(rules)} GET routes, {requests} requests, audit actions {sorted(seen)}")
