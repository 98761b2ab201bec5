# Developer entry points. 'make run' and 'make test' each set up everything
# they need on a fresh machine: a virtual environment with kiskadee and its
# test tools, and the analyzers; 'make test' (and bench, rpm) also the system
# programs only the tests need (packaging/test-packages).

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: all setup test-setup system-packages test-packages shared-analyzers run test test-fast bench clean rpm

all: test

# After the system packages: a system Python may lack venv's pip (Debian's python3-venv).
$(BIN)/kiskadee: setup.py $(wildcard requirements.txt) requirements-test.txt | system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e . -r requirements-test.txt
	touch $@

system-packages:
	PYTHON=$(PYTHON) packaging/install-system-packages system-packages

test-packages:
	PYTHON=$(PYTHON) packaging/install-system-packages system-packages test-packages

# As root the local sandbox runs analyzers as nobody, who cannot run this venv's
# flawfinder: install one for every user (see the script).
shared-analyzers: system-packages
	packaging/install-shared-analyzers

setup: $(BIN)/kiskadee system-packages shared-analyzers

# CodeChecker reads kiskadee's SARIF in tests/integration/test_sarif_clients.py. It brings
# numpy, matplotlib and sarif-tools (about 340 MB), so it gets its own environment in a cache
# directory, where the test looks for it, rather than the venv.
CODECHECKER ?= codechecker==6.29.1
CODECHECKER_VENV ?= $(HOME)/.cache/kiskadee/codechecker

$(CODECHECKER_VENV)/bin/CodeChecker: | system-packages
	$(PYTHON) -m venv $(CODECHECKER_VENV)
	$(CODECHECKER_VENV)/bin/pip install --quiet '$(CODECHECKER)'
	touch $@

test-setup: setup test-packages $(CODECHECKER_VENV)/bin/CodeChecker

run: setup
	$(BIN)/kiskadee run

test: test-setup
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests

# The inner loop: every test but those marked slow (docker, RabbitMQ, RPM, systemd and any over ~3 s).
test-fast: test-setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS) tests

bench: test-setup
	$(BIN)/python bench/analyze_overhead.py
	$(BIN)/python bench/store_findings.py
	$(BIN)/python bench/analyzers.py
	$(BIN)/python bench/bridge.py
	$(BIN)/python bench/docker_overhead.py
	$(BIN)/python bench/diff.py
	$(BIN)/python bench/diff_accuracy.py
	$(BIN)/python bench/ranking.py
	$(BIN)/python bench/report.py
	$(BIN)/python bench/incremental.py --builds
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/analysis_cost.py

# The noarch RPMs (kiskadee, kiskadee-fedmsg) in build/rpm; see packaging/rpm/build.
rpm: test-setup
	KISKADEE_TEST_DEPS="$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
		packaging/rpm/build

# kiskadee(1) and kiskadee.toml(5) in build/man, from the argument parser and packaging/kiskadee.toml.
man: $(BIN)/kiskadee
	$(BIN)/python -m kiskadee.cli.manpage --output build/man

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
