# churnguard: `make demo` and `make test` are the two commands a new user needs.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: install install-test install-bench demo test lint lock system-deps clean docs

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	$(UV) pip install --quiet --python $(BIN)/python -r requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install-test: $(TEST_STAMP)

$(TEST_STAMP): $(STAMP) requirements-test.lock
	$(UV) pip install --quiet --python $(BIN)/python -r requirements-test.lock
	touch $(TEST_STAMP)

# System packages the tests need, from Debian: Chromium for the report and dashboard tests
# (driven by Playwright with executable_path; no browser download), the PostgreSQL server the
# PostgreSQL tests start (initdb/pg_ctl in a temporary folder) and Java 17 for Spark local mode.
# Idempotent: installs only what is missing.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v java >/dev/null 2>&1 || missing="$$missing openjdk-17-jre-headless"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  echo "installing:$$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: install
	$(BIN)/churnguard demo

test: install-test system-deps
	$(BIN)/ruff check churnguard tests benchmarks
	$(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check churnguard tests benchmarks
	$(BIN)/ruff format --check churnguard tests benchmarks

docs: install
	$(BIN)/python -m churnguard.store.schema > docs/data-model.md

# Re-pin after changing dependencies in pyproject.toml.
lock:
	$(UV) pip compile --quiet pyproject.toml -o requirements.lock --python-version 3.11
	$(UV) pip compile --quiet pyproject.toml --extra test -o requirements-test.lock --python-version 3.11
	$(UV) pip compile --quiet pyproject.toml --extra test --extra bench -o requirements-bench.lock --python-version 3.11

# What the benchmarks compare against (lifetimes for BG/NBD); not needed by the tests.
install-bench: $(TEST_STAMP)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements-bench.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
