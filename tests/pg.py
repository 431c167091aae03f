"""A throwaway PostgreSQL server on a free loopback port, started by the test suite itself.

As root the server runs as the `postgres` OS user (initdb refuses root); otherwise as the caller.
"""
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg


def find_bindir():
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for bindir in reversed(candidates):
        if Path(bindir, "initdb").exists():
            return bindir
    found = shutil.which("initdb")
    return str(Path(found).parent) if found else None


def free_port():
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, bindir):
        self.bindir = bindir
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="opsmgr-pg-"))
        self.as_root = os.geteuid() == 0

    def _run(self, *args):
        command = [str(Path(self.bindir, args[0])), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)

    def start(self, attempts=3):
        """initdb and start; each pytest-xdist worker starts its own server in its own folder."""
        os.chmod(self.base, 0o755)  # noqa: S103 - the postgres user must reach its folders
        data, sock, log = self.base / "data", self.base / "sock", self.base / "log"
        for folder in (data, sock, log):
            folder.mkdir()
        if self.as_root:
            subprocess.run(["chown", "-R", "postgres:postgres", str(data), str(sock), str(log)], check=True)
        os.chmod(data, 0o700)
        self._run("initdb", "-D", str(data), "-U", "app", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        for attempt in range(1, attempts + 1):
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {sock} -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            try:
                self._run("pg_ctl", "-D", str(data), "-l", str(log / "server.log"), "-w", "-t", "30",
                          "-o", options, "start")
                return self
            except subprocess.CalledProcessError:
                # Another process (a parallel worker's live server) took the free port in between.
                if attempt == attempts:
                    raise
                self.port = free_port()
        return self

    def stop(self):
        with contextlib.suppress(subprocess.SubprocessError):
            self._run("pg_ctl", "-D", str(self.base / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, dbname):
        return f"postgresql+psycopg://app@127.0.0.1:{self.port}/{dbname}"

    def admin(self, sql):
        with psycopg.connect(host="127.0.0.1", port=self.port, user="app", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql)
