"""``kiskadee fetch`` against a real monitor that goes away: a pass that was not acknowledged is sent again.

A polling fetcher remembers a pass (its state file) only once the monitor
acknowledged every event of it. With the monitor killed (kill -9 leaves its
ipc socket file behind, so the pass connects and waits for acknowledgements
that never come) the pass exits 7 and leaves the state file as it was; the
next pass, with a monitor up, announces the version again and it is queued.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import SOURCES, Suite, run_kiskadee, wait_until


def drop(folder: Path, name: str) -> None:
    """A finished archive in the watched folder (older than the fetcher's settle time)."""
    path = folder / name
    path.write_bytes(b"release " + name.encode())
    when = time.time() - 60
    os.utime(path, (when, when))


def fetch(suite: Suite, fetcher: str):
    return run_kiskadee("fetch", fetcher, config=suite.config, timeout=120)


def state_file(suite: Suite, fetcher: str) -> Path:
    return suite.root / "state" / f"{fetcher}.json"


def queued(suite: Suite, version: str) -> bool:
    return suite.states().get(version) == "queued"


@pytest.fixture
def folder(short_tmp):
    watched = short_tmp / "incoming"
    watched.mkdir()
    return watched


@pytest.fixture
def directory_suite(short_tmp, folder):
    running = Suite(short_tmp, extra=f'[fetchers.directory]\npath = "{folder}"\n')
    yield running
    running.stop()


@pytest.fixture
def debian_suite(short_tmp, mirror):
    running = Suite(short_tmp, extra=f'[fetchers.debian]\nmirror = "{mirror.url}"\nallow = ["hello"]\n')
    yield running
    running.stop()


def test_a_pass_without_a_monitor_is_delivered_by_the_next_one(directory_suite, folder):
    drop(folder, "hello-2.10.tar.gz")
    refused = fetch(directory_suite, "directory")
    assert refused.returncode == 7 and "no monitor is listening" in refused.stderr
    assert not state_file(directory_suite, "directory").exists()
    directory_suite.start_monitor()
    delivered = fetch(directory_suite, "directory")
    assert delivered.returncode == 0, delivered.stderr
    assert "sent 1 events" in delivered.stdout
    wait_until(lambda: queued(directory_suite, "hello 2.10"), 20, "hello 2.10 queued")
    assert "sent 0 events" in fetch(directory_suite, "directory").stdout     # the pass was remembered


@pytest.mark.slow
def test_directory_pass_to_a_killed_monitor_exits_7_and_is_sent_again(directory_suite, folder):
    directory_suite.start_monitor()
    drop(folder, "hello-2.10.tar.gz")
    assert "sent 1 events" in fetch(directory_suite, "directory").stdout       # a normal pass
    wait_until(lambda: queued(directory_suite, "hello 2.10"), 20, "hello 2.10 queued")
    remembered = state_file(directory_suite, "directory").read_bytes()
    assert b"hello-2.10.tar.gz" in remembered
    drop(folder, "hello-2.11.tar.gz")
    directory_suite.kill("monitor")
    undelivered = fetch(directory_suite, "directory")
    assert undelivered.returncode == 7, undelivered.stderr
    assert "did not acknowledge 1 of 1 events" in undelivered.stderr
    assert state_file(directory_suite, "directory").read_bytes() == remembered
    directory_suite.start_monitor()
    again = fetch(directory_suite, "directory")
    assert again.returncode == 0, again.stderr
    assert "sent 1 events" in again.stdout                   # only 2.11: 2.10 was delivered before
    wait_until(lambda: queued(directory_suite, "hello 2.11"), 20, "hello 2.11 queued")
    assert b"hello-2.11.tar.gz" in state_file(directory_suite, "directory").read_bytes()


@pytest.mark.slow
def test_debian_pass_to_a_killed_monitor_exits_7_and_is_sent_again(debian_suite, mirror):
    debian_suite.start_monitor()
    assert "sent 1 events" in fetch(debian_suite, "debian").stdout              # a normal pass
    wait_until(lambda: queued(debian_suite, "hello 2.10-3"), 20, "hello 2.10-3 queued")
    remembered = state_file(debian_suite, "debian").read_bytes()
    assert b'"hello": "2.10-3"' in remembered
    mirror.publish(SOURCES.replace("Version: 2.10-3", "Version: 2.10-4"))
    debian_suite.kill("monitor")
    undelivered = fetch(debian_suite, "debian")
    assert undelivered.returncode == 7, undelivered.stderr
    assert state_file(debian_suite, "debian").read_bytes() == remembered
    debian_suite.start_monitor()
    again = fetch(debian_suite, "debian")
    assert again.returncode == 0, again.stderr
    assert "sent 1 events" in again.stdout
    wait_until(lambda: queued(debian_suite, "hello 2.10-4"), 20, "hello 2.10-4 queued")
    assert b'"hello": "2.10-4"' in state_file(debian_suite, "debian").read_bytes()
    assert "sent 0 events" in fetch(debian_suite, "debian").stdout


@pytest.mark.slow
def test_a_pass_outlives_a_monitor_restarted_within_the_wait(directory_suite, folder):
    """The monitor killed before the pass and back a few seconds later: the same pass delivers and is remembered."""
    directory_suite.start_monitor()
    directory_suite.kill("monitor")
    drop(folder, "hello-2.10.tar.gz")
    passing = subprocess.Popen([sys.executable, "-m", "kiskadee", "-c", str(directory_suite.config),
                                "fetch", "directory"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)                               # the pass has sent its event into the void by now
    directory_suite.start_monitor()
    out, err = passing.communicate(timeout=60)
    assert passing.returncode == 0, err
    assert "sent 1 events" in out
    wait_until(lambda: queued(directory_suite, "hello 2.10"), 20, "hello 2.10 queued")
    assert b"hello-2.10.tar.gz" in state_file(directory_suite, "directory").read_bytes()
