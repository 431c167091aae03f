"""SQLite tests: a fresh copy of the migrated template for each test, at one path per worker.

Every app of the test uses the worker's one engine (built as the app would build its own, with the
same options), so SQLAlchemy's compiled-statement cache, which lives on the engine, carries over
from test to test. Between tests the engine's pool is emptied and the file replaced by a new copy
(a new file, so a connection left open by a test can never see the next test's data).

The working copy lives in memory (a folder on the /dev/shm tmpfs) where the machine has one: SQLite
still commits with the app's pragmas (WAL, synchronous=FULL), but each commit's fsync returns at
once instead of waiting for the disk. Without /dev/shm it lives in the worker's temporary folder.
"""
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from config import TestConfig
from opsmgr import create_app
from opsmgr.extensions import db
from tests.transactions import adopt_engine, release_engine

MEMORY = Path("/dev/shm")


def memory_folder():
    """A new folder on the tmpfs, or None where there is none."""
    if MEMORY.is_dir() and os.access(MEMORY, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="opsmgr-tests-", dir=MEMORY))
    return None


class SqliteCopies:
    def __init__(self, template, folder):
        self.template = Path(template)
        self.memory = memory_folder()
        self.path = (self.memory or Path(folder)) / "opsmgr.sqlite3"
        self.url = f"sqlite:///{self.path}"
        app = create_app(TestConfig(self.url, Path(folder) / "instance"))
        with app.app_context():
            self.engine = db.engine

    @contextmanager
    def fresh_copy(self):
        self._replace_file()
        try:
            yield self
        finally:
            self.engine.dispose()

    def _replace_file(self):
        self.engine.dispose()
        for path in (self.path, self.path.with_name(self.path.name + "-wal"),
                     self.path.with_name(self.path.name + "-shm")):
            path.unlink(missing_ok=True)
        shutil.copyfile(self.template, self.path)

    def adopt(self, app):
        return adopt_engine(app, self.engine)

    @staticmethod
    def release(app, own):
        release_engine(app, own)

    def close(self):
        self.engine.dispose()
        if self.memory is not None:
            shutil.rmtree(self.memory, ignore_errors=True)
