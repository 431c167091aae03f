"""Object-level access over the whole surface (reliability.md §8 row 2): for every route in the url_map
that takes an object id, a user outside that object's scope reads, edits and deletes by id, and nothing
succeeds.

The cases are generated from app.url_map against the canary world of tests/access_world.py:
- a role the route's permission shuts out (tests/test_permissions.py proves each role's status; this
  proves it per object, with the body, the rows and the audit trail checked);
- the IDOR class: a permitted user naming a child of another parent (a reading, an alert or an adverse
  event of patient B's session under patient A's session; B's medication or chart entry under A's chart);
- an object-level rule: an entry marked entered in error by someone who did not record it, an admin
  changing their own account, a coordinator asking for a session's unsigned DRAFT summary;
- the token feeds without a valid token.
Each refused request answers 403 (a role or a rule) or 404 (an id of another parent or a missing token,
confirming nothing), carries no canary PHI, changes no row, and writes an audit event with outcome
"denied". A route with an id argument the world cannot fill, or with no outsider case, fails the test.
"""
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field

import pytest

from opsmgr.core.guard import TOKEN_ENDPOINTS
from tests.access_world import (
    CHILDREN,
    ENTRY_KINDS,
    IDS,
    NOT_IDS,
    STAFF_ROLES,
    audit_head,
    audit_since,
    canary_world,
    counts,
    fill,
    leaked,
    request_data,
    role_user,
    sign_in_all,
    snapshot,
    url,
)

#: Form data a permitted user would get accepted, for the routes whose id names a child ({child}: its id).
CHILD_DATA = {
    "infusion.vitals_in_error": {"in-error-vitals-{child}-reason": "Recorded on the wrong patient."},
    "infusion.acknowledge": {"alert{child}-action": "pause", "alert{child}-note": "Held; recheck in 5 minutes."},
    "notes.remove_adverse_event": {},
    "patients.stop_medication": {"med{child}-stopped_on": "2026-11-20"},
    "patients.entry_in_error": {"in-error-{kind}-{child}-reason": "Recorded on the wrong chart."},
}
#: Permitted by the route's guard, refused by a rule about the object: (endpoint, account, fill, data, why).
OBJECT_RULES = [
    ("infusion.vitals_in_error", "nurse2", {}, CHILD_DATA["infusion.vitals_in_error"],
     "a nurse marks only the readings she recorded"),
    ("patients.entry_in_error", "nurse2", {"kind": "weights"}, CHILD_DATA["patients.entry_in_error"],
     "a nurse marks only the weights she recorded"),
    ("patients.entry_in_error", "nurse", {"kind": "medications"}, CHILD_DATA["patients.entry_in_error"],
     "an entry without a known author: a physician only"),
    ("reports.session_pdf", "coordinator", {}, None, "an unsigned session's DRAFT summary: clinicians only"),
    *[(endpoint, "admin", {"user_id": "admin"}, data, "nobody changes their own account")
      for endpoint, data in (("admin.staff_role", {"role": "nurse"}), ("admin.staff_deactivate", {}),
                             ("admin.staff_reactivate", {}), ("admin.staff_end_sessions", {}),
                             ("admin.staff_reset_password", {"password": "temporary passphrase 42",
                                                             "confirm": "temporary passphrase 42"}))],
]

#: Ids carried in a form, not the URL: (endpoint, account, the world key of the id, its field, other fields).
#: Another parent's id there is refused as invalid input (400, nothing stored), like any wrong choice.
FORM_IDS = [
    ("notes.add_adverse_event", "nurse", "alert", "ae-alert_id",
     {"ae-kind": "nausea", "ae-onset_time": "10:20", "ae-severity": "mild", "ae-intervention": "Rest",
      "ae-drug_given": "", "ae-outcome": "resolved"}),
]

#: A refused form's page commits its own audit reads, and with them its submission key, unanswered (judged
#: again if sent again: core/submissions.py): bookkeeping, not a record.
UNANSWERED = {"submission"}


@dataclass
class Case:
    kind: str
    endpoint: str
    method: str
    url: str
    account: str | None
    status: int
    data: dict | None = None
    control: dict = field(default_factory=dict)

    def __str__(self):
        return f"{self.kind}: {self.account or 'anonymous'} {self.method} {self.url} ({self.endpoint})"


def id_rules(app):
    """The rules with an object-id argument, each with the methods it answers."""
    found = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if set(rule.arguments) - set(NOT_IDS) - {"kind"}:
            found.append((rule, sorted(rule.methods & {"GET", "POST"})))
    return found


def form_data(template, child, kind):
    if template is None:
        return None
    return {key.format(child=child, kind=kind): value for key, value in template.items()}


def nested(rule):
    return [name for name in rule.arguments if name in CHILDREN and CHILDREN[name][0] in rule.arguments]


def cases_for(app, world, long_run):
    """Every outsider case for every id route (long_run: every refused role; else one per route, in turn)."""
    cases, turn = [], 0
    for rule, methods in id_rules(app):
        for method in methods:
            found = []
            values = fill(world, rule)
            if rule.endpoint in TOKEN_ENDPOINTS:
                found.append(Case("no valid token", rule.endpoint, method, url(app, rule, values) + "?token=forged",
                                  None, 404))
            else:
                permission = getattr(app.view_functions[rule.endpoint], "permission", None)
                assert callable(permission), f"{rule.endpoint} takes an object id and names no permission"
                refused = [role for role in STAFF_ROLES if not permission(role_user(role))]
                if not long_run and refused:
                    refused, turn = [refused[turn % len(refused)]], turn + 1
                for role in refused:
                    found.append(Case("role", rule.endpoint, method, url(app, rule, values), role, 403,
                                      request_data(rule.endpoint, world) if method == "POST" else None))
                found += idor_cases(app, world, rule, method, permission)
            found += [object_case(app, world, rule, method, *row) for row in OBJECT_RULES if row[0] == rule.endpoint]
            found += [form_id_case(app, world, rule, *row) for row in FORM_IDS if row[0] == rule.endpoint
                      and method == "POST"]
            assert found, f"{rule.endpoint} {method} {rule.rule}: no outsider case; add one"
            cases += found
    return cases


def form_id_case(app, world, rule, endpoint, account, key, name, data):
    theirs, mine = world["ids"]["B"][key], world["ids"]["A"][key]
    return Case("another parent's id in the form", endpoint, "POST", url(app, rule, fill(world, rule)), account, 400,
                {**data, name: str(theirs)}, control={"url": url(app, rule, fill(world, rule)),
                                                      "data": {**data, name: str(mine)}})


def idor_cases(app, world, rule, method, permission):
    children = nested(rule)
    if not children:
        return []
    assert method == "POST" and rule.endpoint in CHILD_DATA, f"{rule.endpoint}: add its form data to CHILD_DATA"
    account = next(role for role in ("physician", "nurse", "coordinator", "admin") if permission(role_user(role)))
    found = []
    for kind in (ENTRY_KINDS if "kind" in rule.arguments else ("weights",)):
        theirs = fill(world, rule, kind=kind, child_owner="B")
        mine = fill(world, rule, kind=kind)
        [child] = children
        found.append(Case("another parent's child", rule.endpoint, method, url(app, rule, theirs), account, 404,
                          form_data(CHILD_DATA[rule.endpoint], theirs[child], kind),
                          control={"url": url(app, rule, mine),
                                   "data": form_data(CHILD_DATA[rule.endpoint], mine[child], kind)}))
    return found


def object_case(app, world, rule, method, endpoint, account, overrides, data, why):
    kind = overrides.get("kind", "weights")
    values = fill(world, rule, kind=kind)
    if overrides.get("user_id"):
        values["user_id"] = world["staff"][overrides["user_id"]]
    child = next((values[name] for name in nested(rule)), None)
    return Case(f"object rule ({why})", endpoint, method, url(app, rule, values), account, 403,
                form_data(data, child, kind) if method == "POST" else None)


@pytest.fixture
def world(clock, request):
    """A fresh copy of the canary world (SQLite: who may reach an object does not depend on the database)."""
    with canary_world(request, clock) as shared:
        yield shared


def send(client, case):
    if case.method == "GET":
        return client.get(case.url)
    data = dict(case.data or {}, submission_key=secrets.token_urlsafe(16))
    return client.submit(case.url, data)


@pytest.mark.long
def test_no_outsider_reads_edits_or_deletes_any_object_by_id(world, long_run):
    app, data = world.app, world.data
    arguments = {name for rule, _ in id_rules(app) for name in rule.arguments}
    assert arguments - set(IDS) - set(NOT_IDS) - {"kind"} == set(), "teach tests/access_world.py IDS these"
    cases = cases_for(app, data, long_run)
    clients = sign_in_all(app, data)
    anonymous = app.test_client()
    start = audit_head(app)
    rows, sizes = snapshot(app, audit_up_to=start), counts(app)
    last_denial = [case for case in cases if case.status != 400][-1]
    head, denials = start, 0
    for case in sorted(cases, key=lambda c: c.status == 400):  # refused forms last: see UNANSWERED
        client = clients[case.account] if case.account else anonymous
        response = send(client, case)
        body = response.get_data(as_text=True)
        assert response.status_code == case.status, f"{case}: {response.status_code}"
        if case.status == 400:  # the page of the user's own patient again, with the field's error
            assert leaked(body, "B") == [], f"{case}: the answer carries the other patient's PHI"
            assert snapshot(app, audit_up_to=start, skip=UNANSWERED) == \
                {name: value for name, value in rows.items() if name not in UNANSWERED}, f"{case} changed a row"
            head = audit_head(app)
            continue
        assert leaked(body) == [], f"{case}: the answer carries canary PHI"
        new = audit_since(app, head)
        assert [e.outcome for e in new if e.outcome != "denied"] == [], f"{case}: {[e.action for e in new]}"
        assert new, f"{case}: the denial was not audited"
        denials += len(new)
        if case.status == 403 or case.kind.startswith("another"):
            [event] = new
            details = json.loads(event.details)
            assert (event.action, details["endpoint"], details["method"]) == ("access.denied", case.endpoint,
                                                                             case.method), str(case)
            assert event.user_id == clients[case.account].user_id
            assert details.get("reason") == ("out_of_scope" if case.status == 404 else None), str(case)
        head = new[-1].id
        assert counts(app) == sizes, f"{case} added or removed a row"
        if case is last_denial:
            assert snapshot(app, audit_up_to=start) == rows, "a refused request changed a row"
    routes = {(c.endpoint, c.method) for c in cases}
    assert routes == {(rule.endpoint, method) for rule, methods in id_rules(app) for method in methods}
    kinds = Counter(case.kind.split(" (")[0] for case in cases)
    print(f"object access: {len(routes)} id routes, {len(cases)} cases {dict(kinds)}, {denials} denials audited")
    for case in sorted((c for c in cases if c.control), key=lambda c: "in_error" in c.endpoint):  # marks last
        response = clients[case.account].submit(case.control["url"], dict(case.control["data"],
                                                                           submission_key=secrets.token_urlsafe(16)))
        assert response.status_code == 302, f"control for {case}: the same request on its own parent is accepted"
    assert snapshot(app, audit_up_to=start) != rows
