"""`make bench`: the real app against a bare Flask "hello", both under gunicorn, driven by wrk on loopback.

Speed is a ratio to "hello" measured in the same run on the same machine, never an absolute threshold.
For each page: requests per second (and that ratio), latency, SQL statements per request; for the web
workers: resident memory before and after the run. The table is printed and written as JSON under
tests/bench/results/ (or --out).

    python -m tests.bench.bench [--db sqlite|postgres] [--seconds 5] [--sizes 200,20000 | --patients N]
                                [--memory-requests 50000] [--out DIR]

Environment: BENCH_DB, BENCH_SECONDS, BENCH_SIZES, BENCH_PATIENTS, BENCH_CONNECTIONS, BENCH_MEMORY_REQUESTS
(the flags win).

Data: at each size, a fresh migrated database in a temporary instance folder, seeded by `flask seed scale
--patients N` (200 and 20,000 patients by default: about 2,000 and 200,000 sessions). Each size gets its
own table; then how each page's time grows from the smallest to the largest. At the largest, the web
workers serve the pages in turn up to 50,000 requests before their memory is read again, and the audit
chain's verification is timed at every size.
PostgreSQL is a throwaway server started as the test suite starts it (tests/pg.py). The runner signs
in once through the login form (CSRF token from the page) as a physician it creates (`flask users
create`), and wrk sends that session cookie to every page but /healthz (asked anonymously, as a monitor
asks). Authenticated reads resume the server-side session and write their audit row: real cost. SQL
statements are counted in-process on the same database; transaction control (BEGIN) is not counted, as
psycopg's implicit BEGIN is not seen on PostgreSQL.
Both servers run `gunicorn -w 2 -k sync` with the access log `flask serve` writes (to a file here);
the scheduler is not started.
"""
import argparse
import contextlib
import html
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LUA = HERE / "count.lua"
WORKERS = 2
THREADS = 2
USERNAME = "bench-physician"
#: Asked for without the session cookie, as a load balancer or monitor asks.
ANONYMOUS = {"healthz"}

#: (key, label) of the pages in table order; their URLs come from the seeded data (page_urls).
PAGES = (
    ("healthz", "/healthz (no cookie)"),
    ("floor", "signed-in floor /account/calendar"),
    ("board", "chair board /today"),
    ("chart", "patient chart (most sessions)"),
    ("week", "week calendar /schedule"),
    ("search", "patient search, name + birth date"),
    ("search_prefix", "patient search, 4 letters"),
    ("signing", "physician home /signing"),
)


@dataclass
class Server:
    """A gunicorn master on a free loopback port, its log in the run's folder."""

    process: subprocess.Popen
    port: int
    log: Path

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def worker_pids(self):
        master, pids = self.process.pid, []
        for status in Path("/proc").glob("[0-9]*/status"):
            with contextlib.suppress(OSError):
                if f"\nPPid:\t{master}\n" in status.read_text():
                    pids.append(int(status.parent.name))
        return sorted(pids)

    def worker_rss_mib(self):
        sizes = []
        for pid in self.worker_pids():
            with contextlib.suppress(FileNotFoundError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes.append(round(int(line.split()[1]) / 1024, 1))
        return sizes

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Run:
    """Everything one run measured; `as_json()` is what results/*.json hold."""

    db: str
    data: str
    seconds: int
    connections: int
    started_at: str
    hello: list = field(default_factory=list)
    pages: dict = field(default_factory=dict)
    memory: dict = field(default_factory=dict)

    def hello_rps(self):
        return sum(h["rps"] for h in self.hello) / len(self.hello)

    def as_json(self):
        return {"db": self.db, "data": self.data, "seconds_per_page": self.seconds, "connections": self.connections,
                "threads": THREADS, "workers": WORKERS, "started_at": self.started_at,
                "hello": self.hello, "hello_rps": round(self.hello_rps(), 1),
                "pages": self.pages, "memory": self.memory}


def free_port():
    from tests.pg import free_port as pg_free_port

    return pg_free_port()


# --- the data -------------------------------------------------------------------------------------

def prepare_data(app, patients):
    """Migrate and seed the fresh database; returns what the table says about the data.

    `flask seed scale --patients N` when the app has it, otherwise `flask demo seed`."""
    import logging

    from flask_migrate import upgrade

    logging.getLogger("alembic").setLevel(logging.WARNING)
    with app.app_context():
        upgrade()
    runner = app.test_cli_runner()
    seed = app.cli.commands.get("seed")
    if seed is not None and "scale" in getattr(seed, "commands", {}):
        count = patients or 1000
        args, data = ["seed", "scale", "--patients", str(count)], f"seed scale --patients {count}"
    else:
        args = ["demo", "seed"]
        data = "demo seed" + (f" (BENCH_PATIENTS={patients} ignored: no `seed scale` command yet)"
                              if patients else "")
    _invoke(runner, args)
    password = secrets.token_urlsafe(18)
    _invoke(runner, ["users", "create", USERNAME, "--role", "physician", "--password-stdin"], input=password + "\n")
    return data, password


def _invoke(runner, args, **kwargs):
    result = runner.invoke(args=args, catch_exceptions=False, **kwargs)
    if result.exit_code != 0:
        raise RuntimeError(f"flask {' '.join(args[:2])} failed: {result.output.strip()}")


def page_urls(app):
    """The URL of every page, picked from the data: the chart of the patient with the most sessions; the
    front desk's search for that patient by the first four letters of the family name and the date of birth
    (the two identifiers: one patient found at any size, through the word index); and the same four letters
    alone, which match one patient in 25 of the scale data (25 families) — a page of 8 at 200 patients and a
    full page of 25 (of 800) at 20,000, so its growth is also the page growing."""
    from sqlalchemy import func, select

    from opsmgr.extensions import db
    from opsmgr.patients.models import Patient
    from opsmgr.sessions.models import InfusionSession

    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(InfusionSession))
        patient_id, sessions = db.session.execute(
            select(InfusionSession.patient_id, func.count()).group_by(InfusionSession.patient_id)
            .order_by(func.count().desc(), InfusionSession.patient_id).limit(1)).one()
        patient = db.session.get(Patient, patient_id)
        family, born = patient.legal_name.split()[-1], patient.date_of_birth.isoformat()
        db.session.remove()
        db.engine.dispose()
    # The distinctive part of the name ("Demo-Lindqvist" -> "Lind"): every fictional family name starts with
    # "Demo-", and searching that would list the whole clinic, which nobody at a front desk does.
    words = re.findall(r"[^\W\d_]+", family)
    term = (words[-1] if words else family)[:4]
    # The floor: a signed-in page with the layout and nothing else (the calendar-feed settings; one small
    # query, no patient data, so not even an audit row) — what every signed-in page pays before its own work.
    urls = {"healthz": "/healthz", "floor": "/account/calendar", "board": "/today",
            "chart": f"/patients/{patient_id}", "week": "/schedule",
            "search": "/patients/?" + urllib.parse.urlencode({"q": term, "dob": born}),
            "search_prefix": "/patients/?" + urllib.parse.urlencode({"q": term}), "signing": "/signing"}
    return urls, {"chart_sessions": sessions, "sessions": total}


def count_statements(app, password, urls):
    """SQL statements per request of each page, counted in-process on the same database (the second
    request of each, so first-request caches do not count); also proves every page answers 200."""
    from tests.sql import count_statements as counting

    client, anonymous = app.test_client(), app.test_client()
    _sign_in(lambda url: client.get(url).get_data(as_text=True),
             lambda url, form: client.post(url, data=form).status_code, password)
    counts = {}
    for key, url in urls.items():
        for attempt in range(2):
            with counting(app, transaction_control=False) as n:
                response = (anonymous if key in ANONYMOUS else client).get(url)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code} in-process (attempt {attempt + 1})")
        counts[key] = n["n"]
    with app.app_context():
        from opsmgr.extensions import db

        db.session.remove()
        db.engine.dispose()
    return counts


def _sign_in(get, post, password):
    page = get("/login")
    token = re.search(r'name="csrf_token"[^>]*\svalue="([^"]+)"', page)
    if token is None:
        raise RuntimeError("no CSRF token on the login page")
    status = post("/login", {"csrf_token": html.unescape(token.group(1)), "username": USERNAME,
                             "password": password})
    if status != 302:
        raise RuntimeError(f"sign-in answered {status}, not a redirect")


# --- the servers -----------------------------------------------------------------------------------

def start_gunicorn(target, env, folder, name, attempts=3):
    from opsmgr.core.cli import ACCESS_LOG_FORMAT

    for attempt in range(1, attempts + 1):
        port = free_port()
        log = folder / f"{name}.log"
        command = [sys.executable, "-m", "gunicorn", target, "--bind", f"127.0.0.1:{port}",
                   "--workers", str(WORKERS), "--worker-class", "sync", "--timeout", "60", "--no-control-socket",
                   "--access-logfile", str(folder / f"{name}-access.log"), "--access-logformat", ACCESS_LOG_FORMAT,
                   "--error-logfile", str(log), "--log-level", "warning"]
        server = Server(subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,  # noqa: S603
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port, log)
        if _wait_ready(server, "/" if name == "hello" else "/healthz"):
            return server
        server.stop()
        if attempt == attempts:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"gunicorn ({name}) did not start:\n{tail}")
    return None


def _wait_ready(server, path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False  # e.g. the port was taken meanwhile
        with contextlib.suppress(OSError), urllib.request.urlopen(server.url(path), timeout=5) as response:  # noqa: S310
            if response.status == 200 and len(server.worker_pids()) == WORKERS:
                return True
        time.sleep(0.2)
    return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def session_cookie(server, password, cookie_name):
    """Sign in over HTTP like a browser; returns the session cookie for wrk's -H."""
    jar = urllib.request.HTTPCookieProcessor()
    opener = urllib.request.build_opener(jar, _NoRedirect)

    def get(path):
        with opener.open(server.url(path), timeout=30) as response:
            return response.read().decode()

    def post(path, form):
        try:
            with opener.open(server.url(path), data=urllib.parse.urlencode(form).encode(), timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as error:  # the 302 lands here once redirects are not followed
            return error.code

    _sign_in(get, post, password)
    for cookie in jar.cookiejar:
        if cookie.name == cookie_name:
            return f"{cookie.name}={cookie.value}"
    raise RuntimeError("signed in but no session cookie was set")


def check_page(server, path, cookie):
    request = urllib.request.Request(server.url(path), headers={"Cookie": cookie} if cookie else {})  # noqa: S310
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=60) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    if status != 200:
        raise RuntimeError(f"{path} answered {status} under gunicorn")


# --- wrk -------------------------------------------------------------------------------------------

def wrk(url, seconds, connections, cookie=None):
    command = ["wrk", f"-t{THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
               "-s", str(LUA), url]
    if cookie:
        command[1:1] = ["-H", f"Cookie: {cookie}"]
    output = subprocess.run(command, check=True, capture_output=True, text=True,  # noqa: S603
                            timeout=seconds + 60).stdout
    return parse_wrk(output)


def parse_wrk(output):
    def number(pattern, default=None):
        found = re.search(pattern, output)
        return float(found.group(1)) if found else default

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {"rps": number(r"Requests/sec:\s+([\d.]+)"),
            "requests": int(number(r"(\d+) requests in", 0)),
            "latency_avg_ms": _ms(re.search(r"Latency\s+([\d.]+\w+)", output)),
            "latency_p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", output)),
            "not_200": int(number(r"BENCH not_200=(\d+)", 0)),
            "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0}


def _ms(found):
    if not found:
        return None
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", found.group(1)).groups()
    return round(float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit], 2)


# --- the run ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def database(db, folder):
    if db == "sqlite":
        yield f"sqlite:///{folder / 'bench.sqlite3'}"
        return
    from tests.pg import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (make setup-test installs it)")
    server = PostgresServer(bindir).start()
    try:
        server.admin("CREATE DATABASE bench")
        yield server.url("bench")
    finally:
        server.stop()


def run(db="sqlite", seconds=5, patients=None, connections=16, out=None, echo=print, memory_requests=0,
        warm_up=True):
    """One whole benchmark at one data size; returns the result dict (also written to `out`/<time>-<db>.json).

    After the pages, the web workers keep serving the pages in turn until `memory_requests` requests in all
    have been answered (at least one more round; 0: none), then their memory is read again; and `flask audit
    verify`'s work is timed in-process on the seeded chain (audit_verify)."""
    from config import Config
    from opsmgr import create_app

    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make bench installs it)")
    folder = Path(tempfile.mkdtemp(prefix="opsmgr-bench-"))
    servers = []
    try:
        with database(db, folder) as url:
            env = {**os.environ, "OPSMGR_INSTANCE_PATH": str(folder / "instance"), "OPSMGR_DATABASE_URL": url,
                   "OPSMGR_TIMEZONE": os.environ.get("OPSMGR_TIMEZONE") or "America/New_York",
                   "OPSMGR_SECRET_KEY": secrets.token_hex(32), "OPSMGR_AUDIT_KEY": secrets.token_hex(32),
                   "OPSMGR_LOG_LEVEL": "WARNING", "PYTHONDONTWRITEBYTECODE": "1",
                   # the pages' cost is measured, not the sign-in: the bench's physician has no second factor
                   "OPSMGR_TWO_FACTOR_REQUIRED_ROLES": ""}
            app = create_app(Config(env))
            echo(f"bench: seeding a fresh {db} database in {folder} ...")
            data, password = prepare_data(app, patients)
            urls, facts = page_urls(app)
            statements = count_statements(app, password, urls)
            hello = start_gunicorn("tests.bench.hello:app", env, folder, "hello")
            servers.append(hello)
            web = start_gunicorn("app:app", env, folder, "app")
            servers.append(web)
            cookie = session_cookie(web, password, app.config["SESSION_COOKIE_NAME"])
            for key, path in urls.items():
                check_page(web, path, None if key in ANONYMOUS else cookie)
            # Every worker serves every page for a moment before its memory is read: the first chart
            # imports matplotlib (about 50 MiB), which is loading, not growth. (The smoke in make test,
            # which reads no figure, leaves it out: a second a page.)
            for key, path in urls.items() if warm_up else ():
                wrk(web.url(path), 1, connections, cookie=None if key in ANONYMOUS else cookie)
            result = Run(db=db, data=data, seconds=seconds, connections=connections,
                         started_at=datetime.now(UTC).isoformat(timespec="seconds"))
            result.memory["before_mib"] = web.worker_rss_mib()
            echo(f"bench: wrk {seconds} s per page, {connections} connections ...")
            result.hello.append(wrk(hello.url("/"), seconds, connections))
            for key, _label in PAGES:
                measured = wrk(web.url(urls[key]), seconds, connections,
                               cookie=None if key in ANONYMOUS else cookie)
                result.pages[key] = {"url": urls[key], "statements": statements[key], **measured}
            result.hello.append(wrk(hello.url("/"), seconds, connections))
            page_requests, extra = sum(page["requests"] for page in result.pages.values()), 0
            if memory_requests:  # at least one more round, so the smoke in make test runs this path too
                echo(f"bench: serving the pages in turn up to {memory_requests} requests for the memory check ...")
                extra = keep_serving(web, urls, cookie, connections, max(memory_requests - page_requests, 1))
            result.memory["after_mib"] = web.worker_rss_mib()
            result.memory["requests"] = page_requests + extra
            result.memory["growth"] = memory_growth(result.memory["before_mib"], result.memory["after_mib"])
            for page in result.pages.values():
                page["ratio"] = round(page["rps"] / result.hello_rps(), 4)
            echo("bench: timing the audit chain's verification ...")
            output = result.as_json() | facts | {"audit_verify": audit_verify(app), "server_errors": _tail(web.log)}
            write(output, Path(out) if out else HERE / "results")
            echo(table(output))
            return output
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def keep_serving(web, urls, cookie, connections, requests):
    """Drive the signed-in pages in turn (wrk, 10 s each at most) until about `requests` more have been
    answered; returns how many were."""
    served, pages = 0, [key for key, _ in PAGES if key not in ANONYMOUS]
    while served < requests:
        for key in pages:
            measured = wrk(web.url(urls[key]), 10 if requests - served > 2000 else 1, connections, cookie=cookie)
            if measured["not_200"] or measured["socket_errors"]:
                raise RuntimeError(f"{urls[key]} failed under the memory run: {measured}")
            served += measured["requests"]
            if served >= requests:
                break
    return served


def memory_growth(before, after):
    """The largest growth of one worker's resident memory, as a fraction (0.05: 5 %)."""
    return round(max((b - a) / a for a, b in zip(before, after, strict=True)), 4) if before else None


def audit_verify(app):
    """What `flask audit verify` does (the chain walked and every row's HMAC recomputed), timed in-process:
    rows per second, seconds per 100,000 rows, and how fast the chain grows per clinic day of the data."""
    from sqlalchemy import func, select

    from opsmgr.audit.service import verify_chain
    from opsmgr.core import reads
    from opsmgr.extensions import db
    from opsmgr.sessions.models import InfusionSession

    with app.app_context():
        started = time.perf_counter()
        with reads.reading():  # as flask audit verify reads: never holding SQLite's write lock
            verified = verify_chain(app.config["AUDIT_KEY"])
        elapsed = time.perf_counter() - started
        if not verified.ok:
            raise RuntimeError(f"the seeded audit chain does not verify: {verified.problem}")
        days = db.session.scalar(select(func.count(func.distinct(func.date(InfusionSession.starts_at))))
                                 .where(InfusionSession.status == "discharged"))
        db.session.remove()
        db.engine.dispose()
    rows = verified.checked
    return {"rows": rows, "seconds": round(elapsed, 2), "rows_per_s": round(rows / elapsed),
            "seconds_per_100k": round(elapsed * 100_000 / rows, 2) if rows else None,
            "clinic_days": days, "rows_per_clinic_day": round(rows / days) if days else None}


def run_sizes(db="sqlite", seconds=5, sizes=(200, 20000), connections=16, out=None, echo=print,
              memory_requests=50_000):
    """`run` at each data size, smallest first (the memory check at the largest only), then how each
    page's time grows with the data: time at the largest ÷ time at the smallest (rps small ÷ rps large)."""
    sizes = sorted(sizes)
    runs = [run(db=db, seconds=seconds, patients=size, connections=connections, out=out, echo=echo,
                memory_requests=memory_requests if size == sizes[-1] else 0) for size in sizes]
    summary = {"db": db, "sizes": sizes, "runs": [r.get("written_to") for r in runs],
               "sessions": [r["sessions"] for r in runs]}
    if len(runs) > 1:
        small, large = runs[0], runs[-1]
        summary["growth"] = {key: round(small["pages"][key]["rps"] / large["pages"][key]["rps"], 3)
                             for key, _ in PAGES}
        summary["statements"] = {key: [r["pages"][key]["statements"] for r in runs] for key, _ in PAGES}
        echo(growth_table(summary))
    return runs, summary


def growth_table(summary):
    lines = [f"how page time grows with the data ({summary['db']}): "
             f"{' vs '.join(f'{n:,} sessions' for n in summary['sessions'])}",
             f"{'page':<32} {'time ×':>7} {'SQL at each size':>18}"]
    for key, label in PAGES:
        lines.append(f"{label:<32} {summary['growth'][key]:>7.3f} "
                     f"{' / '.join(str(n) for n in summary['statements'][key]):>18}")
    return "\n".join(lines)


def _tail(log, lines=20):
    """The end of the app's gunicorn error log (tracebacks of any 500s), empty when all went well."""
    return log.read_text().splitlines()[-lines:] if log.exists() else []


def write(output, folder):
    folder.mkdir(parents=True, exist_ok=True)
    stamp = output["started_at"].replace(":", "").replace("+0000", "Z")
    path = folder / f"{stamp}-{output['db']}.json"
    path.write_text(json.dumps(output, indent=2) + "\n")
    output["written_to"] = str(path)


def table(output):
    runs = ", ".join(f"{h['rps']:.0f}" for h in output["hello"])
    lines = [f"opsmgr bench — {output['db']}, data: {output['data']}, {output['seconds_per_page']} s per page, "
             f"wrk -t{THREADS} -c{output['connections']}, gunicorn -w {WORKERS} sync",
             f"hello: {output['hello_rps']:.0f} req/s (runs: {runs})",
             "",
             f"{'page':<32} {'req/s':>8} {'× hello':>8} {'avg ms':>8} {'p99 ms':>8} {'SQL':>4} {'not 200':>8}"]
    for key, label in PAGES:
        page = output["pages"][key]
        lines.append(f"{label:<32} {page['rps']:>8.1f} {page['ratio']:>8.3f} {page['latency_avg_ms']:>8.1f} "
                     f"{page['latency_p99_ms']:>8.1f} {page['statements']:>4} "
                     f"{page['not_200'] + page['socket_errors']:>8}")
    memory = output["memory"]
    audit = output["audit_verify"]
    lines += ["", f"web workers RSS MiB: {memory['before_mib']} before, {memory['after_mib']} after "
                  f"{memory['requests']} requests (largest growth {memory['growth']:.1%})",
              f"sessions: {output['sessions']:,}; chart patient sessions: {output['chart_sessions']}",
              f"audit verify: {audit['rows']:,} rows in {audit['seconds']} s = {audit['rows_per_s']:,} rows/s "
              f"({audit['seconds_per_100k']} s per 100,000); {audit['rows_per_clinic_day']} rows per clinic day "
              f"over {audit['clinic_days']} days",
              *([f"server errors (last lines of the app's error log): {len(output['server_errors'])}"]
                if output["server_errors"] else []),
              f"written to {output.get('written_to', '-')}"]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default=os.environ.get("BENCH_DB") or "sqlite")
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS") or 5))
    parser.add_argument("--patients", type=int, default=int(os.environ.get("BENCH_PATIENTS") or 0) or None,
                        help="one data size (instead of --sizes)")
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES") or "200,20000",
                        help="patients at each data size, comma-separated (default 200,20000: about 2,000 and "
                             "200,000 sessions)")
    parser.add_argument("--memory-requests", type=int, default=int(os.environ.get("BENCH_MEMORY_REQUESTS") or 50_000),
                        help="requests served before the workers' memory is read again (at the largest size)")
    parser.add_argument("--connections", type=int, default=int(os.environ.get("BENCH_CONNECTIONS") or 16))
    parser.add_argument("--out", default=None, help="folder for the JSON (default tests/bench/results)")
    args = parser.parse_args(argv)
    try:
        sizes = [args.patients] if args.patients else [int(size) for size in args.sizes.split(",")]
        run_sizes(db=args.db, seconds=args.seconds, sizes=sizes, connections=args.connections, out=args.out,
                  memory_requests=args.memory_requests)
    except RuntimeError as error:
        raise SystemExit(f"bench: {error}") from None


if __name__ == "__main__":
    main()
