"""The follow-up worklist (the coordinator's home) and working one item."""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from opsmgr.audit.service import record
from opsmgr.core.clock import utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor, show_at_fields
from opsmgr.extensions import db
from opsmgr.followups import worklist
from opsmgr.followups.forms import DoneForm, EscalateForm, FilterForm, NotReachedForm
from opsmgr.permissions import can_work_followups

bp = Blueprint("followups", __name__, url_prefix="/worklist")


@bp.route("/")
@requires(can_work_followups)
def worklist_page():
    now = utcnow()
    form = FilterForm(request.args)
    valid = form.validate()
    criteria = worklist.Criteria(kind=form.kind.data or None if valid else None,
                                 due_by=form.due_by.data if valid else None,
                                 patient=(form.patient.data or "") if valid else "")
    work = worklist.coordinator_worklist(criteria, now=now)
    html = render_template("followups/worklist.html", form=form, work=work, now=now, labels=worklist.KIND_LABELS,
                           words=worklist.standing_words, overdue=worklist.is_overdue)
    record("worklist.viewed", actor=current_actor(), now=now,
           details={"items": len(work.items), "kind": criteria.kind or "", "filtered": bool(criteria.patient)})
    db.session.commit()
    return html


def _item_or_404(item_id):
    try:
        return worklist.load_item(item_id)
    except LookupError:
        abort(404)


def _item_page(item, *, done=None, escalate=None, status=200):
    now = utcnow()
    version = str(item.version)
    done = done or DoneForm(formdata=None, version=version)
    escalate = escalate or EscalateForm(formdata=None, version=version)
    html = render_template("followups/item.html", item=item, now=now, labels=worklist.KIND_LABELS,
                           words=worklist.standing_words, overdue=worklist.is_overdue, done_form=done,
                           escalate_form=escalate, not_reached_form=NotReachedForm(formdata=None, version=version),
                           call_kinds=worklist.CALL_KINDS, next_session=worklist.next_session(item.patient_id, now))
    record("follow_up.viewed", actor=current_actor(), now=now, object_type="follow_up", object_id=item.id,
           patient_id=item.patient_id, details={"kind": item.kind})
    db.session.commit()
    return html, status


@bp.route("/<int:item_id>")
@requires(can_work_followups)
def item_page(item_id):
    return _item_page(_item_or_404(item_id))


def _version(form):
    try:
        return int(form.version.data)
    except (TypeError, ValueError):
        return None


def _back(item):
    target = request.args.get("back")
    return redirect(url_for("worklists.physician_home") if target == "physician" else url_for(".worklist_page"))


@bp.post("/<int:item_id>/done")
@requires(can_work_followups)
def done(item_id):
    item = _item_or_404(item_id)
    form = DoneForm()
    if not form.validate_on_submit():
        return _item_page(item, done=form, status=422)

    def finished(_):
        flash(f"{worklist.KIND_LABELS[item.kind]} for {item.patient.legal_name}: done.", "success")
        return _back(item)

    def refused(error):
        show_at_fields(form, error, default="outcome")
        return _item_page(worklist.load_item(item_id), done=form, status=422)

    return attempt(lambda: worklist.complete(
        item, outcome=form.outcome.data, actor=current_actor(), now=utcnow(), version=_version(form),
        phq9=form.phq9_items(), phq9_difficulty=form.phq9_difficulty.data,
        rems_submitted_on=form.rems_submitted_on.data, rems_method=form.rems_method.data or None),
        done=finished, refused=refused)


@bp.post("/<int:item_id>/not-reached")
@requires(can_work_followups)
def not_reached(item_id):
    item = _item_or_404(item_id)
    form = NotReachedForm()
    if not form.validate_on_submit():
        return _item_page(item, status=422)

    def finished(result):
        if result.status == "escalated":
            flash(f"Not reached {result.misses} times: passed to a physician.", "warning")
        else:
            flash(f"Not reached: it comes back {worklist.standing_words(result, utcnow())}.", "info")
        return redirect(url_for(".worklist_page"))

    def refused(error):
        for _, message in error.errors:
            flash(message, "danger")
        return _item_page(worklist.load_item(item_id), status=409)

    return attempt(lambda: worklist.not_reached(item, actor=current_actor(), now=utcnow(), version=_version(form)),
                   done=finished, refused=refused)


@bp.post("/<int:item_id>/escalate")
@requires(can_work_followups)
def escalate(item_id):
    item = _item_or_404(item_id)
    form = EscalateForm()
    if not form.validate_on_submit():
        return _item_page(item, escalate=form, status=422)

    def finished(_):
        flash("Passed to a physician: it is on the physician's home now.", "success")
        return redirect(url_for(".worklist_page"))

    def refused(error):
        show_at_fields(form, error, default="note")
        return _item_page(worklist.load_item(item_id), escalate=form, status=422)

    return attempt(lambda: worklist.escalate(item, note=form.note.data, actor=current_actor(), now=utcnow(),
                                             version=_version(form)),
                   done=finished, refused=refused)
