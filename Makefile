# The two commands a new user needs: `make run` and `make test`. Everything else is for developers.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help venv run test lint format services browser lock clean loadtest fuzz

help:
	@echo "make run    set up (venv, .env, SQLite database, demo data) and start on http://127.0.0.1:8000"
	@echo "make test   set up and run every check: lint, types and the whole test suite"
	@echo "make lint   ruff and mypy only;  make format  rewrite code in house style"
	@echo "make lock   refresh constraints.txt after changing dependencies"
	@echo "make loadtest  Locust, 50 registers on a live server (bench/loadtest/run.py; LOADTEST_ARGS=...)"
	@echo "make fuzz      the long API fuzzing run (make test runs a bounded one)"

# Reinstall only when the dependencies change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is required"; exit 1; }
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: venv
	@test -f .env || $(BIN)/posomni setup-env --non-interactive --env development
	$(BIN)/posomni db setup
	$(BIN)/posomni serve --with-worker

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

services:
	scripts/services.sh

browser:
	scripts/browser.sh

test: venv lint services browser
	$(BIN)/pytest

# Load and robustness evidence (bench/README.md). Each starts and removes its own server, database and Redis.
LOADTEST_ARGS ?=
loadtest: venv services
	$(BIN)/python bench/loadtest/run.py $(LOADTEST_ARGS)

# The bounded fuzz run is part of `make test` (tests/fuzz); this one fuzzes far more and adds the stateful phase.
fuzz: venv services
	POSOMNI_FUZZ_EXAMPLES=100 POSOMNI_FUZZ_PHASES=examples,coverage,fuzzing,stateful POSOMNI_FUZZ_TIMEOUT=2400 \
		$(BIN)/pytest tests/fuzz

lock: venv
	$(BIN)/pip freeze --exclude-editable --disable-pip-version-check | grep -v '^posomni' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
