# The two commands a new user needs: `make run` and `make test`. Everything else is for developers.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help venv run test lint format services browser lock clean

help:
	@echo "make run    set up (venv, .env, SQLite database, demo data) and start on http://127.0.0.1:8000"
	@echo "make test   set up and run every check: lint, types and the whole test suite"
	@echo "make lint   ruff and mypy only;  make format  rewrite code in house style"
	@echo "make lock   refresh constraints.txt after changing dependencies"

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
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

services:
	scripts/services.sh

browser:
	scripts/browser.sh

test: venv lint services browser
	$(BIN)/pytest

lock: venv
	$(BIN)/pip freeze --exclude-editable --disable-pip-version-check | grep -v '^posomni' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
