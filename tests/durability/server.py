"""Test 21 (reliability.md §8): the app under gunicorn, killed with SIGKILL under a write load over HTTP.

``Gunicorn`` runs the command line ``flask serve`` runs (2 sync workers, the same options), in its own
process group, so that one ``killpg(SIGKILL)`` kills the master and its workers at once, as a power
switch on the process would. ``WriteLoad`` signs in over HTTP like a browser (a cookie jar, the CSRF
token parsed from a page) and registers patients, each with a unique MRN that is also its submission
key's stem; a write counts as acknowledged only when the server answered with the redirect to the new
patient's chart. Nothing here sleeps a fixed time: it polls /healthz, waits for processes to exit and
waits on events.
"""
import contextlib
import html
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path

from opsmgr.core.cli import ACCESS_LOG_FORMAT
from tests.pg import free_port

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2
CSRF = re.compile(r'name="csrf_token"[^>]*\svalue="([^"]+)"')
CREATED = re.compile(r"/patients/(\d+)$")
#: What a request meets while the server is being killed or is down: no answer, so no acknowledgement.
NO_ANSWER = (ConnectionError, HTTPException, TimeoutError, urllib.error.URLError, OSError)


class Gunicorn:
    """`gunicorn app:app` as `flask serve` starts it, restartable on the same port."""

    def __init__(self, env, folder):
        self.env, self.folder = env, Path(folder)
        self.port, self.process, self.starts = free_port(), None, 0

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def command(self):
        return [sys.executable, "-m", "gunicorn", "app:app", "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(WORKERS), "--access-logfile", str(self.folder / "access.log"),
                "--access-logformat", ACCESS_LOG_FORMAT, "--timeout", "60", "--no-control-socket",
                "--error-logfile", str(self.folder / "error.log")]

    def start(self, timeout=120):
        """Start and wait until /healthz answers and both workers run; on a taken port, another port."""
        for _attempt in range(3):
            self.starts += 1
            with open(self.folder / "app.log", "ab") as app_log:  # the app's own log (a 500's traceback)
                self.process = subprocess.Popen(self.command(), cwd=ROOT, env=self.env,  # noqa: S603
                                                stdin=subprocess.DEVNULL, stdout=app_log,
                                                stderr=app_log, start_new_session=True)
            if self._wait_ready(timeout):
                return
            self.kill()
            self.port = free_port()
        raise RuntimeError(f"gunicorn did not start: {self.error_log()[-2000:]}")

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(*NO_ANSWER), urllib.request.urlopen(self.url("/healthz"), timeout=5) as answer:  # noqa: S310
                if answer.status == 200 and len(self.workers()) == WORKERS:
                    return True
            time.sleep(0.05)  # a poll interval, not a wait for time to pass
        return False

    def workers(self):
        return [pid for pid in _children(self.process.pid) if _alive(pid)]

    def kill(self):
        """SIGKILL the whole process group (master and workers) and wait until every one has exited."""
        if self.process is None:
            return
        pids = [self.process.pid, *_children(self.process.pid)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in pids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes {pids} outlived SIGKILL")
            time.sleep(0.01)

    def error_log(self):
        """gunicorn's error log, then the app's (where a 500's traceback goes)."""
        return "".join(path.read_text(errors="replace") for path in (self.folder / "error.log", self.folder / "app.log")
                       if path.exists())


def _children(pid):
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            if f"\nPPid:\t{pid}\n" in status.read_text():
                found.append(int(status.parent.name))
    return found


def _alive(pid):
    """Running (a zombie left for a parent or init to reap counts as gone: it holds no file or socket)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@dataclass
class Acknowledged:
    mrn: str
    patient_id: int


@dataclass
class WriteLoad:
    """Client threads registering patients until stopped; `acknowledged` is the log of acknowledged writes."""

    server: Gunicorn
    username: str
    password: str
    threads: int = 2
    up: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    acknowledged: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    attempts: int = 0
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def run(self):
        """Start the client threads (the server must be up); returns them."""
        started = [threading.Thread(target=self._client, args=(number,), daemon=True)
                   for number in range(self.threads)]
        for thread in started:
            thread.start()
        return started

    def wait_for_acknowledged(self, count, timeout=120):
        """Wait until at least `count` writes were acknowledged in all; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self.acknowledged) >= count or self.unexpected, timeout=timeout)

    def _client(self, number):
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(), _NoRedirect)
        token, sequence = None, 0
        while not self.stop.is_set():
            try:
                token = token or self._sign_in(opener)
                sequence += 1
                self._register(opener, token, f"DUR-{number}-{sequence:07d}")
            except urllib.error.HTTPError as error:  # an answer, but an error page (a GET's 4xx or 5xx)
                with self._lock:
                    self.unexpected.append((error.url, error.code, None))
                    self._lock.notify_all()
            except NO_ANSWER:
                # Killed mid-request or down: that write is in doubt (present or not, both are fine).
                self.up.wait(timeout=120)
            except Exception as error:  # noqa: BLE001 - reported by the test, which then fails
                with self._lock:
                    self.unexpected.append((None, None, f"{type(error).__name__}: {error}"))
                    self._lock.notify_all()
                return

    def _sign_in(self, opener):
        token = _csrf(_get(opener, self.server.url("/login")))
        status, _ = _post(opener, self.server.url("/login"), {"csrf_token": token, "username": self.username,
                                                              "password": self.password})
        if status != 302:
            raise AssertionError(f"sign-in answered {status}")
        return _csrf(_get(opener, self.server.url("/patients/new")))

    def _register(self, opener, token, mrn):
        form = {"csrf_token": token, "submission_key": mrn.replace("-", "_") + "_key", "mrn": mrn,
                "legal_name": f"Durable {_letters(mrn)}", "date_of_birth": "1970-01-01",
                "sex_at_birth": "female", "pregnancy_possible": "no", "indication": "trd",
                "reminder_channel": "none"}
        with self._lock:
            self.attempts += 1
        status, location = _post(opener, self.server.url("/patients/new"), form)
        created = CREATED.search(location or "")
        if status == 302 and created:
            with self._lock:
                self.acknowledged.append(Acknowledged(mrn, int(created.group(1))))
                self._lock.notify_all()
            # As a browser does: follow to the chart, which shows (and so clears) the flashed message.
            _get(opener, urllib.parse.urljoin(self.server.url("/"), location))
        else:
            with self._lock:
                self.unexpected.append((mrn, status, location))
                self._lock.notify_all()


def _letters(mrn):
    """The MRN's digits as letters: a name the duplicate check never matches with another."""
    return "".join("abcdefghij"[int(c)] if c.isdigit() else "x" for c in mrn if c != "-").capitalize()


def _csrf(page):
    found = CSRF.search(page)
    if found is None:
        raise AssertionError("no CSRF token on the page")
    return html.unescape(found.group(1))


def _get(opener, url):
    with opener.open(url, timeout=60) as answer:
        return answer.read().decode()


def _post(opener, url, form):
    """(status, Location) of a POST, redirects not followed."""
    try:
        with opener.open(url, data=urllib.parse.urlencode(form).encode(), timeout=60) as answer:
            answer.read()
            return answer.status, answer.headers.get("Location")
    except urllib.error.HTTPError as error:  # a redirect not followed lands here, as does a 4xx/5xx
        with contextlib.suppress(*NO_ANSWER):
            error.read()
        return error.code, error.headers.get("Location")
