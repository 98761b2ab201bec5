"""CurveZMQ on tcp://: a real monitor on 127.0.0.1 lets in listed runner keys only; plain tcp is refused.

Each runner here is a real ``kiskadee runner`` process with its own
configuration: the keys it holds are the only thing that differs.
"""

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import HELLO_TARBALL, Suite, run_kiskadee, submit, wait_until, write_config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def configure(suite: Suite, name: str, work: str, curve: str = "", intake: str = "") -> Path:
    """A configuration for one process of the suite: the suite's, with ``work`` and a [service.curve] table."""
    root = suite.root
    endpoints = f'work = "{work}"' + (f'\nintake = "{intake}"' if intake else "")
    return write_config(root / f"{name}.toml", {
        "database": f'path = "{suite.db}"',
        "service": f'runtime_dir = "{root / "run"}"\nstate_dir = "{root / "state"}"\n{endpoints}',
        "service.curve": curve,
        "analysis": 'analyzers = ["flawfinder"]',
        "monitor": "lease_seconds = 3\nbackoff_seconds = 0.5",
        "runner": "heartbeat_seconds = 1",
    })


def start(suite: Suite, name: str, config, *args) -> subprocess.Popen:
    """A kiskadee process on its own configuration, stopped with the suite; its output in NAME.log."""
    log = open(suite.root / f"{name}.log", "ab")
    suite.processes[name] = subprocess.Popen([sys.executable, "-m", "kiskadee", "-c", str(config), *args],
                                             stdout=log, stderr=subprocess.STDOUT)
    return suite.processes[name]


def ready_count(suite: Suite) -> int:
    path = suite.root / "monitor.log"
    return suite.log("monitor").count("monitor ready") if path.exists() else 0


def start_monitor(suite: Suite, config) -> subprocess.Popen:
    """Start the monitor and wait for this start's "monitor ready" (the log keeps earlier starts')."""
    before = ready_count(suite)
    monitor = start(suite, "monitor", config, "monitor")
    wait_until(lambda: ready_count(suite) > before or monitor.poll() is not None, 20, "the monitor ready")
    assert monitor.poll() is None, suite.log("monitor")
    return monitor


@pytest.fixture
def suite(short_tmp):
    running = Suite(short_tmp)
    yield running
    running.stop()


@pytest.mark.slow
def test_an_unlisted_key_gets_nothing_and_a_listed_key_works(suite):
    work = f"tcp://127.0.0.1:{free_port()}"
    keys = suite.root / "state" / "keys"
    monitor_config = configure(suite, "monitor", work)
    for role in (["monitor"], ["runner", "trusted"]):
        made = run_kiskadee("keys", *role, config=monitor_config)
        assert made.returncode == 0, made.stderr
    # A key pair the monitor never listed: made under another keys directory.
    stranger = configure(suite, "stranger", work, f'keys_dir = "{suite.root / "elsewhere"}"')
    assert run_kiskadee("keys", "runner", "stranger", config=stranger).returncode == 0
    elsewhere = suite.root / "elsewhere"
    stranger = configure(suite, "stranger", work, f'runner_secret_key = "{elsewhere}/runners/stranger.key_secret"'
                                                  f'\nmonitor_public_key = "{keys / "monitor.key"}"')
    plain = configure(suite, "plain", work, "insecure = true")     # no keys at all
    trusted = configure(suite, "trusted", work, f'runner_secret_key = "{keys}/runners/trusted.key_secret"')

    start_monitor(suite, monitor_config)
    start(suite, "stranger", stranger, "runner", "--name", "stranger")
    start(suite, "plain", plain, "runner", "--name", "plain")
    submit(suite, "hello", "2.10", HELLO_TARBALL)
    wait_until(lambda: "refused a connection to the work socket" in suite.log("monitor"), 20,
               "the monitor refusing the unlisted key")
    time.sleep(6)       # more than a runner's re-announce interval: both had their chance
    assert suite.states() == {"hello 2.10": "queued"}
    assert suite.rows("SELECT name FROM runner") == []          # their messages never reached the monitor

    start(suite, "trusted", trusted, "runner", "--name", "trusted")
    wait_until(lambda: suite.states().get("hello 2.10") == "done", 90, "hello 2.10 analyzed by the trusted runner")
    assert suite.rows("SELECT analyzer, status, finding_count FROM analysis_detail") == [("flawfinder", "ok", 334)]
    assert suite.rows("SELECT name FROM runner") == [("trusted",)]


@pytest.mark.slow
def test_plain_tcp_is_refused_at_start_naming_the_keys_to_make(suite):
    work = f"tcp://127.0.0.1:{free_port()}"
    config = configure(suite, "monitor", work)
    refused = run_kiskadee("monitor", config=config, timeout=60)
    assert refused.returncode == 3, refused.stderr
    assert work in refused.stderr and "kiskadee keys monitor" in refused.stderr
    assert "monitor.key_secret" in refused.stderr and "insecure" in refused.stderr
    runner = run_kiskadee("runner", "--name", "r", config=config, timeout=60)
    assert runner.returncode == 3 and "kiskadee keys runner NAME" in runner.stderr, runner.stderr
    assert "runner.key_secret" in runner.stderr


@pytest.mark.slow
def test_insecure_tcp_starts_and_warns_at_every_start(suite):
    work = f"tcp://127.0.0.1:{free_port()}"
    config = configure(suite, "monitor", work, "insecure = true")
    for start_number in (1, 2):
        monitor = start_monitor(suite, config)
        monitor.send_signal(signal.SIGTERM)
        assert monitor.wait(30) == 0
        suite.processes.pop("monitor")
        warnings = [line for line in suite.log("monitor").splitlines()
                    if "service.curve.insecure is set" in line and work in line]
        assert len(warnings) == start_number and "WARNING" in warnings[-1].upper(), suite.log("monitor")


@pytest.mark.slow
def test_a_submitter_key_announces_on_a_tcp_intake(suite):
    intake = f"tcp://127.0.0.1:{free_port()}"
    config = configure(suite, "monitor", f"ipc://{suite.root / 'run' / 'work.sock'}", intake=intake)
    for role in (["monitor"], ["submitter", "alice"]):
        assert run_kiskadee("keys", *role, config=config).returncode == 0
    start_monitor(suite, config)
    keys = suite.root / "state" / "keys"
    alice = configure(suite, "alice", f"ipc://{suite.root / 'run' / 'work.sock'}", intake=intake,
                      curve=f'submitter_secret_key = "{keys}/submitters/alice.key_secret"')
    submitted = run_kiskadee("submit", "hello", "2.10", HELLO_TARBALL, config=alice, timeout=60)
    assert submitted.returncode == 0, submitted.stderr
    assert suite.states() == {"hello 2.10": "queued"}
