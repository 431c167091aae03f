"""A statement counter on the engine, for tests that pages run a constant number of queries."""
from contextlib import contextmanager

from sqlalchemy import event

from opsmgr.extensions import db


@contextmanager
def count_statements(app):
    """Counts every statement the app's engine runs inside the block: `with count_statements(app) as n:`."""
    counter = {"n": 0}

    def before(*_args):
        counter["n"] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", before)
