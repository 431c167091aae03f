"""Reminder texts an admin edits: Jinja in a sandbox, checked when saved, rendered for the scheduler.

A template may hold only the placeholders of rules.reminders.PLACEHOLDERS, whole, and
{% if %} … {% endif %} around them: no attribute access, filters, calls or other tags. Everything
else is refused at save with the line it is on, so the scheduler never meets a broken template; if
one reaches it anyway (a row written by hand), the default text goes out instead.
"""
import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import current_app
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select

from opsmgr.audit.service import record
from opsmgr.auth.models import StaffUser
from opsmgr.core.clock import utcnow
from opsmgr.core.edits import EditConflict, Saved, audit_details, saved_by_audit
from opsmgr.core.merge import merge_edit
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.messaging.models import MessageTemplate
from opsmgr.rules.findings import Problem
from opsmgr.rules.reminders import (
    DEFAULT_EMAIL_BODY,
    DEFAULT_EMAIL_SUBJECT,
    DEFAULT_SMS,
    HELP_REPLY,
    PLACEHOLDERS,
    instruction_values,
    visit_needs,
)
from opsmgr.rules.scheduling import local_to_utc

log = logging.getLogger(__name__)

#: The parts an admin edits, in page order: name -> default text.
PARTS = {"reminder_sms": DEFAULT_SMS, "reminder_email_subject": DEFAULT_EMAIL_SUBJECT,
         "reminder_email_body": DEFAULT_EMAIL_BODY}
#: Every text `render` knows; the HELP answer carriers require is not editable.
DEFAULTS = {**PARTS, "sms_help_reply": HELP_REPLY}
#: A longer text message is sent as three or more SMS segments: warned about, not refused.
SMS_WARN_CHARACTERS = 320
#: The fictional patient of the preview.
DEMO_FIRST_NAME = "Sam"
#: Audit trail: one object for the set of reminder texts.
AUDIT_ACTION, AUDIT_OBJECT, AUDIT_ID = "message_templates.saved", "message_template", "reminders"

SANDBOX = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, auto_reload=False)
#: What a template may contain besides text: whole placeholders, constants and {% if %} logic.
_ALLOWED = (nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const, nodes.If, nodes.CondExpr, nodes.Not,
            nodes.And, nodes.Or, nodes.Compare, nodes.Operand)


def normalize(text):
    """Text as stored and compared: Unix line ends, no surrounding space."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def _refusal(node):
    where = f"Line {node.lineno}"
    if isinstance(node, (nodes.Getattr, nodes.Getitem)):
        return f"{where}: use each placeholder whole; “.” or “[ ]” after a name is not allowed."
    if isinstance(node, nodes.Filter):
        return f"{where}: filters such as “|{node.name}” are not allowed; use the placeholder alone."
    if isinstance(node, nodes.Test):
        return f"{where}: tests such as “is {node.name}” are not allowed."
    if isinstance(node, nodes.Call):
        return f"{where}: calling anything is not allowed."
    return f"{where}: only placeholders such as {{{{ session_time }}}} and {{% if %}} … {{% endif %}} are allowed."


@lru_cache(maxsize=64)
def _checked(text):
    """(compiled template or None, problems) for a text; cached, as the scheduler renders the same few."""
    try:
        tree = SANDBOX.parse(text)
    except TemplateSyntaxError as error:
        return None, (f"Line {error.lineno}: {error.message.rstrip('.')}. Check that every {{{{ has its }}}} "
                      "and every {% if %} its {% endif %}.",)
    problems = list(dict.fromkeys(_refusal(node) for node in tree.find_all(nodes.Node)
                                  if not isinstance(node, _ALLOWED)))
    for name in sorted(meta.find_undeclared_variables(tree) - set(PLACEHOLDERS)):
        problems.append(f"Unknown placeholder {{{{ {name} }}}}: use only the placeholders listed on this page.")
    if problems:
        return None, tuple(problems)
    try:
        return SANDBOX.from_string(tree), ()
    except TemplateError as error:  # pragma: no cover - a tree that parsed compiles
        return None, (str(error),)


def template_problems(name, text):
    """What is wrong with `text` as the template `name`, as messages for the admin (empty: none)."""
    problems = list(_checked(normalize(text))[1])
    if name == "reminder_email_subject" and "\n" in normalize(text):
        problems.append("The subject must be one line.")
    return problems


def _render_text(name, text, values):
    template, problems = _checked(normalize(text))
    if problems:
        raise TemplateError(problems[0])
    rendered = template.render({key: values[key] for key in PLACEHOLDERS if key in values}).strip()
    return " ".join(rendered.split()) if name == "reminder_email_subject" else rendered


def render(name, values, texts=None):
    """The message part `name` (PARTS, or "sms_help_reply") with `values` ({placeholder: text}).
    The clinic's template when it has one (`texts`: saved_texts(), saves a query a message when rendering many);
    one that fails here (it was checked at save) is logged and the default used: a reminder goes out."""
    stored = texts.get(name) if texts is not None else _stored_body(name)
    if stored is not None and normalize(stored) != normalize(DEFAULTS[name]):
        try:
            return _render_text(name, stored, values)
        except TemplateError as error:
            log.warning("message template %s could not be rendered (%s); the default text was used",
                        name, type(error).__name__)
    return _render_text(name, DEFAULTS[name], values)


def _stored_body(name):
    return db.session.scalar(select(MessageTemplate.body).where(MessageTemplate.name == name))


def saved_texts():
    """{name: text} of the clinic's own wordings (one query), for `render(..., texts=)` over many messages."""
    return dict(db.session.execute(select(MessageTemplate.name, MessageTemplate.body)).all())


# --- what the page shows ------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredText:
    """A part as saved: its text, and for the clinic's own wording its version and who saved it."""

    text: str
    version: int | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def is_default(self):
        return self.version is None


def stored_texts():
    """{part: StoredText} for every part, the defaults where the clinic has no wording of its own (one query)."""
    rows = db.session.execute(
        select(MessageTemplate.name, MessageTemplate.body, MessageTemplate.version, MessageTemplate.updated_at,
               StaffUser.full_name)
        .outerjoin(StaffUser, StaffUser.id == MessageTemplate.updated_by_id)
        .where(MessageTemplate.name.in_(PARTS)))
    saved = {row.name: StoredText(normalize(row.body), row.version, row.updated_at, row.full_name) for row in rows}
    return {name: saved.get(name) or StoredText(normalize(default)) for name, default in PARTS.items()}


def clinic_values():
    """The clinic's placeholders, from the configuration."""
    return {"clinic_name": current_app.config["CLINIC_NAME"],
            "clinic_phone": current_app.config.get("CLINIC_PHONE") or "the clinic"}


def sample_values(now=None, policy=None):
    """Placeholders for the preview: a fictional patient, an IV session tomorrow at 10:00 clinic time."""
    if policy is None:
        from opsmgr.policy.service import current_policy

        policy = current_policy()[1]
    zone = current_app.config["CLINIC_TIMEZONE"]
    tomorrow = (now or utcnow()).astimezone(ZoneInfo(zone)).date() + timedelta(days=1)
    needs = visit_needs(local_to_utc(tomorrow, time(10), zone), "iv", policy, zone)
    return {**instruction_values(needs), **clinic_values(), "first_name": DEMO_FIRST_NAME}


@dataclass(frozen=True)
class Preview:
    """The parts rendered for the demo patient ({part: text}, a part with problems left out) and the problems."""

    texts: dict
    problems: dict

    @property
    def sms_length(self):
        return len(self.texts.get("reminder_sms", ""))

    @property
    def sms_is_long(self):
        return self.sms_length > SMS_WARN_CHARACTERS


def preview(texts, values):
    """Render what the admin typed (not saved) with `values`; each part's problems instead of its text."""
    rendered, problems = {}, {}
    for name in PARTS:
        found = template_problems(name, texts.get(name, ""))
        if found:
            problems[name] = found
        else:
            rendered[name] = _render_text(name, texts[name], values)
    return Preview(rendered, problems)


# --- saving -------------------------------------------------------------------------------------

def save_templates(texts, *, opened=None, pending=(), choices=None, actor, now):
    """Save the admin's wording of each part, merged with any change saved since the form was opened
    (`opened`: its fingerprints): a part only a colleague changed keeps theirs; both changed differently
    is an EditConflict until `choices` settle it. A part equal to its default goes back to the default.
    A template with problems is refused, naming them at its field."""
    problems = [Problem(name, message) for name in PARTS for message in template_problems(name, texts.get(name))]
    if problems:
        raise DomainError(problems, message="Not saved: correct the texts marked below.")
    # Locked, so a colleague saving at the same moment waits and is then merged with this save.
    rows = {row.name: row for row in db.session.scalars(
        select(MessageTemplate).where(MessageTemplate.name.in_(PARTS)).with_for_update()
        .execution_options(populate_existing=True))}
    theirs = {name: normalize(rows[name].body if name in rows else PARTS[name]) for name in PARTS}
    mine = {name: normalize(texts[name]) for name in PARTS if name in texts}
    merge = merge_edit(mine, theirs, opened=opened, pending=pending, choices=choices)
    saved_by = None
    if merge.conflicts or merge.taken_from_theirs:
        saved_by = saved_by_audit(AUDIT_ACTION, AUDIT_OBJECT, AUDIT_ID, actor)
    if merge.conflicts:
        raise EditConflict(merge, theirs, saved_by)
    changed = {name: _store(rows.get(name), name, merge.values[name], actor, now)
               for name in PARTS if merge.values[name] != theirs[name]}
    if changed:
        db.session.flush()
        versions = {name: "default" if row is None else row.version for name, row in changed.items()}
        record(AUDIT_ACTION, actor=actor, now=now, object_type=AUDIT_OBJECT, object_id=AUDIT_ID,
               details={**versions, **audit_details(merge)})
    return Saved(None, merge, saved_by, tuple(changed))


def _store(row, name, text, actor, now):
    """Write one part; the row, or None when the part is back to its default (no row)."""
    if text == normalize(PARTS[name]):
        if row is not None:
            db.session.delete(row)
        return None
    if row is None:
        row = MessageTemplate(name=name, body=text, updated_at=now, updated_by_id=actor.user_id)
        db.session.add(row)
    else:
        row.body, row.updated_at, row.updated_by_id = text, now, actor.user_id
    return row
