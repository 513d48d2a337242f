# Two entry points, both starting from nothing but Python 3.11:
#   make demo  - create .venv, install orcapod, run the demo pipeline
#   make test  - create .venv, install dev + ray + docs + SQL + graph + ui extras (and, when
#                missing, the PostgreSQL server the tests start, Graphviz's dot and the
#                Chromium the web view's tests drive), run lint, format
#                check, types, the strict docs build, tests (tests/test_docs.py runs every
#                docs example)
#   make docs  - build the documentation site into site/ (mkdocs build --strict)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck docs pytest bench clean postgresql-server graphviz-dot socket-tools chromium-browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,ray,docs,sqlite,postgresql,graph,ui]'
	touch $@ $(VENV)/.demo-installed

# The tests start a real PostgreSQL server (initdb + pg_ctl); install it when it is missing
# (as root only: elsewhere, install the postgresql package yourself).
postgresql-server:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
		echo "PostgreSQL server binaries (initdb) are missing: install the postgresql package" >&2; \
		exit 1; \
	fi

# The graph tests draw SVG and PNG with Graphviz's dot program; install it when it is missing
# (as root only: elsewhere, install the graphviz package yourself).
graphviz-dot:
	@if command -v dot >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
	else \
		echo "Graphviz's dot program is missing: install the graphviz package" >&2; \
		exit 1; \
	fi

# The web view's tests (tests/ui) drive the system's Chromium with Playwright (never a
# browser Playwright downloads); install it when it is missing (as root only: elsewhere,
# install the chromium package yourself).
chromium-browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "Chromium is missing: install the chromium package" >&2; \
		exit 1; \
	fi

# The Ray cluster tests check the open sockets with `ss` (package iproute2).
socket-tools:
	@if command -v ss >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null; \
	else \
		echo "ss is missing: install the iproute2 package" >&2; \
		exit 1; \
	fi

demo: $(VENV)/.demo-installed
	$(BIN)/orcapod demo

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

# NO_MKDOCS_2_WARNING: silence mkdocs-material's banner about its successor
docs: $(VENV)/.dev-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

pytest: $(VENV)/.dev-installed postgresql-server graphviz-dot socket-tools chromium-browser
	$(BIN)/python -m pytest -q

test: lint typecheck docs pytest

bench: $(VENV)/.demo-installed
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) orcapod-demo site .pytest_cache .mypy_cache .ruff_cache
