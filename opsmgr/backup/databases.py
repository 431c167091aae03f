"""The two databases a backup knows: a consistent snapshot of each, and putting one back.

SQLite: the online backup API copies a consistent snapshot while the app goes on writing (WAL lets
writers continue). PostgreSQL: `pg_dump -Fc` under a snapshot exported from a read-only transaction
that stays open while the dump runs, in which the manifest is computed too, so counts and checksums
describe exactly what was dumped.
"""
import glob
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from opsmgr.backup.manifest import document_hashes, schema_revision, table_digests
from opsmgr.extensions import db

DUMPS = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
#: The longest a pg_dump or pg_restore may run before the command gives up.
TOOL_TIMEOUT = 6 * 3600
#: One statement that empties the current schema of a PostgreSQL database (restore --force).
EMPTY_SCHEMA = """DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT viewname FROM pg_views WHERE schemaname = current_schema() LOOP
    EXECUTE format('DROP VIEW IF EXISTS %I CASCADE', r.viewname); END LOOP;
  FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
    EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.tablename); END LOOP;
  FOR r IN SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() LOOP
    EXECUTE format('DROP SEQUENCE IF EXISTS %I CASCADE', r.sequencename); END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
           WHERE p.pronamespace = current_schema()::regnamespace LOOP
    EXECUTE format('DROP ROUTINE IF EXISTS %s CASCADE', r.signature); END LOOP;
  FOR r IN SELECT typname FROM pg_type WHERE typnamespace = current_schema()::regnamespace AND typtype IN ('e', 'd')
    LOOP EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname); END LOOP;
END $$"""
USER_TABLES = {
    "sqlite": "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    "postgresql": "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
}


class BackupError(Exception):
    """The backup or restore cannot go on; the message says why and what to do."""


def label(kind):
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[kind]


def snapshot_contents(conn):
    return {"schema_revision": schema_revision(conn), "tables": table_digests(conn),
            "documents": document_hashes(conn)}


def sqlite_snapshot(copy):
    """The online backup API in one step: one consistent read snapshot; writers carry on meanwhile."""
    raw = db.engine.raw_connection()
    try:
        target = sqlite3.connect(copy)
        try:
            raw.driver_connection.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            checked = target.execute("PRAGMA integrity_check").fetchall()
        finally:
            target.close()
    finally:
        raw.close()
    if checked != [("ok",)]:
        raise BackupError("The snapshot fails PRAGMA integrity_check: the live database is damaged.")
    engine = create_engine(f"sqlite:///{copy}", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return snapshot_contents(conn)
    finally:
        engine.dispose()


def postgres_snapshot(dump):
    """pg_dump -Fc of a snapshot exported by a read-only repeatable-read transaction that stays open
    while the dump runs and in which the manifest is computed."""
    command, env = _pg_command("pg_dump", db.engine.url)
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
            dumping = subprocess.Popen(  # noqa: S603 - our own arguments, no shell
                [*command, "--format=custom", f"--snapshot={snapshot}", f"--file={dump}"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                contents = snapshot_contents(conn)
            finally:
                _, errors = dumping.communicate(timeout=TOOL_TIMEOUT)
    if dumping.returncode != 0:
        raise BackupError(f"pg_dump failed: {errors.decode(errors='replace').strip()}")
    return contents


def pg_tool(name):
    """The newest /usr/lib/postgresql/<version>/bin/<name> (as tests/pg.py finds the server), else PATH."""
    def version(folder):
        number = Path(folder).parent.name
        return int(number) if number.isdigit() else 0

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if Path(folder, name).exists():
            return str(Path(folder, name))
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} was not found: install the PostgreSQL client (apt-get install postgresql-client).")
    return found


def _pg_command(tool, url):
    """The tool and its environment for `url`: a libpq URI without the password, which goes in PGPASSWORD."""
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return [pg_tool(tool), f"--dbname={uri}"], env


def has_tables(kind):
    if kind == "sqlite" and not Path(db.engine.url.database).exists():
        return False
    with db.engine.connect() as conn:
        return conn.exec_driver_sql(USER_TABLES[kind]).scalar() > 0


def restore_sqlite(copy, _force):
    """Copy the snapshot over the configured file with the backup API (which also replaces a WAL database)."""
    db.engine.dispose()
    target = Path(db.engine.url.database)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    source, destination = sqlite3.connect(copy), sqlite3.connect(target, timeout=15)
    try:
        source.backup(destination)
    finally:
        source.close()
        destination.close()


def restore_postgres(dump, force):
    if force:
        with db.engine.begin() as conn:
            conn.execute(text(EMPTY_SCHEMA))  # text(): the driver would read format()'s %I as a placeholder
    db.engine.dispose()
    command, env = _pg_command("pg_restore", db.engine.url)
    done = subprocess.run(  # noqa: S603 - our own arguments, no shell
        [*command, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", str(dump)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=TOOL_TIMEOUT, check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.decode(errors='replace').strip()}")
