# The portal's commands. `make demo` and `make test` work on a fresh machine (CONTRACT.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=
DEMO_ARGS ?=
ARGS ?= --help

.PHONY: demo cli test lint format bench run migrate check-migrations clean help

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP) $@

demo: $(STAMP)  ## Run the portal beside the bundled Entra ID + Graph emulator with sample users.
	$(BIN)/python -m portal.dev.demo $(DEMO_ARGS)

cli: $(STAMP)  ## Run a CLI command on the demo's database: make cli ARGS="users list --json".
	@set -a; if [ -f instance/emulator.env ]; then . ./instance/emulator.env; fi; set +a; \
	  PORTAL_ENV=development DATABASE_URL="sqlite:///$(CURDIR)/instance/portal.db" \
	  $(BIN)/flask --app app $(ARGS)

test: $(DEV_STAMP) check-migrations  ## Run the whole test suite (PostgreSQL too when TEST_DATABASE_URL is set).
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP) check-migrations  ## Check formatting and lint with ruff, and migrations against the models.
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

check-migrations: $(STAMP)  ## Fail when the models and the migrations disagree (`flask db check`).
	@tmp=$$(mktemp -d); export PORTAL_ENV=development DATABASE_URL="sqlite:///$$tmp/check.db"; \
	  out=$$($(BIN)/flask --app app db upgrade 2>&1) && out=$$($(BIN)/flask --app app db check 2>&1); \
	  status=$$?; rm -rf "$$tmp"; \
	  if [ $$status -eq 0 ]; then echo "migrations match the models"; else echo "$$out"; fi; exit $$status

format: $(DEV_STAMP)  ## Format the code with ruff.
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(DEV_STAMP)  ## Run the benchmarks against naive baselines (several minutes).
	$(BIN)/python -m tests.benchmarks

migrate: $(STAMP)  ## Apply migrations to DATABASE_URL (or the default SQLite file).
	$(BIN)/flask --app app db upgrade

clean:  ## Remove the virtualenv, caches and local state.
	rm -rf $(VENV) .pytest_cache .ruff_cache test-output bench-output instance
