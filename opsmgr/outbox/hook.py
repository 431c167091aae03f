"""The after-commit hook: the ids a transaction enqueued, handed on once it has committed.

``enqueue()`` notes each new id against the session's innermost transaction, so a savepoint
that rolls back takes its ids with it and one that is released passes them to its parent. When
the outermost transaction commits, its ids go to ``app.config["OUTBOX_AFTER_COMMIT"]``; when a
transaction rolls back or its session closes, its ids are forgotten (``after_transaction_end``
runs after ``after_commit``, so whatever is left then never committed).

No SQL may run on the committing session, so the callable must use its own
(``service.dispatch_immediately`` pushes a fresh app context). The default is no callable: web
workers send nothing from a request, the scheduler process sends within seconds; the CLI and
tests may set ``dispatch_immediately``. A failing callable is logged and swallowed: the commit has
happened, and the scheduler still sends the rows.
"""
import logging

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_ENQUEUED = "outbox.enqueued"  # session.info key: {transaction: [message ids]}


def note_enqueued(session, message_id):
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_ENQUEUED, {}).setdefault(transaction, []).append(message_id)


def _enqueued(session):
    return session.info.get(_ENQUEUED) or {}


@event.listens_for(Session, "after_commit")
def _hand_off_committed(session):
    savepoint = session.get_nested_transaction()
    ids = _enqueued(session).pop(savepoint or session.get_transaction(), None)
    if not ids:
        return
    if savepoint is not None:
        session.info[_ENQUEUED].setdefault(savepoint.parent, []).extend(ids)
        return
    hand_off = has_app_context() and current_app.config.get("OUTBOX_AFTER_COMMIT")
    if not hand_off:
        return
    try:
        hand_off(list(ids))
    except Exception as error:  # noqa: BLE001 - the commit has happened; the scheduler sends these rows
        log.warning("outbox hand-off after commit failed with %s; the scheduler will send %d message(s)",
                    type(error).__name__, len(ids))


@event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted(session, transaction):
    # Runs after after_commit, so what is still here belongs to a rollback or a close.
    _enqueued(session).pop(transaction, None)
