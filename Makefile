# The two commands of the README: `make run` (set up and run) and `make test` (the whole suite).
# Each does all the set-up on a fresh machine: the venv, and the services it needs when nothing
# answers on their URLs (harness/services.py: the machine's RabbitMQ and PostgreSQL, or for
# `make run` the compose file's RabbitMQ where Docker is; otherwise one line says how).
VENV ?= .venv
PYTHON ?= python3

.PHONY: run test setup lint bench screenshot

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev,otel,bench]'
	touch $@

setup: $(VENV)/.installed

run: setup  ## gateway + worker in one process on the local RabbitMQ
	$(PYTHON) -m harness.services run -- $(VENV)/bin/jobcast serve

test: setup  ## unit, integration, end-to-end and fault tests, against the real broker
	$(PYTHON) -m harness.services test -- $(VENV)/bin/pytest

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

bench: setup  ## the benchmark table of bench/README.md
	$(VENV)/bin/python -m bench

screenshot: setup  ## docs/dashboard.png, from a throwaway gateway and vhost, in Debian's chromium
	$(PYTHON) -m harness.browser
	$(PYTHON) -m harness.services run -- $(VENV)/bin/python -m harness.screenshot
