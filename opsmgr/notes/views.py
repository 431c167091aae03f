"""The session-note page: the draft (saved as the user types), completion, signing and addenda."""
from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from opsmgr.audit.service import record
from opsmgr.core import submissions
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.edits import EditConflict, attempt_merged, conflict_view, kept_message, merge_input, open_on, reopen
from opsmgr.core.guard import child_or_404, requires
from opsmgr.core.merge import opened_token
from opsmgr.core.web import attempt, current_actor
from opsmgr.extensions import db
from opsmgr.infusion.service import alerts_for
from opsmgr.notes import service
from opsmgr.notes.forms import (
    AE_KIND_LABELS,
    AE_OUTCOME_LABELS,
    FIELD_GROUPS,
    AddendumForm,
    AdverseEventForm,
    CompleteForm,
    NoteForm,
    SignForm,
)
from opsmgr.notes.models import AdverseEvent
from opsmgr.notes.prompts import prompts_for
from opsmgr.permissions import can_add_addendum, can_sign_note, can_view_note, can_write_note
from opsmgr.sessions.record import load_record
from opsmgr.sessions.service import session_or_404

bp = Blueprint("notes", __name__)

NOT_SAVED = "Not saved: correct the fields marked below. Everything you typed is still in the form."


def _version(note):
    return note.version if note is not None else 0


def _expected_version(form):
    """The version the user's text started from: None for a brand-new note, -1 when unreadable."""
    try:
        version = int(form.version.data)
    except (TypeError, ValueError):
        return -1
    return None if version == 0 else version


@bp.route("/sessions/<int:session_id>/note", methods=["GET", "POST"], endpoint="page")
@requires(can_view_note)
def note_page(session_id):
    """The note: read it (GET), or save the whole draft (POST, the form's own Save button)."""
    visit = session_or_404(session_id)
    if request.method == "POST":
        return _save(visit)
    note = service.note_for(visit)
    return _render(visit, note, _opened_form(visit, note))


def _opened_form(visit, note):
    """The draft form as saved, carrying what it was opened with."""
    form = NoteForm(formdata=None, obj=note, data={"version": _version(note)})
    if note is None:
        form.intention.data = service.checklist_intention(visit)
    return open_on(form, form.values())


def _save_call(visit, form):
    return lambda: service.save_draft(visit, form.values(), expected_version=_expected_version(form),
                                      **merge_input(form), actor=current_actor(), now=utcnow())


def _save(visit):
    if not can_write_note(current_user, visit):
        abort(403)
    session_id = visit.id
    form = NoteForm()
    if not form.validate_on_submit():
        return _render(visit, service.note_for(visit), form, status=400, problem=NOT_SAVED)

    def saved(result):
        kept = kept_message(result.kept, result.saved_by, form)
        return _done(" ".join(filter(None, ["Draft saved.", kept])), session_id)

    def refused(error):
        if isinstance(error, EditConflict):
            return _conflict(visit, form, error)
        return _render(visit, service.note_for(visit), form, status=409, problem=str(error))

    return attempt_merged(_save_call(visit, form), done=saved, refused=refused)


@bp.route("/sessions/<int:session_id>/note/autosave", methods=["POST"], endpoint="autosave")
@submissions.exempt
@requires(can_write_note)
def autosave(session_id):
    """The page's script saves here as the user types: JSON in reply, never a page. A save merged with
    a colleague's returns the fields it brought in, for the page to show them."""
    visit = session_or_404(session_id)
    form = NoteForm()
    if not form.validate_on_submit():
        return jsonify(status="invalid", errors={name: errors for name, errors in form.errors.items()}), 400

    def refused(error):
        if isinstance(error, EditConflict):
            return jsonify(status="conflict", message=str(error), version=error.version,
                           saved_by=error.saved_by.label if error.saved_by else "",
                           theirs={name: _shown(error.theirs[name]) for name in error.merge.conflicts}), 409
        return jsonify(status="refused", message=str(error)), 409

    def saved(result):
        note = result.row
        saved_at = note.updated_at.astimezone(clinic_zone()).strftime("%H:%M:%S")
        kept = {name: _as_input(getattr(note, name)) for name in result.kept}
        return jsonify(status="saved", version=note.version, saved_at=saved_at,
                       opened=opened_token(service.note_values(note, form.data_fields())), kept=kept,
                       kept_message=kept_message(result.kept, result.saved_by, form))

    return attempt_merged(_save_call(visit, form), done=saved, refused=refused)


def _shown(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


def _as_input(value):
    """A saved value as its input holds it (the eye-mask select holds yes/no)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _conflict(visit, form, error):
    """Nothing saved: the form holds the user's text and what was merged, with both versions and a
    choice beside each field changed on both sides."""
    note = service.note_for(visit)
    reopen(form, error)
    form.version.data = error.version
    return _render(visit, note, form, status=409, problem=str(error), merge=conflict_view(form, error))


@bp.route("/sessions/<int:session_id>/note/start-from-last", methods=["POST"], endpoint="start_from_last")
@requires(can_write_note)
def start_from_last(session_id):
    visit = session_or_404(session_id)
    form = CompleteForm()
    form.validate_on_submit()
    copied = ("Set and setting copied from the last session into the empty fields. Review them before "
              "completing.")
    return attempt(lambda: service.start_from_last(visit, actor=current_actor(), now=utcnow()),
                   done=lambda _: _done(copied, session_id, "info"),
                   refused=lambda error: _done(str(error), session_id, "danger"))


@bp.route("/sessions/<int:session_id>/note/adverse-events", methods=["POST"], endpoint="add_adverse_event")
@requires(can_write_note)
def add_adverse_event(session_id):
    visit = session_or_404(session_id)
    form = AdverseEventForm(prefix="ae").with_alerts(alerts_for(visit))
    if form.validate_on_submit():
        day = visit.starts_at.astimezone(clinic_zone()).date()
        return attempt(lambda: service.add_adverse_event(visit, form.values(day), actor=current_actor(), now=utcnow()),
                       done=lambda _: _done("Adverse event recorded.", session_id, anchor="adverse-events"),
                       refused=lambda error: _ae_refused(visit, form, error))
    return _ae_refused(visit, form)


def _ae_refused(visit, form, error=None):
    if error is not None:
        form[error.field or "kind"].errors = [*form[error.field or "kind"].errors, str(error)]
    return _render(visit, *_saved_note(visit), status=400, ae_form=form,
                   problem="The adverse event was not recorded: correct the fields marked below.")


@bp.route("/sessions/<int:session_id>/note/adverse-events/<int:event_id>/remove", methods=["POST"],
          endpoint="remove_adverse_event")
@requires(can_write_note)
def remove_adverse_event(session_id, event_id):
    visit = session_or_404(session_id)
    event = child_or_404(AdverseEvent, event_id, session_id=visit.id)
    return attempt(lambda: service.remove_adverse_event(visit, event, actor=current_actor(), now=utcnow()),
                   done=lambda _: _done("Adverse event removed from the draft.", session_id, anchor="adverse-events"),
                   refused=lambda error: _render(visit, *_saved_note(visit), status=409, problem=str(error)))


@bp.route("/sessions/<int:session_id>/note/complete", methods=["POST"], endpoint="complete")
@requires(can_write_note)
def complete(session_id):
    visit = session_or_404(session_id)
    form = CompleteForm()
    form.validate_on_submit()

    def refused(error):
        if isinstance(error, service.StaleNote):
            return _done("Not marked complete: a colleague changed this note after you opened it. Read the current "
                         "text below, then mark it complete.", session_id, "danger")
        return _render(visit, *_saved_note(visit), status=409, problem=str(error),
                       completion_problems=error.completion)

    return attempt(lambda: service.complete_note(visit, expected_version=_expected_version(form),
                                                 actor=current_actor(), now=utcnow()),
                   done=lambda _: _done("Note marked complete. It is now on the physicians' list to sign.", session_id),
                   refused=refused)


@bp.route("/sessions/<int:session_id>/note/sign", methods=["POST"], endpoint="sign")
@requires(can_sign_note)
def sign(session_id):
    visit = session_or_404(session_id)
    form = SignForm()
    if form.validate_on_submit():
        return attempt(lambda: service.sign_note(
            visit, physician=current_user._get_current_object(), password=form.password.data,
            totp_code=form.totp_code.data, expected_version=_expected_version(form), ip=request.remote_addr,
            now=utcnow()),
            done=lambda _: _done("Signed. The note and the whole session record are now locked.", session_id),
            refused=lambda error: _sign_refused(visit, form, error))
    return _sign_refused(visit, form)


def _sign_refused(visit, form, error=None):
    if error is not None:
        form._fields.get(error.field, form.password).errors.append(str(error))
    return _render(visit, *_saved_note(visit), status=400, sign_form=form)


@bp.route("/sessions/<int:session_id>/note/addenda", methods=["POST"], endpoint="add_addendum")
@requires(can_add_addendum)
def add_addendum(session_id):
    visit = session_or_404(session_id)
    form = AddendumForm()
    if form.validate_on_submit():
        return attempt(lambda: service.add_addendum(
            visit, author=current_user._get_current_object(), password=form.password.data, reason=form.reason.data,
            body=form.body.data, event_at=form.event_at(), ip=request.remote_addr, now=utcnow()),
            done=lambda _: _done("Addendum signed and added.", session_id, anchor="addenda"),
            refused=lambda error: _addendum_refused(visit, form, error))
    return _addendum_refused(visit, form)


def _addendum_refused(visit, form, error=None):
    if error is not None:
        form._fields.get(error.field, form.body).errors.append(str(error))
    return _render(visit, *_saved_note(visit), status=400, addendum_form=form)


def _saved_note(visit):
    """(note, its form) as saved: the page shown beside another form's refusal."""
    note = service.note_for(visit)
    return note, _opened_form(visit, note)


def _done(message, session_id, category="success", anchor=None):
    flash(message, category)
    return redirect(url_for("notes.page", session_id=session_id, _anchor=anchor))


def _render(visit, note, form, *, status=200, problem=None, merge=None, completion_problems=(),
            ae_form=None, sign_form=None, addendum_form=None):
    now = utcnow()
    alerts = alerts_for(visit)
    for name, prompt in prompts_for(visit.series.protocol).items():
        if not form[name].description:
            form[name].description = prompt
    signed = note is not None and note.is_signed
    html = render_template(
        "notes/page.html", session=visit, patient=visit.patient, note=note, form=form, groups=FIELD_GROUPS,
        problem=problem, merge=merge,
        completion_problems=completion_problems, adverse_events=service.adverse_events_for(visit), alerts=alerts,
        ae_form=ae_form or AdverseEventForm(prefix="ae", formdata=None).with_alerts(alerts),
        complete_form=CompleteForm(formdata=None, data={"version": _version(note)}),
        sign_form=sign_form or SignForm(formdata=None, data={"version": _version(note)}),
        addendum_form=addendum_form or AddendumForm(formdata=None), addenda=service.addenda_for(note),
        verified=service.verify_signature(note) if signed else None,
        previous=service.previous_note(visit) if not signed else None,
        editable=not signed and can_write_note(current_user, visit),
        may_sign=can_sign_note(current_user, note) and note is not None and note.status == "complete",
        may_amend=signed and can_add_addendum(current_user, note),
        ae_kind_labels=AE_KIND_LABELS, ae_outcome_labels=AE_OUTCOME_LABELS, record=load_record(visit.id))
    record("note.viewed", actor=current_actor(), now=now, object_type="session_note", object_id=visit.id,
           patient_id=visit.patient_id, details={"status": note.status if note else "none", "http": status})
    db.session.commit()
    return html, status
