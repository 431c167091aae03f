"""How many tests ran on each database, printed at the end of every run (with or without workers),
so that a change to the harness can show it dropped nothing."""
from collections import Counter

DATABASES = ("sqlite", "postgresql", "browser", "none")
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "browser": "Chromium on SQLite", "none": "no database"}

_results = {}  # nodeid -> [database, outcome]


def database_of(item):
    callspec = getattr(item, "callspec", None)
    backend = callspec.params.get("backend") if callspec else None
    if backend:
        return backend
    if item.get_closest_marker("postgres_only"):
        return "postgresql"
    if item.get_closest_marker("browser"):
        return "browser"
    return "none"


def pytest_collection_modifyitems(items):
    for item in items:
        item.user_properties.append(("database", database_of(item)))


def pytest_runtest_logreport(report):
    database = dict(report.user_properties).get("database", "none")
    result = _results.setdefault(report.nodeid, [database, "passed"])
    if report.failed:
        result[1] = "failed"
    elif report.skipped and result[1] == "passed":
        result[1] = "skipped"


def pytest_terminal_summary(terminalreporter):
    if not _results:
        return
    ran = Counter(database for database, _ in _results.values())
    outcomes = Counter((database, outcome) for database, outcome in _results.values())
    parts = []
    for database in DATABASES:
        if ran[database]:
            not_passed = ", ".join(f"{outcomes[database, outcome]} {outcome}" for outcome in ("failed", "skipped")
                                   if outcomes[database, outcome])
            parts.append(f"{LABELS[database]} {ran[database]}" + (f" ({not_passed})" if not_passed else ""))
    terminalreporter.write_sep("-", "tests per database")
    terminalreporter.write_line(", ".join(parts) + f"; {sum(ran.values())} in all")
