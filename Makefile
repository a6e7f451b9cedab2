# The two commands a newcomer runs: `make demo` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_CONFIG := config.demo.toml

.PHONY: demo test lint venv clean chaos bench

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "craftlink needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	@mkdir -p var
	$(BIN)/craftlink --config $(DEMO_CONFIG) db upgrade
	$(BIN)/craftlink --config $(DEMO_CONFIG) demo seed
	$(BIN)/craftlink --config $(DEMO_CONFIG) serve

test: $(STAMP)
	bash scripts/test.sh

# The fault scenarios alone (kill -9, database outage, two instances, outbound failures), on SQLite and
# a throw-away PostgreSQL; `make test` runs them too.
chaos: $(STAMP)
	bash scripts/test.sh -m slow tests/faults

# Load harness: craftlink vs the bare aiohttp ceiling vs WeRoBot, SQLite/PostgreSQL x 1/2 instances.
# Rewrites the table in docs/benchmarks.md, with the arguments it was made with. Takes 30–40 minutes
# on 2 cores (each craftlink run waits for its backlog to drain); loopback only.
bench: $(STAMP)
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/python -m benchmarks.run --rate 2000 --seconds 5 --max-seconds 5 --probes 5 --write-docs

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
