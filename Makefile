# Vero: `make run` serves the app, `make test` runs the whole suite (see README.md).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell command -v python3.12 || command -v python3.13 || command -v python3)
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test lint bench install chromium clean-db

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Vero needs Python 3.12 or newer (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.12")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

chromium:
	@scripts/install-chromium.sh

# Plain HTTP on loopback: browsers would drop Secure cookies. Behind HTTPS, set SECURE_COOKIES=true.
run: export SECURE_COOKIES ?= false
run: install
	$(PY) scripts/devdb.py -- bash -c '\
	  $(PY) manage.py migrate --noinput && \
	  $(PY) manage.py seed_registry && \
	  $(PY) manage.py reap_streams && \
	  $(PY) manage.py collectstatic --noinput -v0 && \
	  exec $(PY) -m vero.serve -b $(HOST) -p $(PORT) vero.asgi:application'

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports --no-cache

# The suite runs two server processes on Redis, as production scales out: this machine's Redis
# unless REDIS_URL names another.
test: export REDIS_URL ?= redis://127.0.0.1:6379/0
test: install chromium lint
	$(PY) scripts/devdb.py -- bash -c '\
	  $(PY) manage.py collectstatic --noinput -v0 && \
	  $(VENV)/bin/pytest --create-db $(PYTEST_ARGS)'

bench: install
	$(PY) scripts/devdb.py -- $(PY) bench/run.py

# Stops the embedded cluster if it runs and deletes it (var/postgres, or its home as root).
clean-db:
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) scripts/devdb.py --clean
