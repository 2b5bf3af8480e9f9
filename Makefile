# Two commands for a fresh machine: `make run` (demo at http://127.0.0.1:8000) and `make test`.
SHELL := /bin/bash
# uv from PATH, else a private copy in .tools/ (a venv: works where pip may not touch the system Python).
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
MANAGE := $(UV) run --frozen python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help uv install migrate seed run test lint format messages worker clean

help:
	@echo "make run     install, migrate, seed the demo and serve it on http://$(HOST):$(PORT)"
	@echo "make test    the whole test suite (PostgreSQL, Redis and Chromium when present; all three under CI=true)"
	@echo "make lint    ruff check and format check"
	@echo "make worker  Celery worker and beat against REDIS_URL"
	@echo "make messages  extract and compile the en/fr/nl translations"

uv:
	@command -v uv >/dev/null 2>&1 || test -x .tools/bin/uv || { python3 -m venv .tools && .tools/bin/pip install --quiet uv; }

install: uv
	$(UV) sync --frozen

migrate: install
	$(MANAGE) migrate --noinput

seed: migrate
	$(MANAGE) seed_demo

run: seed
	@echo "Serving the demo on http://$(HOST):$(PORT)/ (Ctrl-C to stop); the logins are listed above."
	$(MANAGE) runserver $(HOST):$(PORT)

test: install
	$(UV) run --frozen pytest

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

format: install
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

messages: install
	$(MANAGE) makemessages --locale fr --locale nl --ignore ".venv/*" --ignore ".tools/*" --ignore "tests/*" --ignore "bench/*" --no-obsolete
	$(MANAGE) compilemessages --locale fr --locale nl --ignore ".venv/*"

worker: install
	@test -n "$$REDIS_URL" || { echo "Set REDIS_URL (e.g. redis://127.0.0.1:6379/0): without it tasks run in the web process."; exit 2; }
	$(UV) run --frozen celery --app loyalty worker --beat --loglevel INFO

clean:
	rm -rf .pytest_cache .ruff_cache staticfiles tests/screenshots .tools
