# Everything runs from a project-local virtual environment built from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit run bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/planpulse demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint typecheck unit

run: $(STAMP)
	$(BIN)/planpulse serve

bench: $(STAMP)
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

clean:
	rm -rf $(VENV) planpulse-demo.db demo-report .pytest_cache .mypy_cache .ruff_cache

# Before the first release the initial migration is regenerated from the models whenever they change.
migration: $(STAMP)
	rm -f storage/migrations/versions/0001_initial_schema.py /tmp/planpulse-migration.db
	$(BIN)/python -c "from alembic import command; from storage.db import make_engine, alembic_config; command.revision(alembic_config(make_engine('sqlite:////tmp/planpulse-migration.db')), message='initial schema', autogenerate=True, rev_id='0001')"
	$(BIN)/ruff format storage/migrations/versions >/dev/null
