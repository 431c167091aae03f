"""The rolled-back PostgreSQL harness (tests/transactions.py): what a test commits is gone after it,
ids come out as on a fresh database, and what the harness cannot do faithfully is refused, naming
the fresh_db marker, instead of passing quietly."""
import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select, text

from config import TestConfig
from opsmgr import create_app
from opsmgr.extensions import db
from opsmgr.schedule.models import Chair
from tests.transactions import NeedsFreshDatabase

pytestmark = pytest.mark.postgres_only


@contextmanager
def rolled_back_app(database, tmp_path):
    """An app on the worker's database inside one test transaction, as make_app builds it."""
    with database.transaction():
        app = create_app(TestConfig(database.url, tmp_path / "instance"))
        own = database.adopt(app)
        try:
            yield app
        finally:
            database.release(app, own)
            with app.app_context():
                db.engine.dispose()


def add_chair(app, name):
    with app.app_context():
        chair = Chair(name=name, position=9, is_active=True)
        db.session.add(chair)
        db.session.flush()
        chair_id = chair.id
        db.session.commit()
        return chair_id


def chair_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Chair))


def test_what_a_test_commits_is_rolled_back_and_ids_start_again_where_the_template_left_them(
        pg_rolled_back, tmp_path):
    with rolled_back_app(pg_rolled_back, tmp_path) as app:
        before = chair_count(app)
        first_id = add_chair(app, "Committed in the first test")
        assert chair_count(app) == before + 1, "a commit is visible to the rest of the test"
    with rolled_back_app(pg_rolled_back, tmp_path) as app:
        assert chair_count(app) == before
        assert add_chair(app, "Committed in the second test") == first_id


def test_a_second_connection_is_refused_with_the_marker_to_use(pg_rolled_back, tmp_path):
    with (rolled_back_app(pg_rolled_back, tmp_path) as app, app.app_context(),
          pytest.raises(NeedsFreshDatabase, match="fresh_db")):
        db.engine.connect()


def test_a_session_in_another_thread_is_refused_with_the_marker_to_use(pg_rolled_back, tmp_path):
    errors = []

    def query(app):
        with app.app_context():
            try:
                db.session.execute(text("SELECT 1"))
            except NeedsFreshDatabase as error:
                errors.append(str(error))

    with rolled_back_app(pg_rolled_back, tmp_path) as app:
        thread = threading.Thread(target=query, args=(app,))
        thread.start()
        thread.join(timeout=30)
    assert len(errors) == 1 and "fresh_db" in errors[0]


def test_statement_listeners_on_db_engine_see_the_statements_but_not_the_savepoints(pg_rolled_back, tmp_path):
    statements = []

    def listen(_conn, _cursor, statement, *_args):
        statements.append(statement.split()[0])

    with rolled_back_app(pg_rolled_back, tmp_path) as app:
        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", listen)
        try:
            add_chair(app, "Counted")
        finally:
            event.remove(engine, "before_cursor_execute", listen)
    assert statements == ["INSERT"], "the savepoints standing in for BEGIN and COMMIT are not seen"


def test_undoing_another_sessions_commit_is_reported(pg_rolled_back, tmp_path):
    with rolled_back_app(pg_rolled_back, tmp_path) as app:
        with app.app_context():
            db.session.scalar(select(func.count()).select_from(Chair))  # this session's transaction is open
            add_chair(app, "Committed inside")  # another app context, another session, commits
            db.session.rollback()
        violation = pg_rolled_back.violation
    assert violation and "fresh_db" in violation
