# jamgen: `make run` starts the bot, `make test` runs the whole suite and lint.
# Both install into .venv first when needed (scripts/install.sh, idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install install-dev run test lint format fuzz bench clean

install:
	@bash scripts/install.sh

install-dev:
	@bash scripts/install.sh --dev

run: install
	@$(VENV)/bin/jamgen run

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory lint

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

fuzz: install-dev
	JAMGEN_FUZZ_SECONDS=$${JAMGEN_FUZZ_SECONDS:-60} $(PY) -m pytest tests/reliability/test_fuzz_audio.py -q

bench: install-dev
	$(PY) bench/audio.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
