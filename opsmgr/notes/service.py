"""Session notes: drafts merged with a colleague's save, completion, signing that locks the session, addenda.

Every function flushes and leaves the commit to the caller. Every read a view makes of a note's
content and every write here is audited with the field names changed, never their text.
"""
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from opsmgr.audit.service import record
from opsmgr.auth.service import actor_for, reauthenticate
from opsmgr.checklist.models import ChecklistResponse
from opsmgr.core.edits import EditConflict, Saved, audit_details, saved_by_user
from opsmgr.core.errors import RecordLocked
from opsmgr.core.merge import Merge, merge_edit
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.infusion.models import InChairAlert
from opsmgr.notes.models import AdverseEvent, NoteAddendum, SessionNote
from opsmgr.patients.models import Patient, display_name
from opsmgr.permissions import can_add_addendum, can_sign_note
from opsmgr.policy.service import current_policy
from opsmgr.rules.findings import Problem
from opsmgr.rules.notes import completion_problems, signing_problems, unsigned_age
from opsmgr.schedule.models import Chair
from opsmgr.sessions import record as canonical
from opsmgr.sessions.lock import SIGNED_MESSAGE
from opsmgr.sessions.models import InfusionSession
from opsmgr.twofactor import service as two_factor

#: Copied by "start from the last session": the set and setting that tend to repeat.
CARRIED_FIELDS = ("mindset", "expectations", "worries", "music", "eye_mask", "lighting", "room", "support_person")


class NoteError(DomainError):
    """A refused note action: a message for the user and the field it belongs to, or the `problems`
    that keep a note from completion; `audited` refusals wrote their audit event."""

    def __init__(self, message, field=None, *, problems=(), audited=False):
        super().__init__(problems or [Problem(field, message)], audited=audited, message=message)
        self.field = field
        #: What keeps a note from completion, each at its field (empty for other refusals).
        self.completion = tuple(problems)


class StaleNote(NoteError):
    """A colleague saved the note after the version this action (completion) started from: nothing
    was written; the text they saved must be read first."""

    def __init__(self, note):
        super().__init__("A colleague changed this note after you opened it. Read the current text, then try again.")
        self.note = note


def note_for(visit):
    return db.session.scalar(select(SessionNote).where(SessionNote.session_id == visit.id))


def adverse_events_for(visit):
    return db.session.scalars(select(AdverseEvent).where(AdverseEvent.session_id == visit.id)
                              .order_by(AdverseEvent.onset_at, AdverseEvent.id)).all()


def addenda_for(note):
    if note is None:
        return []
    return db.session.scalars(select(NoteAddendum).where(NoteAddendum.note_id == note.id)
                              .order_by(NoteAddendum.signed_at, NoteAddendum.id)).all()


def _audit(action, visit, actor, now, outcome="ok", **details):
    record(action, actor=actor, now=now, outcome=outcome, object_type="session_note", object_id=visit.id,
           patient_id=visit.patient_id, details=details or None)


def _refuse_if_signed(note, visit):
    if note is not None and note.is_signed:
        raise RecordLocked("infusion_session", visit.id, SIGNED_MESSAGE)


def checklist_intention(visit):
    return db.session.scalar(select(ChecklistResponse.intention).where(ChecklistResponse.session_id == visit.id)) \
        or ""


def _new_note(visit, actor, now):
    note = SessionNote(session_id=visit.id, status="draft", intention=checklist_intention(visit),
                       created_at=now, created_by_id=actor.user_id, updated_at=now, updated_by_id=actor.user_id)
    db.session.add(note)
    return note


def save_draft(visit, values, *, expected_version, opened=None, pending=(), choices=None, actor, now):
    """Write the user's changes, merged with any save made since the form was opened: ``opened`` the
    fingerprints of the values it was opened with (None: opened on ``expected_version``, None for a
    note that did not exist yet). A field both changed differently refuses the save (EditConflict)
    until ``choices`` settle it; a field only a colleague changed keeps the colleague's text."""
    note = note_for(visit)
    _refuse_if_signed(note, visit)
    if note is None:
        if expected_version not in (None, 0):
            raise NoteError("This note no longer exists.")
        note = _new_note(visit, actor, now)
        merge, saved_by = Merge(dict(values)), None
    else:
        theirs = {name: getattr(note, name) for name in values}
        if opened is None and expected_version != note.version:
            opened = {}  # opened on another version, without saying on what: every difference is a choice
        merge = merge_edit(values, theirs, opened=opened, pending=pending, choices=choices)
        saved_by = None
        if merge.conflicts or merge.taken_from_theirs:
            saved_by = saved_by_user(note.updated_by_id, note.updated_at, actor)
        if merge.conflicts:
            raise EditConflict(merge, theirs, saved_by, version=note.version)
    changed = sorted(name for name, value in merge.values.items() if getattr(note, name) != value)
    for name in changed:
        setattr(note, name, merge.values[name])
    if changed or note.id is None:
        note.updated_at, note.updated_by_id = now, actor.user_id
        db.session.flush()
        _audit("note.drafted", visit, actor, now, fields=changed, status=note.status, version=note.version,
               **audit_details(merge))
    return Saved(note, merge, saved_by, tuple(changed))


def note_values(note, names):
    """The note's saved value of each named field."""
    return {name: getattr(note, name) for name in names}


def previous_note(visit):
    """The patient's most recent earlier session note, if any."""
    return db.session.scalar(
        select(SessionNote).join(InfusionSession, InfusionSession.id == SessionNote.session_id)
        .where(InfusionSession.patient_id == visit.patient_id, InfusionSession.starts_at < visit.starts_at)
        .order_by(InfusionSession.starts_at.desc()).limit(1))


def start_from_last(visit, *, actor, now):
    """Copy the previous note's set and setting into the fields still empty (never over typed text,
    whichever version the page showed: only empty fields are written)."""
    previous = previous_note(visit)
    if previous is None:
        raise NoteError("There is no earlier note for this patient to start from.")
    note = note_for(visit)
    _refuse_if_signed(note, visit)
    current = {name: getattr(note, name) if note is not None else None for name in CARRIED_FIELDS}
    values = {name: getattr(previous, name) for name in CARRIED_FIELDS
              if current[name] in (None, "") and getattr(previous, name) not in (None, "")}
    note = save_draft(visit, values, expected_version=note.version if note else None, actor=actor, now=now).row
    note.copied_from_session_id = previous.session_id
    db.session.flush()
    _audit("note.started_from_last", visit, actor, now, copied=sorted(values), source_session=previous.session_id)
    return note


def add_adverse_event(visit, values, *, actor, now):
    _refuse_if_signed(note_for(visit), visit)
    alert = db.session.get(InChairAlert, values["alert_id"]) if values.get("alert_id") else None
    if values.get("alert_id") and (alert is None or alert.session_id != visit.id):
        raise NoteError("That alert does not belong to this session.", "alert_id")
    event = AdverseEvent(session_id=visit.id, recorded_at=now, recorded_by_id=actor.user_id, **values)
    db.session.add(event)
    db.session.flush()
    _audit("note.adverse_event_added", visit, actor, now, adverse_event=event.id, kind=event.kind)
    return event


def remove_adverse_event(visit, event, *, actor, now):
    _refuse_if_signed(note_for(visit), visit)
    db.session.delete(event)
    db.session.flush()
    _audit("note.adverse_event_removed", visit, actor, now, adverse_event=event.id, kind=event.kind)


def _values(note):
    return {column: getattr(note, column) for column in ("mindset", "intention", "dissociation_clinician",
                                                          "post_session_state", "narrative")}


def complete_note(visit, *, expected_version, actor, now):
    """Mark the note complete: it goes on the physicians' unsigned list."""
    note = note_for(visit)
    _refuse_if_signed(note, visit)
    if note is None:
        raise NoteError("Write the note before marking it complete.")
    # A newer version saved by the same person (their own last autosave, sent as the page closed)
    # is what they are completing; a colleague's newer text must be read first.
    if expected_version != note.version and note.updated_by_id != actor.user_id:
        raise StaleNote(note)
    if note.status == "complete":
        raise NoteError("This note is already complete and waiting for a physician's signature.")
    problems = completion_problems(_values(note), session_status=visit.status)
    if problems:
        raise NoteError("The note cannot be marked complete yet.", problems=problems)
    note.status, note.completed_at, note.completed_by_id = "complete", now, actor.user_id
    note.updated_at, note.updated_by_id = now, actor.user_id
    db.session.flush()
    _audit("note.completed", visit, actor, now, version=note.version)
    return note


def sign_note(visit, *, physician, password, expected_version, ip, now, totp_code=None):
    """Sign with the physician's password (and a fresh code when they have two-factor on): freezes the
    note and the whole session, hashed."""
    actor = actor_for(physician, ip)
    if not can_sign_note(physician, None):
        raise NoteError("Only a physician can sign session notes.")
    # Lock the session row first, so nothing joins the aggregate between reading it and signing it,
    # and a second physician signing at the same moment waits, then reads the note as signed.
    db.session.execute(select(InfusionSession.id).where(InfusionSession.id == visit.id).with_for_update())
    note = db.session.scalar(select(SessionNote).where(SessionNote.session_id == visit.id)
                             .execution_options(populate_existing=True))
    _refuse_if_signed(note, visit)
    if note is None:
        raise NoteError("There is no note to sign.")
    problems = signing_problems(status=note.status, session_status=visit.status,
                                expected_version=expected_version, version=note.version)
    if problems:
        _audit("note.sign_refused", visit, actor, now, outcome="denied", reason=problems[0].message)
        raise NoteError(problems[0].message, problems[0].field, problems=problems, audited=True)
    if not reauthenticate(physician, password, ip=ip, now=now, purpose="note.sign"):
        raise NoteError("That password is not correct.", "password", audited=True)
    if not two_factor.check_signing_code(physician, totp_code, ip=ip, now=now, purpose="note.sign"):
        raise NoteError(two_factor.SIGNING_REFUSED, "totp_code", audited=True)
    db.session.flush()
    content, digest = canonical.aggregate_hash(visit.id)
    note.status, note.signed_at, note.signed_by_id = "signed", now, physician.id
    note.signer_name, note.signer_credentials = physician.full_name, physician.credentials or ""
    note.signed_content, note.content_hash = content, digest
    db.session.flush()
    _audit("note.signed", visit, actor, now, sha256=digest)
    return note


def verify_signature(note):
    """Whether the session as stored now still hashes to what was signed."""
    if note is None or not note.is_signed:
        return None
    content, digest = canonical.aggregate_hash(note.session_id, canonical.format_of(note.signed_content))
    return digest == note.content_hash and content == note.signed_content


def addendum_digest(note, *, author_id, author_name, author_credentials, reason, body, event_at, signed_at):
    document = {"note_sha256": note.content_hash, "session_id": note.session_id, "author_id": author_id,
                "author_name": author_name, "author_credentials": author_credentials, "reason": reason, "body": body,
                "event_at": canonical.canonical_value(event_at), "signed_at": canonical.canonical_value(signed_at)}
    return canonical.sha256_hex(canonical.canonical_bytes(document))


def add_addendum(visit, *, author, password, reason, body, event_at, ip, now):
    """Append a signed addendum to a signed note; the original is never touched."""
    actor = actor_for(author, ip)
    if not can_add_addendum(author, None):
        raise NoteError("Your role cannot add addenda.")
    note = note_for(visit)
    if note is None or not note.is_signed:
        raise NoteError("Addenda are for signed notes; edit the draft instead.")
    if event_at is not None and event_at > now:
        raise NoteError("A late entry cannot describe something in the future.", "event_on")
    if not reauthenticate(author, password, ip=ip, now=now, purpose="note.addendum"):
        raise NoteError("That password is not correct.", "password", audited=True)
    fields = {"author_id": author.id, "author_name": author.full_name, "author_credentials": author.credentials or "",
              "reason": reason, "body": body, "event_at": event_at, "signed_at": now}
    addendum = NoteAddendum(session_id=visit.id, note_id=note.id, content_hash=addendum_digest(note, **fields),
                            **fields)
    db.session.add(addendum)
    db.session.flush()
    _audit("note.addendum_signed", visit, actor, now, addendum=addendum.id, sha256=addendum.content_hash,
           late_entry=event_at is not None)
    return addendum


@dataclass(frozen=True)
class UnsignedNote:
    """One row of the physician's "Notes to sign": what the list shows, not the note's text."""

    session_id: int
    completed_at: datetime
    starts_at: datetime
    chair_name: str
    patient_id: int
    patient_name: str
    mrn: str


def unsigned_queue(*, now, limit=200):
    """Complete, unsigned notes, oldest session first, with their age since the session ended: in one
    statement of the columns the list shows (a physician's home opens often; whole notes, sessions and
    patients for up to 200 rows took most of its time)."""
    _, policy = current_policy()
    rows = db.session.execute(
        select(SessionNote.session_id, SessionNote.completed_at, InfusionSession.starts_at, InfusionSession.ends_at,
               Chair.name, Patient.id, Patient.legal_name, Patient.preferred_name, Patient.mrn)
        .join(InfusionSession, InfusionSession.id == SessionNote.session_id)
        .join(Chair, Chair.id == InfusionSession.chair_id).join(Patient, Patient.id == InfusionSession.patient_id)
        .where(SessionNote.status == "complete")
        .order_by(InfusionSession.ends_at, SessionNote.id).limit(limit))
    return UnsignedQueue([(UnsignedNote(session_id, completed_at, starts_at, chair, patient_id,
                                        display_name(legal, preferred), mrn), unsigned_age(ends_at, now, policy))
                          for session_id, completed_at, starts_at, ends_at, chair, patient_id, legal, preferred, mrn
                          in rows], policy.unsigned_note_flag_hours)


class UnsignedQueue(list):
    """The (note, age) rows, with the policy's flag threshold for the page to state."""

    def __init__(self, rows, flag_hours):
        super().__init__(rows)
        self.flag_hours = flag_hours


def status_by_session(session_ids):
    """{session id: note status} for the given sessions, in one query (for boards and lists)."""
    if not session_ids:
        return {}
    rows = db.session.execute(select(SessionNote.session_id, SessionNote.status)
                              .where(SessionNote.session_id.in_(list(session_ids))))
    return dict(rows.all())
