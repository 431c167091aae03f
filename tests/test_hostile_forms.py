"""Hostile forms (reliability.md §8 test 3): Hypothesis over every POST route of the app.

Each route's fields come from its WTForms form class (FORMS; RAW for the few routes that read the
request directly); a POST route in neither table fails test_every_post_route_has_a_known_form, so a
new form is fuzzed from the day it lands. Against the seeded demo clinic, each route is sent random
Unicode (NUL, lone surrogates, bidirectional marks, 10 KB strings), boundary, NaN and infinite
numbers, negative vitals, malformed and far-future dates, duplicated parameters and the wrong content
types (JSON, multipart, text, an empty body). Pass: no 5xx and no unhandled exception; a refusal is a
4xx or the form again with the typed text kept; afterwards every stored vital, dose, weight and
score lies inside the range its form declares.

The test is marked `long`: `make test` runs a short sample (two submissions a route, SQLite);
`make test-long` the full size (TOTAL submissions spread over the routes on SQLite, a quarter on PostgreSQL).
Hypothesis runs derandomized with no example database, so a failure reproduces in CI as here.
"""
import json
import logging
import os
import re
import reprlib
import tempfile
from collections import namedtuple
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from html import escape
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import got_request_exception
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy import select
from wtforms.validators import Length, NumberRange

from opsmgr.admin.forms import ResetPasswordForm, RoleForm, StaffCreateForm, TabletForm
from opsmgr.auth.forms import ChangePasswordForm, LoginForm, PinForm, UnlockForm
from opsmgr.checklist.forms import ChecklistForm
from opsmgr.checklist.forms import OverrideForm as ChecklistOverrideForm
from opsmgr.checklist.models import ChecklistResponse
from opsmgr.clinic.forms import ChairForm, ChairUpdateForm, ClosureForm, HoursForm, ProtocolForm, SettingsForm
from opsmgr.core.submissions import FIELD
from opsmgr.corrections.forms import EnteredInErrorForm
from opsmgr.extensions import db
from opsmgr.followups.forms import DoneForm, EscalateForm, NotReachedForm
from opsmgr.infusion.forms import (
    AcknowledgeForm,
    ControlledSubstanceForm,
    DischargeForm,
    DoseOrderForm,
    OverrideForm,
    ResumeForm,
    StartDoseForm,
    VitalsForm,
)
from opsmgr.infusion.models import ControlledSubstanceEntry, DoseOrder, DoseRecord, VitalSign
from opsmgr.messaging.forms import MessageTemplatesForm
from opsmgr.notes.forms import AddendumForm, AdverseEventForm, CompleteForm, NoteForm, SignForm
from opsmgr.patients.forms import (
    ClinicalEditForm,
    ClinicalRegistrationForm,
    ConsentForm,
    ContraindicationForm,
    MedicationForm,
    StopMedicationForm,
    WeightForm,
)
from opsmgr.patients.models import PatientWeight
from opsmgr.policy.forms import PolicyForm
from opsmgr.reports.forms import SeriesSignForm
from opsmgr.restricted.forms import BreakGlassForm, RestrictionForm
from opsmgr.schedule.forms import BookForm, MoveForm, RecordPastForm, StatusForm
from opsmgr.scores.models import Score
from opsmgr.series.forms import SeriesOrderForm, StopSeriesForm
from opsmgr.sessions.models import InfusionSession
from opsmgr.tasks.forms import ResolveForm
from opsmgr.twofactor.forms import ConfirmForm, RenewCodesForm, SignInCodeForm, TurnOffForm
from opsmgr.twofactor.forms import PolicyForm as TwoFactorPolicyForm
from tests.conftest import BACKENDS, DEMO_PASSWORD, LONG_RUN, sign_in
from tests.factories import create_user

# Hypothesis keeps a Unicode table cache under its home directory: out of the working tree.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "opsmgr-hypothesis")

#: Submissions in all under `make test-long`, spread evenly over the routes; `make test` sends SHORT a route.
TOTAL, SHORT = int(os.environ.get("OPSMGR_HOSTILE_TOTAL", 10_000)), 1
#: PostgreSQL gets TOTAL / PG_SHARE of them (see the test).
PG_SHARE = 4

# --- every POST route and its form ------------------------------------------------------------------

#: A route's form: the class, the prefix its view gives it (a function of the URL's ids), the role
#: that posts it, and the demo session (by status) a session route is aimed at.
Spec = namedtuple("Spec", "form prefix role status", defaults=(None, "nurse", "infusing"))
#: The role of the routes that sign out, lock the screen or count wrong passwords toward a lockout: a nurse
#: account of their own, so the shared demo nurse stays signed in and unlocked.
OWN = "own nurse"


def at(template):
    return lambda ids: template.format(**ids)


# fmt: off
FORMS = {
    "admin.staff_create":            Spec(StaffCreateForm, role="admin"),
    "admin.staff_role":              Spec(RoleForm, role="admin"),
    "admin.staff_reset_password":    Spec(ResetPasswordForm, role="admin"),
    "auth.change_password":          Spec(ChangePasswordForm, role=OWN),
    "auth.change_pin":               Spec(PinForm, role=OWN),
    "auth.login":                    Spec(LoginForm, role=None),
    "auth.unlock":                   Spec(UnlockForm, role=OWN),
    "tablets.enrol":                 Spec(TabletForm, role="admin"),
    "checklist.form":                Spec(ChecklistForm, status="checked_in"),
    "checklist.override":            Spec(ChecklistOverrideForm, role="physician", status="checked_in"),
    "clinic.chair_create":           Spec(ChairForm, role="admin"),
    "clinic.chair_update":           Spec(ChairUpdateForm, role="admin"),
    "clinic.closures_page":          Spec(ClosureForm, role="admin"),
    "clinic.hours":                  Spec(HoursForm, role="admin"),
    "clinic.protocol_edit":          Spec(ProtocolForm, role="admin"),
    "clinic.settings":               Spec(SettingsForm, role="admin"),
    "followups.done":                Spec(DoneForm, role="coordinator"),
    "followups.escalate":            Spec(EscalateForm, role="coordinator"),
    "followups.not_reached":         Spec(NotReachedForm, role="coordinator"),
    "infusion.start":                Spec(StartDoseForm, "start", status="cleared"),
    "infusion.order_dose":           Spec(DoseOrderForm, "order", role="physician", status="cleared"),
    "infusion.override":             Spec(OverrideForm, at("override-start-BP_SOFT_GATE"), role="physician",
                                          status="cleared"),
    "infusion.controlled_substance": Spec(ControlledSubstanceForm, "cs"),
    "infusion.vitals":               Spec(VitalsForm, "vitals"),
    "infusion.vitals_in_error":      Spec(EnteredInErrorForm, at("in-error-vitals-{vital_sign_id}")),
    "infusion.acknowledge":          Spec(AcknowledgeForm, at("alert{alert_id}")),
    "infusion.resume":               Spec(ResumeForm, "resume"),
    "infusion.discharge":            Spec(DischargeForm, "discharge", status="recovery"),
    "message_templates.edit":        Spec(MessageTemplatesForm, role="admin"),
    "notes.page":                    Spec(NoteForm),
    "notes.autosave":                Spec(NoteForm),
    "notes.complete":                Spec(CompleteForm, status="discharged"),
    "notes.start_from_last":         Spec(CompleteForm, status="cleared"),
    "notes.sign":                    Spec(SignForm, role="physician", status="discharged"),
    "notes.add_addendum":            Spec(AddendumForm, role="physician", status="discharged"),
    "notes.add_adverse_event":       Spec(AdverseEventForm, "ae"),
    "patients.create":               Spec(ClinicalRegistrationForm, role="physician"),
    "patients.edit":                 Spec(ClinicalEditForm, role="physician"),
    "patients.add_weight":           Spec(WeightForm),
    "patients.add_medication":       Spec(MedicationForm),
    "patients.stop_medication":      Spec(StopMedicationForm, at("med{medication_id}")),
    "patients.add_contraindication": Spec(ContraindicationForm),
    "patients.record_consent":       Spec(ConsentForm),
    "patients.entry_in_error":       Spec(EnteredInErrorForm, at("in-error-weights-{entry_id}"), role="physician"),
    "policy.edit":                   Spec(PolicyForm, role="admin"),
    "reports.series_preview":        Spec(SeriesSignForm, role="physician"),
    "reports.series_sign":           Spec(SeriesSignForm, role="physician"),
    "schedule.book":                 Spec(BookForm, role="coordinator"),
    "schedule.record_past":          Spec(RecordPastForm, role="physician"),
    "schedule.move":                 Spec(MoveForm, role="coordinator", status="scheduled"),
    "schedule.change_status":        Spec(StatusForm, status="scheduled"),
    "series.order":                  Spec(SeriesOrderForm, role="physician"),
    "series.stop":                   Spec(StopSeriesForm, role="physician"),
    "tasks.resolve":                 Spec(ResolveForm, at("task{task_id}"), role="physician"),
    "restricted.break_glass":        Spec(BreakGlassForm),
    "restricted.manage":             Spec(RestrictionForm, role="physician"),
    "two_factor.sign_in_code":       Spec(SignInCodeForm, role=None),
    "two_factor.confirm":            Spec(ConfirmForm),
    "two_factor.turn_off":           Spec(TurnOffForm),
    "two_factor.renew_codes":        Spec(RenewCodesForm, "renew"),
    "two_factor.policy":             Spec(TwoFactorPolicyForm, role="admin"),
}
#: Routes with no form class: what each reads from the request, by kind (as the fields below), and who posts.
RAW = {
    "admin.staff_deactivate":        ({}, "admin"),
    "admin.staff_reactivate":        ({}, "admin"),
    "admin.staff_end_sessions":      ({}, "admin"),
    "auth.logout":                   ({}, OWN),
    "auth.lock":                     ({"next": "text"}, OWN),
    "clinic.closure_remove":         ({}, "admin"),
    "feeds.issue":                   ({}, "nurse"),
    "feeds.revoke":                  ({}, "nurse"),
    "infusion.end":                  ({}, "nurse"),
    "messaging.confirm_session":     ({"via": "text"}, "coordinator"),
    "messaging.sms_inbound":         ({"From": "text", "Body": "text"}, None),
    "messaging.sms_status":          ({"MessageSid": "text", "MessageStatus": "text", "ErrorCode": "text"}, None),
    "notes.remove_adverse_event":    ({}, "nurse"),
    "reports.verify_upload":         ({"pdf": "file"}, "physician"),
    "schedule.move_to_today":        ({}, "nurse"),
    "tablets.revoke":                ({}, "admin"),
    "restricted.review":             ({}, "admin"),
    "two_factor.start":              ({}, "nurse"),
    "two_factor.reset":              ({}, "admin"),
}
#: Fields a view reads beside its form class.
EXTRA = {"patients.create": {"different_from": "hidden"}, "series.order": {"step": "hidden", "plan": "hidden"},
         "message_templates.edit": {"action": "hidden"}}
#: Routes that end their poster's session or change a session's state for good: sent last.
LAST = ("restricted.manage", "auth.logout", "admin.staff_deactivate", "two_factor.reset",
        "infusion.end", "series.stop", "schedule.move_to_today",
        "schedule.change_status", "infusion.discharge", "notes.sign", "notes.complete")
#: Routes only the long form sends to: each answer renders a PDF (seconds a request).
LONG_ONLY = ("reports.series_preview",)
# fmt: on

Field = namedtuple("Field", "name kind low high choices max_length")


def post_routes(app):
    return {rule.endpoint: rule for rule in app.url_map.iter_rules() if "POST" in rule.methods}


def declared_range(field):
    ranges = [v for v in field.validators if isinstance(v, NumberRange)]
    return (ranges[0].min, ranges[0].max) if ranges else (None, None)


def max_length(field):
    lengths = [v.max for v in field.validators if isinstance(v, Length) and v.max not in (None, -1)]
    return min(lengths) if lengths else None


KINDS = {"IntegerField": "number", "DecimalField": "number", "FloatField": "number", "DateField": "date",
         "TimeField": "time", "DateTimeLocalField": "datetime", "DateTimeField": "datetime",
         "SelectField": "choice", "RadioField": "choice", "AnswerField": "choice", "SelectMultipleField": "choice",
         "BooleanField": "boolean", "PasswordField": "password", "HiddenField": "hidden", "FileField": "file"}


def choice_values(choices):
    if not choices or callable(choices):
        return []
    if isinstance(choices, dict):  # option groups
        return [value for group in choices.values() for value in choice_values(group)]
    return [getattr(choice, "value", None) if not isinstance(choice, (tuple, list, str)) else
            (choice if isinstance(choice, str) else choice[0]) for choice in choices]


def flatten(field):
    """A bound field, or the leaf fields of a FieldList / FormField (two list entries at least)."""
    kind = type(field).__name__
    if kind == "FieldList":
        while len(field.entries) < 2 and (field.max_entries is None or len(field.entries) < field.max_entries):
            field.append_entry()
        return [leaf for entry in field.entries for leaf in flatten(entry)]
    if kind == "FormField":
        return [leaf for sub in field for leaf in flatten(sub)]
    if kind in {"CSRFTokenField", "SubmitField"}:
        return []
    low, high = declared_range(field)
    choices = [str(value) for value in choice_values(getattr(field, "choices", None))]
    kind = KINDS.get(kind, "text")
    if kind == "text" and type(field.widget).__name__ == "HiddenInput":
        kind = "hidden"
    return [Field(field.name, kind, low, high, choices, max_length(field))]


def form_fields(app, endpoint, ids):
    """The fields a route's form posts, as its view names them."""
    if endpoint in RAW:
        return [Field(name, kind, None, None, [], None) for name, kind in RAW[endpoint][0].items()]
    spec = FORMS[endpoint]
    prefix = spec.prefix(ids) if callable(spec.prefix) else (spec.prefix or "")
    with app.test_request_context():
        kwargs = {"route": "iv"} if spec.form is ProtocolForm else {}
        form = spec.form(formdata=None, prefix=prefix, meta={"csrf": False}, **kwargs)
        fields = [leaf for field in form for leaf in flatten(field)]
    extra = [Field(name, kind, None, None, [], None) for name, kind in EXTRA.get(endpoint, {}).items()]
    return [*fields, *extra, Field(FIELD, "hidden", None, None, [], None)]


# --- what Hypothesis sends ---------------------------------------------------------------------------

HOSTILE_CHARACTERS = ["\x00", "\ud800", "\udfff", "\u202e", "\u202d", "\u2066", "\u200f", "\u061c", "\ufeff",
                      "\uffff", "\r\n", "\t", "\x1b[31m", "\U0001f489", "\u0301", "e\u0301", "\u00a0", "%00", "'\"<>&"]


class Long(str):
    """A 10 KB string that reports itself in a line, so a failing example stays readable."""

    def __repr__(self):
        return f"Long({self[:12]!r}… {len(self)} characters)"


def long_text(piece):
    return Long((piece * (10_240 // max(len(piece), 1) + 1))[:10_240])


text = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(HOSTILE_CHARACTERS + list("ab1 ")), min_size=1, max_size=12).map("".join),
    st.text(min_size=1, max_size=4).map(long_text),
    st.sampled_from(["", " ", "null", "None", "undefined", "[]", "{}", "0", "-1", "✓", "مرحبا", "שלום\u202eabc"]),
)


def numbers(low, high):
    bounds = [b for b in (low, high) if b is not None]
    edges = [str(v) for b in bounds for v in (b - 1, b, b + 1, Decimal(str(b)) - Decimal("0.01"))]
    return st.one_of(
        st.sampled_from([*edges, "NaN", "nan", "sNaN", "inf", "-inf", "Infinity", "-Infinity", "1e309", "-1e309",
                         "1E+400", "-0", "-1", "-120", "0", str(2**63), str(-(2**63) - 1), "9" * 40, "0x10", " 12 ",
                         "1,5", "½", "١٢٣", "１２", "12.", ".5", "1_000", "+5", "12abc", ""]),
        st.integers().map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
    )


dates = st.one_of(
    st.sampled_from(["0001-01-01", "9999-12-31", "10000-01-01", "1899-12-31", "2026-02-30", "2026-13-01",
                     "2026-00-10", "26-11-26", "2026/11/26", "11/26/2026", "2026-11-26T10:00", "2026-W48",
                     "+002026-11-26", "२०२६-११-२६", "2026-11-26\x00", "", "today"]),
    st.dates().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
)
times = st.one_of(st.sampled_from(["00:00", "23:59", "24:00", "-1:00", "10:60", "10:10:10", "99:99", "1010",
                                   "10:10 PM", "", "noon"]), st.times().map(lambda t: t.isoformat()))
datetimes = st.one_of(st.sampled_from(["0001-01-01T00:00", "9999-12-31T23:59", "2026-11-26T24:00",
                                       "2026-11-26 10:00", ""]),
                      st.datetimes().map(lambda d: d.isoformat(timespec="minutes")))


def value_of(field):
    if field.kind == "number":
        return numbers(field.low, field.high)
    if field.kind == "date":
        return dates
    if field.kind == "time":
        return times
    if field.kind == "datetime":
        return datetimes
    if field.kind == "choice":
        return st.one_of(st.sampled_from(field.choices), text) if field.choices else text
    if field.kind == "boolean":
        return st.sampled_from(["y", "on", "true", "", "0", "false", "\x00"])
    if field.kind == "file":
        return st.binary(max_size=200)
    return text


#: How a submission is sent: a form (each field once, or twice with two values), multipart, JSON to a
#: form route, plain text, or an empty body.
SHAPES = ("form", "form", "form", "duplicated", "multipart", "json", "typed json", "text", "empty")
#: What a JSON body may hold in place of a form's text: each field takes one, in turn.
JSON_VALUES = (1, -1.5, True, None, 1e308, [], ["a", "\ud800"], {"nested": "\x00"}, 2**70)


def submissions(fields):
    values = st.fixed_dictionaries({f.name: st.one_of(st.none(), value_of(f)) for f in fields})
    seconds = st.fixed_dictionaries({f.name: value_of(f) for f in fields})
    return st.tuples(st.sampled_from(SHAPES), values, seconds)


def encode(value):
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def urlencoded(pairs):
    return "&".join(f"{quote(k)}={quote(encode(v))}" for k, v in pairs).encode()


def multipart(pairs, boundary="hostile-boundary-7MA4YWxk"):
    parts = []
    for name, value in pairs:
        filename = b'; filename="upload.pdf"' if isinstance(value, bytes) else b""
        parts.append(b"--" + boundary.encode() + b"\r\nContent-Disposition: form-data; name=\"" + name.encode()
                     + b'"' + filename + b"\r\n\r\n" + encode(value) + b"\r\n")
    return b"".join(parts) + b"--" + boundary.encode() + b"--\r\n", f"multipart/form-data; boundary={boundary}"


def request_body(shape, values, seconds, token):
    """(body bytes, content type) for one submission; the CSRF token rides in the form or the header."""
    pairs = [(name, value) for name, value in values.items() if value is not None]
    if shape == "duplicated":
        pairs = [pair for name, value in pairs for pair in ((name, value), (name, seconds[name]))]
    pairs.append(("csrf_token", token))
    if shape == "typed json":
        pairs = [(k, v if k == "csrf_token" else JSON_VALUES[n % len(JSON_VALUES)]) for n, (k, v) in enumerate(pairs)]
    if shape in {"json", "typed json"}:
        plain = {k: v.decode("latin-1") if isinstance(v, bytes) else v for k, v in pairs}
        return json.dumps(plain).encode(), "application/json"
    if shape == "text":
        return "\n".join(f"{k}={v}" for k, v in pairs if not isinstance(v, bytes)).encode("utf-8", "surrogatepass"), \
            "text/plain"
    if shape == "empty":
        return b"", "application/x-www-form-urlencoded"
    if shape == "multipart" or any(isinstance(v, bytes) for _, v in pairs):
        return multipart(pairs)
    return urlencoded(pairs), "application/x-www-form-urlencoded"


# --- the demo clinic as the target -------------------------------------------------------------------


def first(model, *where):
    return db.session.scalar(select(model.id).where(*where).order_by(model.id).limit(1))


def common_ids(app, clock):
    """A real object for every URL argument of the routes, in the demo clinic (sessions aside)."""
    from dataclasses import replace

    from opsmgr.auth.models import StaffUser
    from opsmgr.auth.tablets import enrol_tablet
    from opsmgr.followups.models import FollowUp
    from opsmgr.infusion.models import InChairAlert
    from opsmgr.notes.models import AdverseEvent
    from opsmgr.patients import service as patients
    from opsmgr.schedule.models import Chair, ClinicClosure
    from opsmgr.series.models import Protocol
    from opsmgr.tasks.models import PhysicianTask
    from tests.factories import FACTORY_ACTOR, create_patient

    with app.app_context():
        target = create_user(role="nurse", username=None, password=DEMO_PASSWORD, now=clock())
        admin = replace(FACTORY_ACTOR, user_id=first(StaffUser, StaffUser.username == "admin"))
        tablet = enrol_tablet("Fuzzed tablet", actor=admin, now=clock())[0].id
        # A chart of its own for the patient forms: a medication and a weight to stop and strike, and no
        # scores, so a refusal re-renders the chart without drawing a trend.
        patient = create_patient(now=clock())
        medication = patients.add_medication(patient, name="Lamotrigine", med_class="lamotrigine",
                                             started_on=date(2025, 1, 1), stopped_on=None, actor=FACTORY_ACTOR,
                                             now=clock())
        weight = patients.add_weight(patient, kg=72, measured_on=date(2026, 11, 1), actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        return {"user_id": target.id, "tablet_id": tablet, "chair_id": first(Chair), "chart": patient.id,
                "protocol_id": first(Protocol), "closure_id": first(ClinicClosure) or 1,
                "alert_id": first(InChairAlert) or 1, "vital_sign_id": first(VitalSign) or 1,
                "event_id": first(AdverseEvent) or 1, "item_id": first(FollowUp) or 1,
                "task_id": first(PhysicianTask) or 1, "medication_id": medication.id,
                "entry_id": weight.id, "gate": "start", "code": "BP_SOFT_GATE", "kind": "weights",
                "document_id": "NOSUCHDOCUMENT", "break_glass_id": 1}


def session_ids(app, status):
    """A demo session in `status` (or the first one), with its series and patient."""
    with app.app_context():
        visit = db.session.get(InfusionSession, first(InfusionSession, InfusionSession.status == status)
                               or first(InfusionSession))
        return {"session_id": visit.id, "series_id": visit.series_id, "patient_id": visit.series.patient_id}


class Target:
    """The app, one signed-in client per role (signed in again when a route ended its session), and
    what the app raised or logged."""

    def __init__(self, app, clock):
        self.app, self.clock, self.clients, self.raised, self.sent = app, clock, {}, [], 0
        self.statuses, self.kept_checks = {}, 0
        got_request_exception.connect(self._raised, app)

    def _raised(self, sender, exception, **extra):
        self.raised.append(repr(exception))

    @contextmanager
    def logging_errors(self):
        """Count as raised every error the app logs (core.errors logs each unhandled exception)."""
        handler = logging.Handler(logging.ERROR)
        handler.emit = lambda record: self.raised.append(record.getMessage())
        logger = logging.getLogger("opsmgr")
        logger.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)

    def client(self, role):
        if role not in self.clients:
            client = self.app.test_client()
            if role == OWN:  # a nurse of its own, new after each sign-out: wrong passwords may have locked the last
                with self.app.app_context():
                    user = create_user(role="nurse", username=None, password=DEMO_PASSWORD, now=self.clock())
                sign_in(client, user.username, DEMO_PASSWORD)
            elif role:
                sign_in(client, role, DEMO_PASSWORD)
            self.clients[role] = client
        return self.clients[role]

    def post(self, role, url, body, content_type):
        client = self.client(role)
        headers = {"X-CSRFToken": client.csrf_token()} if content_type == "application/json" else {}
        self.sent += 1
        response = client.post(url, data=body, content_type=content_type, headers=headers)
        if response.status_code == 302 and response.location.startswith("/login") and role:
            self.clients.pop(role)  # this route (or a hostile value) ended the session: sign in afresh
        return response


def url_of(app, rule, ids):
    values = {name: ids[name] for name in rule.arguments}
    return app.url_map.bind("localhost").build(rule.endpoint, values, method="POST")


def kept_text(fields, values, body):
    """Typed text a re-rendered form lost: plain values only (the form's own cleaning aside)."""
    lost = []
    for field in fields:
        value = values.get(field.name)
        if field.kind != "text" or not isinstance(value, str) or field.name in NOT_SHOWN:
            continue
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9 .,]{2,40}", value) or value != value.strip():
            continue
        if field.max_length is not None and len(value) > field.max_length:
            continue
        if body.count(f'name="{field.name}"') != 1:
            continue  # the form is not shown again (its state moved on), or one copy per target: which is it?
        if escape(value, quote=False) not in body:
            lost.append(field.name)
    return lost


#: Typed values a refused form does not show again, by design (passwords and hidden fields are not checked).
NOT_SHOWN = {FIELD, "csrf_token", "confirm"}


def sweep(target, endpoint, rule, ids, examples):
    fields = form_fields(target.app, endpoint, ids)
    role = FORMS[endpoint].role if endpoint in FORMS else RAW[endpoint][1]
    url = url_of(target.app, rule, ids)

    # No shrinking: a failure is reported as found (derandomized, it reproduces), not minimised for minutes.
    @settings(max_examples=examples, derandomize=True, database=None, deadline=None, print_blob=False,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(submissions(fields))
    def submit(submission):
        shape, values, seconds = submission
        body, content_type = request_body(shape, values, seconds, target.client(role).csrf_token())
        response = target.post(role, url, body, content_type)
        status = response.status_code
        target.statuses[status] = target.statuses.get(status, 0) + 1
        assert status < 500, f"{endpoint} answered {status} to {shape} {reprlib.repr(values)}"
        assert not target.raised, f"{endpoint} raised {target.raised}"
        if shape == "form" and status in {400, 422} and response.mimetype == "text/html":
            target.kept_checks += 1
            lost = kept_text(fields, values, response.get_data(as_text=True))
            assert not lost, f"{endpoint} re-rendered the form without the typed {lost}"

    submit()


# --- the stored values against the declared ranges ---------------------------------------------------

# fmt: off
#: (model column, the form class and field that bounds it)
STORED = [
    (VitalSign.systolic, VitalsForm, "systolic"), (VitalSign.diastolic, VitalsForm, "diastolic"),
    (VitalSign.heart_rate, VitalsForm, "heart_rate"), (VitalSign.spo2, VitalsForm, "spo2"),
    (ChecklistResponse.systolic, ChecklistForm, "systolic"), (ChecklistResponse.diastolic, ChecklistForm, "diastolic"),
    (ChecklistResponse.heart_rate, ChecklistForm, "heart_rate"), (ChecklistResponse.spo2, ChecklistForm, "spo2"),
    (ChecklistResponse.temperature_c, ChecklistForm, "temperature_c"),
    (ChecklistResponse.respiratory_rate, ChecklistForm, "respiratory_rate"),
    (ChecklistResponse.weight_kg, ChecklistForm, "weight_kg"),
    (PatientWeight.kg, WeightForm, "kg"),
    (ControlledSubstanceEntry.drawn_mg, ControlledSubstanceForm, "drawn_mg"),
    (ControlledSubstanceEntry.given_mg, ControlledSubstanceForm, "given_mg"),
    (ControlledSubstanceEntry.wasted_mg, ControlledSubstanceForm, "wasted_mg"),
]
# fmt: on
#: Columns whose range is the clinic's, not a form's: (column, low, high).
STORED_FIXED = [(VitalSign.moaas, 0, 5), (Score.total, 0, 27), (DoseOrder.mg_per_kg, 0, 10),
                (DoseRecord.mg_per_kg, 0, 10), (DoseRecord.weight_kg, 1, 500), (DoseRecord.dose_mg, 0, 5000)]


def bounds(app, form_class, name):
    with app.test_request_context():
        return declared_range(form_class(formdata=None, meta={"csrf": False})[name])


def out_of_range(app):
    found = []
    checks = [(column, *bounds(app, form, name)) for column, form, name in STORED] + STORED_FIXED
    with app.app_context():
        for column, low, high in checks:
            assert low is not None and high is not None, f"{column} has no declared range"
            for value in db.session.scalars(select(column).where(column.is_not(None))):
                if not low <= value <= high:
                    found.append(f"{column}={value} outside {low}..{high}")
    return found


# --- the tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_post_route_has_a_known_form(backend, app):
    routes = set(post_routes(app))
    assert not set(FORMS) & set(RAW)
    assert routes == set(FORMS) | set(RAW), (
        f"POST routes with no form here (add one to FORMS or RAW): {sorted(routes - set(FORMS) - set(RAW))}; "
        f"entries for routes that are gone: {sorted((set(FORMS) | set(RAW)) - routes)}")


def order(endpoints):
    return sorted(endpoints, key=lambda e: (e in LAST, LAST.index(e) if e in LAST else 0, e))


@pytest.mark.long
@pytest.mark.parametrize("backend", BACKENDS if LONG_RUN else ["sqlite"], indirect=True)
def test_hostile_submissions_to_every_route_get_no_5xx_and_store_nothing_out_of_range(
        backend, demo_clinic, clock, long_run):
    app = demo_clinic.app
    routes = post_routes(app)
    # On PostgreSQL the demo clinic lives in one rolled-back transaction, whose savepoints slow every
    # statement as they pile up: a quarter of the submissions there (the database-specific inputs, NUL and
    # lone surrogates, are as likely in each), all of them on SQLite.
    share = 1 if backend == "sqlite" else PG_SHARE
    per_route = -(-TOTAL // (len(routes) * share)) if long_run else SHORT
    target = Target(app, clock)
    ids, failures = common_ids(app, clock), []
    with target.logging_errors():
        sweep_all(target, routes, ids, per_route, failures, long_run)
    print(f"\n{target.sent} hostile submissions to {len(routes)} routes; statuses {sorted(target.statuses.items())}; "
          f"{target.kept_checks} refusals checked for the typed text")
    assert not failures, "\n".join(failures)
    # Hypothesis stops early on a route whose inputs it has exhausted (a button has few): most of the share.
    assert target.sent >= (0.8 * TOTAL / share if long_run else len(routes) - len(LONG_ONLY))
    assert not out_of_range(app)


def sweep_all(target, routes, ids, per_route, failures, long_run):
    """Sweep every route in turn; a route's failure is listed and the sweep goes on."""
    for endpoint in order(routes):
        status = FORMS[endpoint].status if endpoint in FORMS else "infusing"
        if long_run or endpoint not in LONG_ONLY:
            try:
                visit = session_ids(target.app, status)
                if endpoint.startswith("patients."):
                    visit["patient_id"] = ids["chart"]
                sweep(target, endpoint, routes[endpoint], {**ids, **visit}, per_route)
            except Exception as error:  # noqa: BLE001 - every route is swept; the failures are listed at the end
                failures.append(f"{endpoint}: {type(error).__name__}: {str(error).splitlines()[0][:300]}")
                target.raised.clear()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_what_the_sweep_found_is_refused_and_keeps_the_typed_reason(backend, demo_clinic, clock):
    """The holes the sweep found, each now refused (a 4xx, or the sign-in page again): a lone surrogate in a
    JSON sign-in (a 500 on both databases), an unreadable stop date beside a start date, a signalling NaN
    in the policy and in a series order; and a refused cancellation shows its reason again."""
    from tests.test_policy import form_values

    app = demo_clinic.app
    target, ids, visit = Target(app, clock), common_ids(app, clock), session_ids(demo_clinic.app, "scheduled")
    cases = [
        (None, "/login", "json", [("username", "nurse\ud800"), ("password", "x")]),
        ("nurse", f"/patients/{ids['chart']}/medications", "form",
         [("name", "Lithium"), ("med_class", "lithium"), ("started_on", "2025-01-01"), ("stopped_on", "14/06/4562")]),
        ("admin", "/admin/policy/", "form", [*form_values().items(), ("dose_mg_per_kg_low", "sNaN")]),
        ("physician", f"/patients/{visit['patient_id']}/series/new", "form",
         [("protocol_id", str(ids["protocol_id"])), ("indication", "trd"), ("start_on", "2026-12-01"),
          ("preferred_time", "09:00"), ("dose_mg_per_kg", "sNaN")]),
        ("nurse", f"/sessions/{visit['session_id']}/status", "form",
         [("target", "cancelled"), ("reason", "Kept " * 70)]),
    ]
    with target.logging_errors():
        for role, url, shape, pairs in cases:
            body, content_type = request_body(shape, dict(pairs), {}, target.client(role).csrf_token())
            response = target.post(role, url, body, content_type)
            assert response.status_code in (200, 400, 422), (url, response.status_code)  # refused, not a 500
    assert not target.raised
    assert "Kept Kept" in response.get_data(as_text=True)
