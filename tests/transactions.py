"""PostgreSQL tests inside one transaction that is rolled back at the end of the test.

Each worker migrates one database once. A test then runs on one connection to it, inside an
outer transaction: every app the test builds gets a ``db.session`` bound to that connection with
``join_transaction_mode="create_savepoint"``, so the app's commits release savepoints and the
test's end rolls everything back (the pattern of SQLAlchemy's "joining a session into an
external transaction"; indico's suite runs this way). Tests that need more than this one
connection (races, threads, locks held across connections, the scheduler's advisory lock, what
another connection sees after a commit) carry ``@pytest.mark.fresh_db`` and get a database of
their own from the template instead.

What keeps the rolled-back run honest:
- every app's ``db.engine`` is the worker's engine, so statement listeners see the test's
  statements, and any second connection from it is refused with a message naming the marker;
- a session made in another thread is refused the same way (one connection cannot be shared
  by threads that are meant to race);
- the savepoints that stand in for each session's BEGIN and COMMIT go straight to the driver:
  statement counters see what they would see on a database of the test's own;
- a savepoint rolled back after another session committed inside it would silently undo that
  commit: the test fails and says so;
- sequences (which no rollback resets) go back to where the template left them for each test,
  so ids come out as on a fresh database.
"""
import threading
from contextlib import contextmanager

from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from opsmgr.extensions import db

FRESH_DB_HINT = ("Mark the test @pytest.mark.fresh_db: on PostgreSQL it then gets a database of its own "
                 "instead of one rolled-back transaction on one connection.")
SEQUENCES = ("SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), start_value, last_value "
             "FROM pg_sequences")


class NeedsFreshDatabase(RuntimeError):
    pass


class JoinedSession(FlaskSession):
    """``db.session`` in a rolled-back test: whatever the app, it works on the test's one connection."""

    #: The thread the current test runs in; set by RolledBackDatabase.transaction().
    owner = None

    def __init__(self, *args, **kwargs):
        if threading.get_ident() != JoinedSession.owner:
            raise NeedsFreshDatabase(f"a database session was opened in another thread. {FRESH_DB_HINT}")
        super().__init__(*args, **kwargs)

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        return self.bind


class SingleConnectionPool(NullPool):
    """Hands out one connection at a time: asking for a second means the test needs a database of its own."""

    in_use = False

    def _do_get(self):
        if self.in_use:
            raise NeedsFreshDatabase(f"the test opened a second database connection. {FRESH_DB_HINT}")
        record = super()._do_get()
        self.in_use = True
        return record

    def _do_return_conn(self, record):
        self.in_use = False
        super()._do_return_conn(record)


class RolledBackDatabase:
    """One worker's database for the tests that roll back, and the one connection they share."""

    def __init__(self, url):
        self.url = url
        self.engine = create_engine(url, poolclass=SingleConnectionPool)
        self.connection = None
        self._restore_sequences = None
        self._savepoints = []  # [name, another session committed inside it]
        self.violation = None
        self._send_savepoints_to_the_driver(self.engine.dialect)

    def _send_savepoints_to_the_driver(self, dialect):
        def driver(connection, sql):
            connection.connection.dbapi_connection.execute(sql)

        def savepoint(connection, name):
            driver(connection, f"SAVEPOINT {name}")
            self._savepoints.append([name, False])

        def release(connection, name):
            driver(connection, f"RELEASE SAVEPOINT {name}")
            self._pop(name, committed=True)

        def rollback_to(connection, name):
            driver(connection, f"ROLLBACK TO SAVEPOINT {name}")
            if self._pop(name, committed=False) and self.violation is None:
                self.violation = ("a session rolled back after another session had committed inside its "
                                  f"transaction, which on a database of the test's own would have kept that "
                                  f"commit. {FRESH_DB_HINT}")

        dialect.do_savepoint = savepoint
        dialect.do_release_savepoint = release
        dialect.do_rollback_to_savepoint = rollback_to

    def _pop(self, name, *, committed):
        """Forget savepoint `name` (and any opened after it); True if another session committed inside it."""
        names = [entry[0] for entry in self._savepoints]
        if name not in names:
            return False
        index = names.index(name)
        held_a_commit = self._savepoints[index][1]
        del self._savepoints[index:]
        if committed and self._savepoints:
            self._savepoints[-1][1] = True
        return held_a_commit

    def _connect(self):
        if self.connection is not None and not (self.connection.closed or self.connection.invalidated):
            return
        if self.connection is not None:
            self.connection.close()
        self.connection = self.engine.connect()
        if self._restore_sequences is None:
            self._restore_sequences = self._sequences_as_migrated()

    def _sequences_as_migrated(self):
        """One statement that puts every sequence back where the migrated database has it."""
        rows = self.connection.exec_driver_sql(SEQUENCES).all()
        self.connection.rollback()
        calls = [f"setval('{name}', {start}, false)" if last is None else f"setval('{name}', {last}, true)"
                 for name, start, last in rows]
        return "SELECT " + ", ".join(calls) if calls else None

    @contextmanager
    def transaction(self):
        """Run one test inside an outer transaction on the shared connection; roll it back at the end."""
        self._connect()
        if self.connection.in_transaction():  # left over from a test whose rollback failed
            self.connection.rollback()
        outer = self.connection.begin()
        if self._restore_sequences:
            self.connection.exec_driver_sql(self._restore_sequences)
        factory = db.session.session_factory
        saved_class, saved_kw = factory.class_, dict(factory.kw)
        factory.class_ = JoinedSession
        factory.configure(bind=self.connection, join_transaction_mode="create_savepoint")
        JoinedSession.owner = threading.get_ident()
        self._savepoints.clear()
        self.violation = None
        try:
            yield self
        finally:
            JoinedSession.owner = None
            factory.class_ = saved_class
            factory.kw.clear()
            factory.kw.update(saved_kw)
            self._close_leftover_sessions()
            try:
                outer.rollback()
            except Exception:  # noqa: BLE001 - a broken connection is replaced for the next test
                self.connection.invalidate()
            self._savepoints.clear()

    @staticmethod
    def _close_leftover_sessions():
        registry = db.session.registry.registry
        for scope, session in list(registry.items()):
            if isinstance(session, JoinedSession):
                session.close()
                registry.pop(scope, None)

    def adopt(self, app):
        return adopt_engine(app, self.engine)

    @staticmethod
    def release(app, own):
        release_engine(app, own)

    def close(self):
        if self.connection is not None and not self.connection.closed:
            self.connection.close()
        self.engine.dispose()


def adopt_engine(app, engine):
    """Make `engine` the app's `db.engine`; returns the app's own engine for release_engine()."""
    engines = db._app_engines[app]  # Flask-SQLAlchemy keeps one engine per app and bind key here
    own, engines[None] = engines[None], engine
    return own


def release_engine(app, own):
    db._app_engines[app][None] = own
