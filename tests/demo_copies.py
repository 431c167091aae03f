"""A database of a test's own that holds the demo clinic, copied from the shared demo world instead of
seeded again (seeding costs a second or two; a copy, a fraction of that).

The demo world (conftest `demo_clinic`) is committed: on SQLite a file, copied with the backup API; on
PostgreSQL the world's database, which the world keeps a connection open to (so it cannot be a CREATE
DATABASE template), copied with pg_dump | pg_restore.
"""
import itertools
import sqlite3
import subprocess

from sqlalchemy.engine import make_url

from opsmgr.backup.databases import pg_tool
from tests.shared_world import world_sources

_numbers = itertools.count(1)


def demo_clinic_copy(backend, request, tmp_path):
    """The URL of a new database holding the demo clinic as seeded; dropped at the end of the test."""
    if backend == "sqlite":  # a fresh copy of the world's file for this test
        world = request.getfixturevalue("demo_clinic")
    else:  # the world itself, without entering its rolled-back transaction (which takes over db.session)
        world = request.getfixturevalue("demo_worlds")(backend, *world_sources(backend, request))
    source = world.app.config["SQLALCHEMY_DATABASE_URI"]
    number = next(_numbers)
    if backend == "sqlite":
        path = tmp_path / f"demo-copy-{number}.sqlite3"
        origin, copy = sqlite3.connect(source.removeprefix("sqlite:///")), sqlite3.connect(path)
        try:
            origin.backup(copy)
        finally:
            origin.close()
            copy.close()
        return f"sqlite:///{path}"
    server = request.getfixturevalue("pg_server")
    name = f"demo_copy_{number}"
    server.admin(f"CREATE DATABASE {name}")
    request.addfinalizer(lambda: server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    dump = subprocess.run([pg_tool("pg_dump"), "--format=custom", f"--dbname={libpq(source)}"],
                          check=True, capture_output=True, timeout=120).stdout
    subprocess.run([pg_tool("pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction",
                    f"--dbname={libpq(server.url(name))}"], input=dump, check=True, capture_output=True, timeout=120)
    return server.url(name)


def libpq(url):
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
