# opsmgr: `make run` serves the app, `make test` runs the whole suite. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Debian packages: WeasyPrint's libraries and fonts to run (Droid Sans Fallback prints CJK names in
# PDFs); PostgreSQL and Chromium to test; wrk to benchmark (the suite smokes the benchmark, so it
# needs wrk too).
APT_RUN := python3-venv libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-liberation \
  fonts-droid-fallback
APT_BENCH := wrk
APT_TEST := $(APT_RUN) postgresql chromium qpdf poppler-utils $(APT_BENCH)

.PHONY: run test test-long bench screenshots setup setup-test lint audit-deps migrate-check clean

run: setup
	$(PY) -m flask --app app db upgrade
	$(PY) -m flask --app app demo seed
	$(PY) -m flask --app app serve

# Two pytest-xdist workers, one per core, stealing work so neither idles at the end (`make test
# PYTEST_WORKERS=0` runs in one process);
# PYTEST_ARGS narrows or adds to the run. The elapsed time, setup included, is the last line.
PYTEST_WORKERS ?= 2
test:
	@start=$$(date +%s); status=0; \
	$(MAKE) --no-print-directory setup-test && \
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS) || status=$$?; \
	elapsed=$$(( $$(date +%s) - start )); \
	printf 'make test: %d min %02d s (setup and pytest)\n' $$((elapsed / 60)) $$((elapsed % 60)); \
	exit $$status

# The long forms of the tests marked `long` (10,000 hostile submissions, 50 kills of the server, ...):
# the same tests `make test` runs as short samples, at full size. `.ci/run` runs both.
test-long:
	@start=$$(date +%s); status=0; \
	$(MAKE) --no-print-directory setup-test && \
	OPSMGR_TEST_LONG=1 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal -m long $(PYTEST_ARGS) || status=$$?; \
	elapsed=$$(( $$(date +%s) - start )); \
	printf 'make test-long: %d min %02d s (setup and pytest)\n' $$((elapsed / 60)) $$((elapsed % 60)); \
	exit $$status

# The app against a bare Flask "hello" under gunicorn, driven by wrk: see tests/bench/bench.py.
# `make bench DB=postgres`; BENCH_SECONDS (per page, default 5), BENCH_SIZES (patients at each size, default
# 200,20000), BENCH_PATIENTS (one size instead) and BENCH_MEMORY_REQUESTS (default 50,000) narrow or widen it.
# Then reminder dispatch against a bare smtplib loop (tests/bench/reminders.py; BENCH_MESSAGES, default 10,000),
# and the signed PDF summaries against WeasyPrint alone on the same HTML (tests/bench/pdf.py; BENCH_PDF_RUNS).
DB ?= sqlite
bench: setup-test
	$(PY) -m tests.bench.bench --db $(DB)
	$(PY) -m tests.bench.reminders --db $(DB)
	$(PY) -m tests.bench.pdf --db $(DB)

# The README's screenshots (tests/screenshots/*.png) from the demo clinic, in Debian's Chromium.
screenshots: setup-test
	$(PY) -m tests.readme_screenshots

# ruff, then bandit: no Medium or High finding in the app (a justified one carries `# nosec BXXX  # why`).
lint: setup-test
	$(PY) -m ruff check .
	$(PY) -m bandit --quiet --recursive opsmgr app.py config.py --severity-level medium

# Known vulnerabilities in the pinned packages (pip-audit, PyPI's advisory data). Not part of `lint`: it needs
# pypi.org's per-release JSON API or api.osv.dev, which this build machine cannot reach (README, Security).
audit-deps: setup-test
	$(PY) -m pip_audit --strict --no-deps --disable-pip --progress-spinner off -r requirements-dev.lock

setup: .sysdeps-run $(VENV)/.installed-run
setup-test: .sysdeps-test $(VENV)/.installed-dev

.PHONY: .sysdeps-run .sysdeps-test
.sysdeps-run:
	@.ci/apt-ensure $(APT_RUN)
.sysdeps-test:
	@.ci/apt-ensure $(APT_TEST)

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "opsmgr needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

$(VENV)/.installed-run: requirements.lock | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $@

$(VENV)/.installed-dev: requirements-dev.lock | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	@touch $@ $(VENV)/.installed-run

clean:
	rm -rf $(VENV) .pytest_cache
