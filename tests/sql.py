"""A statement counter on the engine, for tests that pages run a constant number of queries."""
from contextlib import contextmanager

from sqlalchemy import event

from opsmgr.extensions import db


@contextmanager
def count_statements(app, *, transaction_control=True):
    """Counts every statement the app's engine runs inside the block: `with count_statements(app) as n:`.
    Without `transaction_control`, SQLite's explicit BEGINs are left out (psycopg begins implicitly, so
    PostgreSQL's never show): the two databases' counts are then the same queries."""
    counter = {"n": 0}

    def before(_connection, _cursor, statement, *_args):
        if transaction_control or not statement.lstrip().upper().startswith("BEGIN"):
            counter["n"] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", before)
