"""opsmgr/rules/ is pure: only the standard library and other rules modules, and no clock reads."""
import ast
import sys
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "opsmgr" / "rules"
MODULES = sorted(RULES.glob("*.py"))
ALLOWED_PACKAGES = set(sys.stdlib_module_names)
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic"}


def imported_roots(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: inside rules/
                continue
            yield node.module or "", node.lineno


def test_there_are_rules_modules():
    assert any(path.name != "__init__.py" for path in MODULES)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_rules_import_only_the_standard_library(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for name, line in imported_roots(tree):
        root = name.split(".")[0]
        allowed = root in ALLOWED_PACKAGES or name.startswith("opsmgr.rules")
        assert allowed, f"{path.name}:{line} imports {name}; rules may use the standard library only"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_rules_never_read_the_clock(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS:
            target = ast.unparse(node.func.value)
            if target in {"datetime", "date", "time", "datetime.datetime", "datetime.date"}:
                pytest.fail(f"{path.name}:{node.lineno} reads the clock ({ast.unparse(node)}); pass `now` in")


def test_purity_check_catches_a_framework_import(tmp_path):
    bad = ast.parse("from flask import current_app\nimport sqlalchemy\n")
    roots = [name.split(".")[0] for name, _ in imported_roots(bad)]
    assert [r for r in roots if r not in ALLOWED_PACKAGES] == ["flask", "sqlalchemy"]
