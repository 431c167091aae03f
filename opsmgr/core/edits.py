"""Concurrent edits on a form: what the form carries of the values it was opened with, the choices it
posts for conflicting fields, the refusal that shows both versions, and who saved the other one.

The merge itself is opsmgr.core.merge (pure). A forged `opened` or `pending` field can only do what
choosing "Yours" for every field does, so neither is signed.
"""
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from flask import request
from sqlalchemy import select
from wtforms import BooleanField, HiddenField, SelectField

from opsmgr.audit.models import AuditEvent
from opsmgr.auth.models import StaffUser
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.merge import MINE, THEIRS, Merge, opened_token, read_token
from opsmgr.core.refusals import DomainError
from opsmgr.core.web import attempt
from opsmgr.extensions import db
from opsmgr.rules.findings import Problem

#: The hidden fields of a merging form; never part of its values.
MERGE_FIELDS = frozenset({"opened", "pending"})


class ChoiceFields:
    """Form mixin: the fields shown as conflicts, which need a choice before anything is saved."""

    pending = HiddenField()


class OpenedFields(ChoiceFields):
    """Form mixin for a record that keeps only its current row: the values it was opened with, as
    fingerprints (opsmgr.core.merge.opened_token)."""

    opened = HiddenField()


@dataclass(frozen=True)
class SavedBy:
    """Who saved the version a form is merged with, and when."""

    name: str
    at: datetime | None
    is_you: bool = False

    @property
    def who(self):
        return "you in another tab or window" if self.is_you else self.name

    @property
    def when(self):
        if self.at is None:
            return ""
        local = self.at.astimezone(clinic_zone())
        today = utcnow().astimezone(clinic_zone()).date()
        return f"{local:%H:%M}" if local.date() == today else f"{local:%d %b %Y %H:%M}"

    @property
    def label(self):
        return f"Saved by {self.who}" + (f" at {self.when}" if self.when else "")

    @property
    def both(self):
        """How a field changed on both sides came about, in words."""
        return "changed here and in another tab or window" if self.is_you else f"changed by you and by {self.name}"

    @property
    def changed_by(self):
        return f"changed by {self.who}" + (f" at {self.when}" if self.when else "")


@dataclass(frozen=True)
class Saved:
    """A merged save: the row written, the merge, who saved what it was merged with, what changed."""

    row: object
    merge: Merge
    saved_by: SavedBy | None = None
    changed: tuple = ()

    @property
    def kept(self):
        return self.merge.taken_from_theirs


class EditConflict(DomainError):
    """Nothing saved: both the user and a colleague changed these fields; each needs a choice.
    `merge.values` holds the user's text for them, `theirs` the saved values, `version` the saved
    version a new choice is made against."""

    def __init__(self, merge, theirs, saved_by, version=None):
        saved_by = saved_by or SavedBy("someone else", None)
        how = (f"you changed {_count(merge.conflicts)} here and also in another tab or window" if saved_by.is_you
               else f"you and {saved_by.name} both changed {_count(merge.conflicts)}")
        message = (f"Not saved yet: {how}. Choose which version to keep for each one below; nothing is saved "
                   "until you do.")
        super().__init__([Problem(name, message) for name in merge.conflicts], message=message)
        self.merge, self.theirs, self.saved_by, self.version = merge, theirs, saved_by, version


def _count(names):
    return "one field" if len(names) == 1 else f"{len(names)} fields"


def audit_details(merge):
    """The merge's part of an audit event: field names only, never values."""
    details = {}
    if merge.taken_from_theirs:
        details["merged"] = sorted(merge.taken_from_theirs)
    for side in (MINE, THEIRS):
        names = sorted(name for name, choice in merge.chosen.items() if choice == side)
        if names:
            details[f"chosen_{side}"] = names
    return details


def saved_by_user(user_id, at, actor):
    """The staff member with `user_id` as the author of the saved version."""
    name = db.session.scalar(select(StaffUser.full_name).where(StaffUser.id == user_id)) if user_id else None
    return SavedBy(name or "someone else", at, is_you=user_id is not None and user_id == actor.user_id)


def saved_by_audit(action, object_type, object_id, actor):
    """The author of a record's latest change, read from its audit event (rows that keep no author)."""
    row = db.session.execute(
        select(AuditEvent.user_id, AuditEvent.occurred_at, StaffUser.full_name)
        .outerjoin(StaffUser, StaffUser.id == AuditEvent.user_id)
        .where(AuditEvent.action == action, AuditEvent.object_type == object_type,
               AuditEvent.object_id == str(object_id))
        .order_by(AuditEvent.id.desc()).limit(1)).first()
    if row is None:
        return SavedBy("someone else", None)
    return SavedBy(row.full_name or "someone else", row.occurred_at,
                   is_you=row.user_id is not None and row.user_id == actor.user_id)


def pending_names(form):
    return [name for name in (form.pending.data or "").split(",") if name in form and name not in MERGE_FIELDS]


def merge_input(form, names=None):
    """What a posted form says for the merge: the fields shown as conflicts, the choice made for each,
    and (for a form that carries them) the fingerprints it was opened with (None: none sent).
    `names` maps a form field to its merge field where they differ."""
    names = names or {}
    pending = pending_names(form)
    given = {"pending": tuple(names.get(name, name) for name in pending),
             "choices": {names.get(name, name): request.form.get(f"choice-{name}") for name in pending}}
    if "opened" in form:
        given["opened"] = read_token(form.opened.data)
    return given


def open_on(form, values):
    """Mark a form as opened on `values` (the record as saved)."""
    form.opened.data = opened_token(values)
    form.pending.data = ""
    return form


def reopen(form, error, *, names=None, shown=None):
    """After a conflict: the form holds the merged values (the user's own where a choice is needed),
    is opened on the saved values, and lists the fields that need a choice. `names` maps a merge
    field to its form field where they differ; `shown(name, value)` gives a value as the field takes it."""
    names = names or {}
    for name, value in error.merge.values.items():
        target = names.get(name, name)
        if target in form:
            form[target].data = shown(name, value) if shown else value
            form[target].raw_data = None
    if "opened" in form:
        form.opened.data = opened_token(error.theirs)
    form.pending.data = ",".join(names.get(name, name) for name in error.merge.conflicts)
    return form


def conflict_view(form, error, *, names=None, shown=None):
    """What the page shows of a conflict: per field both versions as text, the saved version's author,
    and the fields brought in from it. `names` maps a merge field to its form field when they differ;
    `shown(name, value)` gives a value as the field takes it."""
    names, shown = names or {}, shown or (lambda name, value: value)
    shown_before = set(request.form.get("pending", "").split(","))
    fields = {}
    for name in error.merge.conflicts:
        target = names.get(name, name)
        # Still a conflict after a choice: the colleague's version changed again, so the choice is asked anew.
        chosen = request.form.get(f"choice-{target}") in (MINE, THEIRS)
        fields[target] = {"label": form[target].label.text,
                          "missing": target in shown_before and not chosen,
                          "again": target in shown_before and chosen,
                          "mine": displayed(form[target], shown(name, error.merge.values.get(name))),
                          "theirs": displayed(form[target], shown(name, error.theirs.get(name)))}
    return {"fields": fields, "saved_by": error.saved_by.label, "both": error.saved_by.both,
            "message": str(error),
            "kept": kept_message(error.merge.taken_from_theirs, error.saved_by, form, names, prefix="Brought in")}


def kept_message(kept, saved_by, form, names=None, prefix="Also kept"):
    """'Also kept: Phone, changed by J. Smith at 10:02.' — or '' when nothing was brought in."""
    if not kept:
        return ""
    names = names or {}
    labels = [form[names.get(name, name)].label.text if names.get(name, name) in form else name for name in kept]
    return f"{prefix}: {', '.join(labels)}, {saved_by.changed_by if saved_by else 'saved by someone else'}."


def displayed(form_field, value):
    """A value as the page shows it in a comparison: choice labels, Yes/No, (empty)."""
    if value is None or value == "":
        return "(empty)"
    if hasattr(form_field, "shown"):  # a field that shows stored values its own way (a phone number)
        return form_field.shown(value)
    if isinstance(value, bool) or isinstance(form_field, BooleanField):
        return "Yes" if value else "No"
    if isinstance(form_field, SelectField):
        for choice in form_field.choices:
            option, label = (choice.value, choice.label) if hasattr(choice, "value") else choice[:2]
            if option == value or str(option) == str(value):
                return label
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def attempt_merged(call, *, done, refused):
    """`attempt`, once more when a colleague's save landed between reading and writing (the version
    column or a unique index stopped it): the second try reads that save and merges with it."""
    return attempt(call, done=done, refused=refused, conflict=lambda _: attempt(call, done=done, refused=refused))
