# Fleetflow: every target bootstraps its own virtualenv in .venv/ from a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-inner bench bench-inner lint venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Runs the whole system on embedded defaults and prints the URL.
demo: $(STAMP)
	DEBUG=1 $(PY) -m console.demo

# Starts its own PostgreSQL and Redis, then checks, lints and runs the test suite against them.
test: $(STAMP)
	$(PY) -m tests.services -- $(MAKE) --no-print-directory test-inner

test-inner:
	DEBUG=0 SECRET_KEY=test-only-secret-key $(PY) manage.py check
	DEBUG=0 SECRET_KEY=test-only-secret-key $(PY) manage.py makemigrations --check --dry-run
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	DEBUG=0 SECRET_KEY=test-only-secret-key $(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks print JSON lines; they run against their own PostgreSQL and Redis like the tests.
bench: $(STAMP)
	$(PY) -m tests.services -- $(MAKE) --no-print-directory bench-inner

bench-inner:
	@for bench in bench/*.py; do echo "# $$bench"; DEBUG=0 SECRET_KEY=bench-only $(PY) $$bench || exit 1; done

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy engine routing
