# The two front-door commands: `make demo` (run the pipeline) and `make test` (pass the tests).
SHELL := /bin/bash
VENV := .venv/bin
STACK_ENV = eval "$$($(VENV)/scout dev up | grep '^export ')"

.PHONY: setup up down status demo lint test test-only

setup:
	@scripts/bootstrap.sh

up: setup
	@$(VENV)/scout dev up

down:
	@$(VENV)/scout dev down

status:
	@$(VENV)/scout dev status

demo: setup
	@$(STACK_ENV) && $(VENV)/scout migrate && $(VENV)/scout demo

# mypy's cache lives with the other caches (a fresh clone then re-checks only what changed).
lint: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	MYPY_CACHE_DIR=$${SCOUT_CACHE_DIR:-$$HOME/.cache/scout}/mypy $(VENV)/mypy --strict services bench

# Lint, type-check and run every test against the local stack (started if needed).
test: lint
	@$(STACK_ENV) && $(VENV)/pytest

test-only:
	@$(STACK_ENV) && $(VENV)/pytest
