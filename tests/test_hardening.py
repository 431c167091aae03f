"""Input hardening: out-of-range dates and ids, SQL injection, CSV formulas, bidi controls, errors, `flask serve`."""
import inspect
import io
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from flask import Request, request
from flask.cli import ScriptInfo
from sqlalchemy import select, text
from sqlalchemy.orm import InstrumentedAttribute
from werkzeug.datastructures import ImmutableMultiDict

from config import Config
from opsmgr import create_app
from opsmgr.audit.service import SORTABLE
from opsmgr.core import csvfiles
from opsmgr.core import views as core_views
from opsmgr.core.forms import clean_text
from opsmgr.core.routing import LARGEST_ID, IdConverter
from opsmgr.extensions import db
from opsmgr.messaging.models import MessageTemplate
from opsmgr.notes.models import SessionNote
from opsmgr.patients.models import Patient
from tests.conftest import PASSWORD, FrozenClock, StaffClient, sign_in
from tests.pg import free_port
from tests.shared_world import world_sources, worlds_by_backend
from tests.test_message_templates import DEFAULTS as TEMPLATE_DEFAULTS
from tests.test_patients import NEW as NEW_PATIENT
from tests.test_permissions import MATRIX, REQUESTS, ROLES, build_matrix_world, fill
from tests.test_security import URL_ARGUMENTS

ROOT = Path(__file__).resolve().parent.parent


# --- `flask serve` stops its children on SIGTERM ---------------------------------------------------


def _children(pid):
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _alive(pid):
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _wait_until_healthy(url, process, deadline):
    while time.monotonic() < deadline:
        assert process.poll() is None, "flask serve ended before it answered"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - a local http URL
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)  # the server is still starting: the socket is not bound yet
    raise AssertionError(f"{url} did not answer")


#: `flask serve`'s own code with light stand-ins for its children (`sleep`): the short sample, in about a second.
STAND_IN_SERVE = """
import subprocess
from flask import Flask
from opsmgr.core import cli
real_popen = subprocess.Popen
cli.subprocess.Popen = lambda args, **kwargs: real_popen(["sleep", "300"])
app = Flask("stand-in")
app.config["CLINIC_TIMEZONE"] = "UTC"
with app.app_context():
    cli.serve.main(["--port", "1"], standalone_mode=False)
"""


def _start_real_serve(sqlite_template, tmp_path):
    """`flask serve` as `make run` starts it (one gunicorn worker), once /healthz answers."""
    shutil.copy(sqlite_template, tmp_path / "opsmgr.sqlite3")
    port = free_port()
    env = {**os.environ, "OPSMGR_INSTANCE_PATH": str(tmp_path / "instance"), "OPSMGR_TIMEZONE": "UTC",
           "OPSMGR_DATABASE_URL": f"sqlite:///{tmp_path / 'opsmgr.sqlite3'}", "OPSMGR_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(  # noqa: S603 - a fixed command line
        [sys.executable, "-m", "flask", "--app", "app", "serve", "--port", str(port), "--workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_until_healthy(f"http://127.0.0.1:{port}/healthz", process, time.monotonic() + 60)
    return process


def _start_stand_in_serve():
    """The stand-in, once it says it serves (both children started)."""
    process = subprocess.Popen([sys.executable, "-u", "-c", STAND_IN_SERVE], cwd=ROOT,  # noqa: S603
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if line.startswith("opsmgr on http://"):
            return process
    raise AssertionError(f"the stand-in ended ({process.wait()}) before serving")


@pytest.mark.long
def test_flask_serve_stops_gunicorn_and_the_scheduler_on_sigterm(long_run, request, tmp_path):
    """Full size: the real `flask serve` (gunicorn, the scheduler); short sample: the same code, stand-in children."""
    if long_run:
        process = _start_real_serve(request.getfixturevalue("sqlite_template"), tmp_path)
    else:
        process = _start_stand_in_serve()
    try:
        children = _children(process.pid)
        assert len(children) == 2, children  # gunicorn's master and the scheduler
        grandchildren = [pid for child in children for pid in _children(child)]  # gunicorn's worker
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert [pid for pid in children + grandchildren if _alive(pid)] == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


# --- contrast of links inside alerts ---------------------------------------------------------------

STATIC = ROOT / "opsmgr" / "static"
ALERT_VARIANTS = ("primary", "secondary", "success", "info", "warning", "danger", "light", "dark")


def _luminance(hex_colour):
    def channel(value):
        value /= 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(int(hex_colour[i:i + 2], 16)) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(foreground, background):
    """WCAG 2.1's contrast ratio of two #rrggbb colours."""
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _light_theme_variable(css, name):
    """The first (light theme, :root) value of a Bootstrap custom property."""
    return re.search(rf"--bs-{name}:(#[0-9a-f]{{6}})", css).group(1)


def test_contrast_matches_wcag_examples():
    assert 3.85 <= contrast("#0d6efd", "#cff4fc") < 3.86  # the finding: Bootstrap's link blue on the info alert
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0


def test_links_inside_every_alert_variant_reach_4_5_to_1():
    bootstrap = (STATIC / "vendor" / "bootstrap" / "bootstrap.min.css").read_text()
    ours = (STATIC / "css" / "app.css").read_text()
    assert re.search(r"^\.alert a:not\(\.btn\) \{ color: var\(--bs-alert-link-color\);", ours, re.M)
    for variant in ALERT_VARIANTS:
        link = re.search(rf"\.alert-{variant}\{{[^}}]*--bs-alert-link-color:var\(--bs-([a-z-]+)\)", bootstrap).group(1)
        background = re.search(rf"\.alert-{variant}\{{[^}}]*--bs-alert-bg:var\(--bs-([a-z-]+)\)", bootstrap).group(1)
        ratio = contrast(_light_theme_variable(bootstrap, link), _light_theme_variable(bootstrap, background))
        assert ratio >= 4.5, (variant, round(ratio, 2))


# --- CSV cells a spreadsheet would run -------------------------------------------------------------

NEUTRALISED = ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", ";=1", ",=1", " =1", "  +1", '"=1', "'=1", "|=1",
               ";;@x", "x;=1", "x,=cmd|' /C calc'!A0", "Ann\n=1", "Ann\r\n+1", 'a;"=1', "a\t-1", "a; @b")
KEPT = ("Ann", "", "O'Brien", "Smith-Jones", "2026-11-26", "2026-11-26T15:00:00+00:00", "a - b", "x=1",
        '{"mg": 35}', "a, b", "me@example.org", "7")


@pytest.mark.parametrize("text", NEUTRALISED)
def test_a_cell_a_spreadsheet_could_run_gets_an_apostrophe(text):
    assert csvfiles.safe_cell(text) == "'" + text


def test_other_cells_are_written_as_they_are():
    assert [csvfiles.safe_cell(text) for text in KEPT] == list(KEPT)
    assert [csvfiles.safe_cell(value) for value in (None, 7, date(2026, 11, 26))] == ["", "7", "2026-11-26"]


def test_every_cell_is_quoted_so_no_separator_starts_a_new_cell():
    buffer = io.StringIO(newline="")
    assert csvfiles.write_rows(buffer, ("a", "b"), [["x;=1", None]]) == 1
    assert buffer.getvalue() == '"a","b"\r\n"\'x;=1",""\r\n'


def test_every_csv_the_app_writes_goes_through_the_shared_writer():
    writers = {path.relative_to(ROOT).as_posix() for path in (ROOT / "opsmgr").rglob("*.py")
               if re.search(r"csv\.(writer|DictWriter)\(", path.read_text())}
    assert writers == {"opsmgr/core/csvfiles.py"}
    users = {path.relative_to(ROOT).as_posix() for path in (ROOT / "opsmgr").rglob("*.py")
             if "csvfiles.write_rows(" in path.read_text()}
    assert {"opsmgr/audit/views.py", "opsmgr/reports/export.py"} <= users


# --- the sweep: every GET endpoint as a role that may see it, every query parameter it reads ----------


class RecordingArgs(ImmutableMultiDict):
    """Query parameters that remember which names the app looked up (forms ask `name in args`)."""

    asked = set()

    def __contains__(self, key):
        self.asked.add(key)
        return super().__contains__(key)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None, type=None):  # noqa: A002 - werkzeug's signature
        self.asked.add(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):  # noqa: A002
        self.asked.add(key)
        return super().getlist(key, type)


class RecordingRequest(Request):
    parameter_storage_class = RecordingArgs


@pytest.fixture(scope="module")
def hardening_worlds(tmp_path_factory):
    yield from worlds_by_backend(tmp_path_factory, "hardening", build_matrix_world, StaffClient, FrozenClock)


@dataclass
class Sweep:
    app: object
    clients: dict  #: role -> signed-in client
    pages: dict  #: GET endpoint -> (role that sees it, URL)

    def get(self, endpoint, query=None):
        role, url = self.pages[endpoint]
        path, _, fixed = url.partition("?")  # a feed's URL carries its token
        response = self.clients[role].get(path, query_string={**dict(parse_qsl(fixed)), **(query or {})})
        response.get_data()
        response.close()
        return response

    def parameters(self, endpoint):
        """The query parameter names the endpoint reads when asked with one it does not know (found once
        per worker: they depend on the code, not on the data)."""
        if endpoint not in PARAMETERS:
            RecordingArgs.asked.clear()
            with _templates_not_rendered(self.app):  # the views read their parameters; pages are not needed
                self.get(endpoint, {"zz-unknown": "1"})
            PARAMETERS[endpoint] = sorted(RecordingArgs.asked - {"zz-unknown"})
        return PARAMETERS[endpoint]

    def pairs(self):
        """(endpoint, parameter) for every query parameter of every GET page (pages whose view module never
        reads the query string have none: see test_only_view_modules_read_the_query_string)."""
        readers = [endpoint for endpoint in self.pages if _reads_query(self.app.view_functions[endpoint])]
        return [(endpoint, name) for endpoint in readers for name in self.parameters(endpoint)]


#: endpoint -> the query parameters it reads (Sweep.parameters)
PARAMETERS = {}
QUERY_READ = re.compile(r"request\.(args|values)\b")


def _reads_query(view):
    return bool(QUERY_READ.search(Path(inspect.getsourcefile(inspect.unwrap(view))).read_text()))


def test_only_view_modules_read_the_query_string():
    """What lets the sweeps skip the pages of view modules that never mention request.args."""
    readers = {path.name for path in (ROOT / "opsmgr").rglob("*.py") if QUERY_READ.search(path.read_text())}
    assert readers and all(name.endswith("views.py") for name in readers), readers


@contextmanager
def _templates_not_rendered(app):
    """Every template renders as an empty string (the templates read no query parameter the view did not)."""
    environment = app.jinja_env
    empty = environment.from_string("")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(environment, "get_or_select_template", lambda *args, **kwargs: empty)
        yield


@pytest.fixture
def sweep(backend, hardening_worlds, clock, request):
    with hardening_worlds(backend, *world_sources(backend, request)).fresh_copy(clock) as world:
        app, data = world.app, world.data
        app.request_class = RecordingRequest
        clients = {}
        for role, user in data["staff"].items():
            clients[role] = app.test_client()
            clients[role].user = user
            sign_in(clients[role], user.username, PASSWORD)
        ids = {**data["ids"], "target": data["target"].id}
        pages = {}
        for endpoint, (method, url, _data) in REQUESTS.items():
            seen_by = [role for role, status in zip(ROLES, MATRIX[endpoint], strict=True)
                       if status == 200 and role != "anonymous"]
            if method == "GET" and seen_by and endpoint != "static":
                pages[endpoint] = (seen_by[0], fill(url, ids))
        yield Sweep(app, clients, pages)
        app.request_class = Request


#: Values no date or id parameter may answer with a 5xx: the ends of the calendar, dates that do not exist,
#: ids past a 64-bit integer, numbers a float reads as infinite.
OUT_OF_RANGE = ("0001-01-01", "9999-12-31", "0000-00-00", "2026-02-30", "10000-01-01", "garbage", str(2**31),
                str(2**63), str(2**64), str(-(2**63) - 1), "-1", "0", "1e400", "NaN", "1.5")


def _role_for(endpoint, method):
    """A role the matrix lets reach the endpoint (the guard passes it to the view), else admin."""
    allowed = [role for role, status in zip(ROLES, MATRIX.get(endpoint, (403,) * len(ROLES)), strict=True)
               if role != "anonymous" and status not in (302, 403)]
    return allowed[0] if allowed else "admin"


def _id_rules(app):
    return [rule for rule in app.url_map.iter_rules()
            if any(isinstance(converter, IdConverter) for converter in rule._converters.values())]


@pytest.mark.long
def test_an_id_past_the_id_columns_is_a_404_on_every_id_route_and_the_largest_id_is_no_5xx(sweep, long_run):
    """Every <int:...> route, each method: 2**63 is a 404 at routing (SQLite raised OverflowError on it, and
    PostgreSQL "integer out of range" past 2**31 - 1); the largest id is looked up and not found. Full
    size adds 2**31, 10**30 and 0."""
    cases = ((2**63, {404}), (LARGEST_ID, None), *(((2**31, {404}), (10**30, {404}), (0, {404})) if long_run else ()))
    rules = _id_rules(sweep.app)
    assert len(rules) >= 40, "every <int:...> route uses the bounded converter"
    adapter = sweep.app.url_map.bind("localhost")
    for rule in rules:
        for method in sorted(rule.methods & {"GET", "POST"}):
            client = sweep.clients[_role_for(rule.endpoint, method)]
            for value, expected in cases if long_run or method == "GET" else cases[:1]:
                values = {name: value if isinstance(rule._converters.get(name), IdConverter)
                          else URL_ARGUMENTS[name] for name in rule.arguments}
                url = adapter.build(rule.endpoint, values, method=method)
                response = client.submit(url) if method == "POST" else client.get(url)
                response.close()
                where = f"{method} {url} as {client.user.role}"
                assert response.status_code < 500, where
                assert expected is None or response.status_code in expected, where


@pytest.mark.long
def test_no_date_or_number_parameter_answers_with_a_5xx(sweep, long_run):
    """Every query parameter every GET page reads, given each out-of-range value (short sample: one each, rotating)."""
    pairs = sweep.pairs()
    assert len(pairs) >= 30
    for index, (endpoint, name) in enumerate(pairs):
        for value in OUT_OF_RANGE if long_run else _sample(OUT_OF_RANGE, index, 1):
            response = sweep.get(endpoint, {name: value})
            assert response.status_code < 500, (endpoint, name, value)


#: (endpoint, parameter, the error shown for a date outside the form's range)
CALENDAR_ENDS = (("worklists.week", "start", "Enter a date between 1000 and 9000."),
                 ("worklists.week", "day", "Enter a date between 1000 and 9000."),
                 ("followups.worklist_page", "due_by", "Enter a date between 1000 and 9000."),
                 ("audit.event_list", "end", "Enter a date between 1900 and 9000."),
                 ("outcomes.page", "start", "Enter a date between 2000 and 2999."))


def test_the_ends_of_the_calendar_are_a_worded_error_next_to_the_field(sweep):
    """/schedule?start=0001-01-01 (and 9999-12-31) overflowed the week arithmetic: a 500."""
    for endpoint, name, message in CALENDAR_ENDS:
        role, url = sweep.pages[endpoint]
        for value in ("0001-01-01", "9999-12-31"):
            response = sweep.clients[role].get(url, query_string={name: value})
            assert response.status_code in (200, 400), (endpoint, value)
            assert message in response.get_data(as_text=True), (endpoint, value)


def _sample(values, offset, size):
    """`size` of `values` from a rotating offset: across many parameters, every value is used."""
    return [values[(offset * size + i) % len(values)] for i in range(size)]


# --- SQL injection ---------------------------------------------------------------------------------

#: Classic payloads: quotes, tautologies, stacked queries, UNION, comments, time delays, NUL, encodings.
SQL_INJECTION = (
    "'", '"', "''", "`", "\\", "' OR 1=1--", "' OR '1'='1", '" OR "1"="1', "1 OR 1=1", "1' OR '1'='1' /*",
    "'; DROP TABLE patient;--", "1; DROP TABLE audit_event", "'); DELETE FROM staff_user;--",
    "' UNION SELECT NULL--", "' UNION SELECT username, password_hash FROM staff_user--",
    "1 UNION ALL SELECT 1,2,3,4,5,6,7,8,9,10--", "admin'--", "admin' #", "*/ OR /*", "-- ", "#",
    "1' AND SLEEP(5)--", "'; SELECT pg_sleep(5)--", "1); SELECT pg_sleep(5);--",
    "' AND 1=(SELECT COUNT(*) FROM sqlite_master)--", "' AND randomblob(500000000)--",
    "\x00", "abc\x00' OR 1=1--", "%27%20OR%201%3D1--", "1' ORDER BY 99--", "id DESC; DROP TABLE x",
    "(SELECT 1)", "' || (SELECT version()) || '", "1::text", "CAST('x' AS int)", "' COLLATE nocase--",
)
#: Text a database error would leave in a page (SQLAlchemy, sqlite3, psycopg, PostgreSQL).
SQL_ERROR = re.compile(r"OperationalError|ProgrammingError|DataError|IntegrityError|InternalError|sqlalchemy|"
                       r"sqlite3|psycopg|SQLSTATE|syntax error at or near|unrecognized token|Traceback", re.I)


def test_the_corpus_is_large_enough():
    assert len(set(SQL_INJECTION)) >= 30


@pytest.mark.long
def test_sql_injection_payloads_in_every_query_parameter_give_no_5xx_and_no_sql_error(sweep, long_run):
    """Every search, sort, filter and id parameter of every GET page, as a role that sees the page, given
    every payload (full size) or one each, rotating over the corpus (short sample)."""
    for index, (endpoint, name) in enumerate(sweep.pairs()):
        for payload in SQL_INJECTION if long_run else _sample(SQL_INJECTION, index, 1):
            started = time.monotonic()
            response = sweep.get(endpoint, {name: payload})
            where = (endpoint, name, payload)
            assert response.status_code < 500, where
            assert not SQL_ERROR.search(response.get_data(as_text=True)), where
            assert time.monotonic() - started < 4, f"{where}: a delay payload ran"


def test_an_unknown_sort_column_is_refused_and_the_report_keeps_its_default_order(sweep):
    role, url = sweep.pages["audit.event_list"]
    client = sweep.clients[role]
    default = client.get(url).get_data(as_text=True)
    assert len(_event_ids(default)) > 5
    for column in ("password_hash", "id; DROP TABLE audit_event", "occurred_at DESC", "details"):
        response = client.get(url, query_string={"sort": column})
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "Not a valid choice" in html, column
        ids = _event_ids(html)
        assert ids == sorted(ids, reverse=True) and set(_event_ids(default)) <= set(ids), column


def _event_ids(html):
    """The report's event ids, in the order shown (the default: newest first)."""
    return [int(number) for number in re.findall(r"<tr>\s*<td>(\d+)</td>", html)]


def test_sorting_reads_its_column_from_the_allowlist_only():
    """The report's ORDER BY column is looked up in SORTABLE (ORM columns), never built from the request."""
    source = (ROOT / "opsmgr" / "audit" / "service.py").read_text()
    assert "column = SORTABLE.get(criteria.sort, AuditEvent.id)" in source
    assert all(isinstance(column, InstrumentedAttribute) for column in SORTABLE.values())


#: Files that could build SQL text: the short sample of the bandit check (the long run scans every file).
SQL_TEXT = re.compile(r"\btext\(|exec_driver_sql|\bSELECT\b|\bINSERT INTO\b|\bDELETE FROM\b|\bUPDATE\b \w+ SET\b")


@pytest.mark.long
@pytest.mark.filterwarnings("ignore:The verify_requirements argument:DeprecationWarning")  # bandit 1.9 x stevedore 5.10
def test_bandit_finds_no_sql_built_from_strings(long_run):
    """bandit's B608 (SQL built by formatting or concatenating strings) over opsmgr/: no finding."""
    from bandit.core import config, manager

    files = [str(path) for path in sorted((ROOT / "opsmgr").rglob("*.py"))
             if long_run or SQL_TEXT.search(path.read_text())]
    assert len(files) >= 5
    scan = manager.BanditManager(config.BanditConfig(), "file", profile={"include": {"B608"}, "exclude": set()})
    scan.discover_files(files, recursive=False)
    scan.run_tests()
    assert scan.files_list and not scan.skipped, scan.skipped
    assert [(issue.fname, issue.lineno, issue.text) for issue in scan.get_issue_list()] == []


# --- errors in the production configuration --------------------------------------------------------

CANARY = "CANARY-PHI-Zebediah-1931"
SECRET = "production-secret-key-never-shown-0123456789"


def production_app(sqlite_template, tmp_path, **environ):
    """create_app on the production Config (config.Config, as `make run` builds it) on a copy of the template."""
    shutil.copy(sqlite_template, tmp_path / "production.sqlite3")
    return create_app(Config({"OPSMGR_DATABASE_URL": f"sqlite:///{tmp_path / 'production.sqlite3'}",
                              "OPSMGR_INSTANCE_PATH": str(tmp_path / "instance"), "OPSMGR_TIMEZONE": "UTC",
                              "OPSMGR_SECRET_KEY": SECRET, "OPSMGR_AUDIT_KEY": SECRET + "-audit", **environ}))


def test_a_forced_error_in_production_shows_the_generic_page_and_logs_no_phi(sqlite_template, tmp_path,
                                                                          monkeypatch, caplog):
    app = production_app(sqlite_template, tmp_path)
    assert not app.debug and not app.testing and not app.config["PROPAGATE_EXCEPTIONS"]

    def failing_query(*args, **kwargs):  # a database error whose text holds SQL and the request's PHI
        db.session.execute(text("SELECT legal_name FROM no_such_table WHERE legal_name = :name"),
                           {"name": request.args["patient"]})

    monkeypatch.setattr(core_views, "jsonify", failing_query)
    caplog.set_level(logging.DEBUG)
    response = app.test_client().get(f"/healthz?patient={CANARY}", headers={"X-Patient": CANARY})

    html = response.get_data(as_text=True)
    assert response.status_code == 500 and response.mimetype == "text/html"
    assert "Something went wrong" in html
    for leak in (CANARY, SECRET, "Traceback", 'File "', "no_such_table", "SELECT", "OperationalError", "sqlite"):
        assert leak not in html, leak
    assert "OperationalError" in caplog.text, "the error is logged, by type"
    assert CANARY not in caplog.text and SECRET not in caplog.text
    assert all(record.exc_info is None for record in caplog.records)


def test_debug_mode_cannot_be_turned_on_in_production(sqlite_template, tmp_path, monkeypatch):
    assert Config.DEBUG is False
    assert Config({"FLASK_DEBUG": "1", "OPSMGR_DEBUG": "1", "OPSMGR_INSTANCE_PATH": str(tmp_path)}).DEBUG is False
    with pytest.raises(RuntimeError, match="never runs with Flask debug mode"):  # DEBUG in the configuration
        create_app(type("DebugConfig", (Config,), {"DEBUG": True})({"OPSMGR_INSTANCE_PATH": str(tmp_path)}))
    app = production_app(sqlite_template, tmp_path)
    monkeypatch.setenv("FLASK_DEBUG", "1")  # `flask --debug run` and FLASK_DEBUG=1 set app.debug after loading
    with pytest.raises(RuntimeError, match="never runs with Flask debug mode"):
        ScriptInfo(create_app=lambda: app).load_app()
    assert app.debug is False


# --- bidirectional controls ------------------------------------------------------------------------

#: Every embedding, override and isolate control, and the marks that are kept (U+200E, U+200F, U+061C).
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
MARKS = "\u200e\u200f\u061c"


def test_clean_text_removes_every_bidi_control_and_keeps_the_marks():
    assert clean_text(f" Ada{BIDI} Quill{MARKS} ") == f"Ada Quill{MARKS}"
    assert clean_text("Dose 20 mg \u202e;gm 002\u202c") == "Dose 20 mg ;gm 002"
    # C0 (but tab and newlines), DEL and C1 controls go too; the first letters after C1 (U+00A0 on) stay.
    assert clean_text("a\x00b\x7fc\x80d\x85e\x9ff\tg\nh\u00a0i\u00e9") == "abcdef\tg\nh\u00a0i\u00e9"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_bidi_controls_are_stripped_from_a_note_a_patient_name_and_a_message_template(sweep):
    nurse, admin = sweep.clients["nurse"], sweep.clients["admin"]
    hidden = "\u202egnp.exe\u202c"  # shows as "exe.png"
    created = nurse.submit("/patients/new", {**NEW_PATIENT, "mrn": "BIDI-1", "legal_name": f"Ada {hidden} Quill"})
    assert created.status_code == 302, created.get_data(as_text=True)
    session_id = sweep.pages["notes.page"][1].split("/")[2]
    saved = nurse.submit(f"/sessions/{session_id}/note", {"version": "0", "narrative": f"Settled {hidden}."})
    assert saved.status_code in (200, 302), saved.get_data(as_text=True)
    sms = "Hi {{ first_name }}, see you {{ session_day }} " + hidden
    assert admin.submit("/admin/messages", {**TEMPLATE_DEFAULTS, "reminder_sms": sms, "action": "save"}) \
        .status_code in (200, 302)
    with sweep.app.app_context():
        stored = [db.session.scalar(select(Patient.legal_name).where(Patient.mrn == "BIDI-1")),
                  db.session.scalar(select(SessionNote.narrative).where(SessionNote.session_id == int(session_id))),
                  db.session.scalar(select(MessageTemplate.body).where(MessageTemplate.name == "reminder_sms"))]
    assert stored == ["Ada gnp.exe Quill", "Settled gnp.exe.", "Hi {{ first_name }}, see you {{ session_day }} gnp.exe"]


# --- clinical background: what a coordinator sees ----------------------------------------------------

#: On the patient list, the chart, the edit form and the series page: clinical background (README, Security model).
CLINICAL_ON_PAGES = ("Pregnancy possible", "Treatment-resistant depression", 'name="pregnancy_possible"',
                     'name="indication"', "mg/kg")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_coordinator_sees_no_indication_pregnancy_or_dose_and_a_nurse_sees_them(sweep):
    pages = ("patients.list", "patients.detail", "patients.edit", "series.detail")
    seen = {role: "".join(sweep.clients[role].get(sweep.pages[page][1]).get_data(as_text=True) for page in pages)
            for role in ("coordinator", "nurse")}
    for words in CLINICAL_ON_PAGES:
        assert words not in seen["coordinator"], words
        assert words in seen["nurse"], words
