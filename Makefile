# jamgen: `make run` starts the bot, `make test` runs the whole suite and lint.
# Both install into .venv first when needed (scripts/install.sh, idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install install-dev run test lint format fuzz bench gpu-check clean

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
	$(VENV)/bin/mypy

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

fuzz: install-dev
	JAMGEN_FUZZ_SECONDS=$${JAMGEN_FUZZ_SECONDS:-60} $(PY) -m pytest tests/reliability/test_fuzz_audio.py -q

bench: install-dev
	$(PY) bench/audio.py --quick

# The GPU figures in one run (docs/PERFORMANCE.md): installs what is missing, then under 8 minutes of
# parts. Without CUDA it runs the CPU-checkable parts with --quick. GPU_CHECK_ARGS="--parts ..." etc.
gpu-check:
	$${PYTHON:-python3} bench/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
