# Citizen contact center: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench worker clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Serve the demo city on http://127.0.0.1:8000 (SQLite under var/, jobs in-process, dev gateways).
run: install
	$(BIN)/contact db upgrade
	$(BIN)/contact seed-demo --if-empty
	$(BIN)/contact serve --host 127.0.0.1 --port 8000

worker: install
	$(BIN)/contact worker

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The whole suite; with CONTACT_TEST_DATABASE_URL / CONTACT_TEST_REDIS_URL set it also
# runs every test against that PostgreSQL and Redis.
test: install lint
	$(BIN)/pytest -q -n 2 --dist loadgroup --cov --cov-report=term:skip-covered

# wrk drives the load when it can be installed (Debian package); else a Python client does.
bench: install
	command -v wrk >/dev/null 2>&1 || (command -v apt-get >/dev/null 2>&1 && \
		(apt-get install -y -qq wrk >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1))) || true
	$(BIN)/python -m bench
	$(BIN)/python -m bench.routing
	$(BIN)/python -m bench.duplicates

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .coverage
