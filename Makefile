# Developer entry points. 'make run' and 'make test' each set up everything
# they need on a fresh machine: a virtual environment with kiskadee and its
# test tools, and the analyzers.

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: all setup system-packages shared-analyzers run test test-fast bench clean rpm

all: test

$(BIN)/kiskadee: setup.py requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e . -r requirements-test.txt
	touch $@

system-packages:
	packaging/install-system-packages

# As root the local sandbox runs analyzers as nobody, who cannot run this venv's
# flawfinder: install one for every user (see the script).
shared-analyzers: system-packages
	packaging/install-shared-analyzers

setup: $(BIN)/kiskadee system-packages shared-analyzers

run: setup
	$(BIN)/kiskadee run

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests

# The inner loop: every test but those marked slow (docker, RabbitMQ, RPM, systemd and any over ~3 s).
test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS) tests

bench: setup
	$(BIN)/python bench/analyze_overhead.py
	$(BIN)/python bench/store_findings.py
	$(BIN)/python bench/analyzers.py
	$(BIN)/python bench/bridge.py
	$(BIN)/python bench/docker_overhead.py
	$(BIN)/python bench/diff.py

# The noarch RPMs (kiskadee, kiskadee-fedmsg) in build/rpm; see packaging/rpm/build.
rpm: setup
	KISKADEE_TEST_DEPS="$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
		packaging/rpm/build

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
