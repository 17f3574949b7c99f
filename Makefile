# The two commands of the README: `make run` (set up and run) and `make test` (the whole suite).
VENV ?= .venv
PYTHON ?= python3

.PHONY: run test setup lint bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev,otel]'
	touch $@

setup: $(VENV)/.installed

run: setup  ## gateway + worker in one process on the local RabbitMQ
	$(VENV)/bin/jobcast serve

test: setup  ## unit, integration, end-to-end and fault tests, against the real broker
	$(VENV)/bin/pytest

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

bench: setup  ## the benchmark table of bench/README.md
	$(VENV)/bin/python -m bench
