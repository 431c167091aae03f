"""Restricted records and audited break-glass (issue 16 §2; reliability.md §3.3 and §8 row 25; HIPAA
164.312(a)(2)(ii)).

Patient A of the canary world (tests/access_world.py) is restricted with the world's nurse as the only
member of the care team. Every patient route of the url_map is then closed to everyone else (403, no PHI
but the name, a `restricted.denied` audit row) and open to the care team; a clinician who breaks the glass
sees it, each page audited with the event and its reason, until the window ends one second after 60 minutes.
"""
import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from flask_login import login_user

from opsmgr.audit.service import Actor
from opsmgr.auth.models import StaffUser
from opsmgr.extensions import db
from opsmgr.patients.models import Patient
from opsmgr.permissions import can_export_patient
from opsmgr.restricted import access, service
from opsmgr.rules.break_glass import REASONS, is_open, reason_problems
from tests.access_world import CANARIES, audit_head, audit_since, canary_world, fill, request_data, sign_in_all, url
from tests.conftest import PASSWORD

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


# --- the rule, without an app ----------------------------------------------------------------------

def test_break_glass_lasts_to_its_expiry_and_ends_one_instant_after():
    expires = T0 + timedelta(minutes=60)
    assert is_open(expires, expires) and not is_open(expires, expires + timedelta(microseconds=1))


@pytest.mark.parametrize(("reason", "detail", "fields"), [
    ("", "Patient collapsed at the chair", ("reason",)),
    ("emergency", "", ("detail",)),
    ("emergency", "x", ("detail",)),
    ("because", "Covering Dr Lee today", ("reason",)),
    ("covering", "Covering Dr Lee today", ()),
])
def test_a_break_glass_reason_needs_a_listed_reason_and_words(reason, detail, fields):
    assert tuple(field for field, _ in reason_problems(reason, detail)) == fields


def test_an_app_with_a_url_argument_that_resolves_to_no_known_patient_refuses_to_start():
    from flask import Flask

    app = Flask(__name__)
    app.add_url_rule("/notes/<int:note_id>", "notes.by_id", lambda note_id: "")
    with pytest.raises(RuntimeError, match="note_id"):
        access.check_routes(app)


# --- the whole surface ---------------------------------------------------------------------------

@pytest.fixture
def world(clock, request):
    with canary_world(request, clock) as shared:
        app, data = shared.app, shared.data
        with app.app_context():
            patient = db.session.get(Patient, data["ids"]["A"]["patient"])
            service.set_restriction(patient, restricted=True, care_team=[data["staff"]["nurse"]],
                                    reason="A staff member", actor=Actor(data["staff"]["admin"], "admin", "admin"),
                                    now=clock())
            db.session.commit()
        shared.clock = clock
        yield shared


def patient_routes(app):
    """(rule, method) for every route whose URL resolves to a patient, but the restricted pages themselves."""
    return [(rule, method) for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))
            for method in sorted(rule.methods & {"GET", "POST"})
            if set(rule.arguments) & access.PATIENT_ARGUMENTS.keys() and rule.endpoint not in access.OPEN_ENDPOINTS]


def outsider(app, rule):
    """An account outside the care team whose role the route lets through (so only the restriction refuses)."""
    permission = app.view_functions[rule.endpoint].permission
    for name, role in (("nurse2", "nurse"), ("physician", "physician"), ("coordinator", "coordinator"),
                       ("admin", "admin")):
        if permission(StaffUser(id=10**9, role=role, is_active_account=True)):
            return name
    raise AssertionError(f"{rule.endpoint}: no role may use it")


def phi(key="A"):
    """The PHI of a patient but the name (a restricted patient's name may show)."""
    person = CANARIES[key]
    born = person["date_of_birth"]
    return [person["mrn"], person["phrase"], born.isoformat(), born.strftime("%d %b %Y"), born.strftime("%m/%d/%Y")]


def fill_or_none(data, rule, owner):
    try:
        return fill(data, rule, owner=owner)
    except KeyError:
        return None


def hook_allows(app, rule, values, method, user_id):
    """What the restricted-record hook answers `user_id` for the route (None: it lets the request through)."""
    with app.test_request_context(url(app, rule, values), method=method):
        login_user(db.session.get(StaffUser, user_id))
        answer = access.enforce()
        db.session.rollback()
        return answer is None


def test_every_patient_route_is_closed_to_outsiders_and_open_to_the_care_team_and_break_glass(world):
    app, data, clock = world.app, world.data, world.clock
    routes = patient_routes(app)
    endpoints = {rule.endpoint for rule, _ in routes}
    assert {"patients.detail", "schedule.session_detail", "notes.page", "checklist.form", "infusion.page",
            "series.detail", "reports.session_pdf", "reports.document_pdf", "exports.patient_fhir",
            "followups.item_page", "tasks.resolve"} <= endpoints
    clients = sign_in_all(app, data)
    head = audit_head(app)
    for rule, method in routes:
        name = outsider(app, rule)
        link = url(app, rule, fill(data, rule))
        response = clients[name].get(link) if method == "GET" else clients[name].submit(
            link, dict(request_data(rule.endpoint, data), submission_key=secrets.token_urlsafe(16)))
        case = f"{name} {method} {link} ({rule.endpoint})"
        body = response.get_data(as_text=True)
        assert response.status_code == 403, f"{case}: {response.status_code}"
        assert [canary for canary in phi() if canary in body] == [], f"{case}: PHI in the refusal"
        [event] = audit_since(app, head)
        assert (event.action, event.outcome, event.patient_id) == ("restricted.denied", "denied",
                                                                   data["ids"]["A"]["patient"]), case
        assert json.loads(event.details)["endpoint"] == rule.endpoint
        head = event.id
    with app.app_context():
        for rule, method in routes:
            values = fill(data, rule)
            assert hook_allows(app, rule, values, method, data["staff"]["nurse"]), rule.endpoint
            assert not hook_allows(app, rule, values, method, data["staff"]["nurse2"]), rule.endpoint
            unrestricted = fill_or_none(data, rule, owner="B")  # B has no document, task or follow-up
            assert unrestricted is None or hook_allows(app, rule, unrestricted, method, data["staff"]["nurse2"])

    nurse2, chart = clients["nurse2"], f"/patients/{data['ids']['A']['patient']}"
    assert "Break the glass" in nurse2.get(chart).get_data(as_text=True)
    opened = nurse2.submit(f"{chart}/break-glass", {"reason": "at_chair", "detail": "Patient at chair 1, alarm",
                                                    "password": PASSWORD, "submission_key": "k1"})
    assert opened.status_code == 302 and opened.headers["Location"].endswith(chart)
    for _ in range(4):  # 60 minutes in steps the idle sign-out (15 minutes) lets pass
        clock.advance(minutes=15)
        assert nurse2.get(chart).status_code == 200
    head = audit_head(app)
    page = nurse2.get(chart)
    assert page.status_code == 200 and CANARIES["A"]["mrn"] in page.get_data(as_text=True)
    [seen] = [e for e in audit_since(app, head) if e.action == "break_glass.access"]
    details = json.loads(seen.details)
    assert details["break_glass"] is True and details["reason"] == "at_chair" and details["event_id"]
    with app.app_context():
        for rule, method in routes:
            assert hook_allows(app, rule, fill(data, rule), method, data["staff"]["nurse2"]), rule.endpoint
    clock.advance(seconds=1)
    assert nurse2.get(chart).status_code == 403


def test_break_glass_is_refused_without_a_reason_with_a_wrong_password_and_for_coordinators(world):
    app, data = world.app, world.data
    clients = sign_in_all(app, data)
    target = f"/patients/{data['ids']['A']['patient']}/break-glass"
    bare = clients["nurse2"].submit(target, {"detail": "", "password": PASSWORD, "submission_key": "a"})
    body = bare.get_data(as_text=True)
    assert bare.status_code == 400 and 'id="reason-error"' in body and 'id="detail-error"' in body
    head = audit_head(app)
    wrong = clients["nurse2"].submit(target, {"reason": "emergency", "detail": "Collapsed in the waiting room",
                                              "password": "not my password at all", "submission_key": "b"})
    assert wrong.status_code == 400 and 'id="password-error"' in wrong.get_data(as_text=True)
    assert "break_glass.refused" in [e.action for e in audit_since(app, head)]
    assert clients["coordinator"].submit(target, {"reason": "emergency", "detail": "Collapsed in the waiting room",
                                                  "password": PASSWORD, "submission_key": "c"}).status_code == 403
    assert clients["nurse2"].get(f"/patients/{data['ids']['A']['patient']}").status_code == 403


def test_the_board_week_and_lists_show_a_restricted_patient_by_name_only(world):
    data = world.data
    nurse2 = sign_in_all(world.app, data)["nurse2"]
    name, last = CANARIES["A"]["legal_name"], CANARIES["A"]["legal_name"].split()[-1]
    for page in ("/today", "/today/live", "/schedule?day=2026-11-26", f"/patients/?q={last}", "/worklist/"):
        body = nurse2.get(page).get_data(as_text=True)
        assert [canary for canary in phi() if canary in body] == [], page
        if page != "/worklist/":
            assert name in body or last in body, page
    assert CANARIES["B"]["mrn"] in nurse2.get("/today").get_data(as_text=True)


def test_an_export_outside_the_care_team_is_403_and_audited(world):
    app, data = world.app, world.data
    physician = sign_in_all(app, data)["physician"]
    head = audit_head(app)
    assert physician.get(f"/patients/{data['ids']['A']['patient']}/fhir.json").status_code == 403
    assert [e.outcome for e in audit_since(app, head) if e.patient_id == data["ids"]["A"]["patient"]] == ["denied"]
    with app.test_request_context():
        user = db.session.get(StaffUser, data["staff"]["physician"])
        login_user(user)
        assert not can_export_patient(user, db.session.get(Patient, data["ids"]["A"]["patient"]))
        assert can_export_patient(user, db.session.get(Patient, data["ids"]["B"]["patient"]))


def test_an_admin_reviews_each_break_glass_from_their_home(world):
    app, data = world.app, world.data
    clients = sign_in_all(app, data)
    chart = f"/patients/{data['ids']['A']['patient']}"
    assert clients["physician"].submit(f"{chart}/break-glass", {
        "reason": "covering", "detail": "Covering the care team today", "password": PASSWORD,
        "submission_key": "d"}).status_code == 302
    home = clients["admin"].get("/admin/staff").get_data(as_text=True)
    assert 'data-testid="break-glass-review"' in home and "Covering the care team today" in home
    with app.app_context():
        [event] = [e for e in service.events_to_review() if e.user_id == data["staff"]["physician"]]
    head = audit_head(app)
    assert clients["admin"].submit(f"/admin/break-glass/{event.id}/review", {"submission_key": "e"}).status_code == 302
    assert [e.action for e in audit_since(app, head)] == ["break_glass.reviewed"]
    assert "Covering the care team today" not in clients["admin"].get("/admin/staff").get_data(as_text=True)
    disclosures = clients["admin"].get(f"{chart}/disclosures").get_data(as_text=True)
    assert "Break-glass access (opened)" in disclosures and "Break-glass access (reviewed)" in disclosures


def test_a_physician_restricts_a_patient_and_names_the_care_team_audited(world):
    app, data = world.app, world.data
    clients = sign_in_all(app, data)
    b = data["ids"]["B"]["patient"]
    refused = clients["physician"].submit(f"/patients/{b}/restriction", {"restricted": "yes", "reason": "",
                                                                         "submission_key": "f"})
    assert refused.status_code == 400 and 'id="reason-error"' in refused.get_data(as_text=True)
    head = audit_head(app)
    saved = clients["physician"].submit(f"/patients/{b}/restriction", {
        "restricted": "yes", "care_team": [str(data["staff"]["physician"])], "reason": "Public figure",
        "submission_key": "g"})
    assert saved.status_code == 302
    [event] = [e for e in audit_since(app, head) if e.action == "restricted.changed"]
    assert json.loads(event.details) == {"restricted": True, "care_team": [data["staff"]["physician"]]}
    assert clients["nurse"].get(f"/patients/{b}").status_code == 403
    assert clients["physician"].get(f"/patients/{b}").status_code == 200
    lookup = clients["admin"].get(f"/admin/restricted-records?mrn={CANARIES['B']['mrn']}")
    assert lookup.status_code == 302 and lookup.headers["Location"].endswith(f"/patients/{b}/restriction")
    assert list(REASONS) == ["emergency", "at_chair", "covering", "other"]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_restriction_and_break_glass_queries_hold_on_postgresql(backend, app, clock, login_as):
    """The canary world above is SQLite: the one check's statements (an outer join, a correlated
    subquery with a limit, NULL IS TRUE) run on PostgreSQL here."""
    from tests.factories import FACTORY_ACTOR, create_patient

    physician, nurse = login_as("physician"), login_as("nurse")
    with app.app_context():
        patient = create_patient(now=clock())
        service.set_restriction(patient, restricted=True, care_team=[physician.user.id], reason="A staff member",
                                actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        chart = f"/patients/{patient.id}"
    assert physician.get(chart).status_code == 200
    listed = nurse.get(f"/patients/?q={patient.legal_name.split()[-1]}").get_data(as_text=True)
    assert "Restricted record" in listed
    assert nurse.get(chart).status_code == 403
    assert nurse.submit(f"{chart}/break-glass", {"reason": "emergency", "detail": "Collapsed at check-in",
                                                 "password": PASSWORD, "submission_key": "pg"}).status_code == 302
    assert nurse.get(chart).status_code == 200
