# Fleetflow: every target bootstraps its own virtualenv in .venv/ from a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The whole resolved set (runtime and dev), written by `make lock` from pyproject.toml's pins.
LOCK := requirements.lock
# Django settings for what loads them outside the test runner (manage.py, mypy's Django plugin).
CHECK_ENV := DEBUG=0 SECRET_KEY=test-only-secret-key

.PHONY: demo test test-inner bench bench-inner lint lint-inner lock venv

venv: $(STAMP)

# Installs exactly requirements.lock (what CI tested) and then the project without resolving again;
# runs again whenever the lock or pyproject.toml changes. A pin missing from the lock stops it.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) tests/lockfile.py
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

# Re-resolves requirements.lock from pyproject.toml (keeps every version that still fits; a few
# seconds). Needs only uv, so it works even when the current lock no longer installs.
lock:
	test -x $(VENV)/bin/uv || { test -x $(PY) || $(PYTHON) -m venv $(VENV); \
		$(PY) -m pip install --quiet "$$(sed -n 's/^ *"\(uv==[^"]*\)".*/\1/p' pyproject.toml)"; }
	$(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --extra dev \
		--custom-compile-command "make lock" --output-file $(LOCK) pyproject.toml

# Runs the whole system on embedded defaults and prints the URL.
demo: $(STAMP)
	DEBUG=1 $(PY) -m console.demo

# Starts its own PostgreSQL and Redis, then checks, lints and runs the test suite against them.
test: $(STAMP)
	$(PY) -m tests.services -- $(MAKE) --no-print-directory test-inner

test-inner:
	DEBUG=0 SECRET_KEY=test-only-secret-key $(PY) manage.py check
	DEBUG=0 SECRET_KEY=test-only-secret-key $(PY) manage.py makemigrations --check --dry-run
	$(MAKE) --no-print-directory lint-inner
	DEBUG=0 SECRET_KEY=test-only-secret-key $(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks print JSON lines; they run against their own PostgreSQL and Redis like the tests.
bench: $(STAMP)
	$(PY) -m tests.services -- $(MAKE) --no-print-directory bench-inner

bench-inner:
	@for bench in bench/*.py; do echo "# $$bench"; DEBUG=0 SECRET_KEY=bench-only $(PY) $$bench || exit 1; done

# ruff, the formatter, mypy (packages and settings in pyproject.toml) and the import contracts.
lint: $(STAMP)
	$(MAKE) --no-print-directory lint-inner

lint-inner:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(CHECK_ENV) $(PY) -m mypy
	$(CHECK_ENV) $(VENV)/bin/lint-imports
