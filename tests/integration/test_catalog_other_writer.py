"""A monitor whose catalog is cached keeps serving when another process wrote the database behind it.

``kiskadee analyze`` writes the versions it analyzes straight into the
monitor's database. When a fetcher then announces one of them, the monitor's
cache says "new" and the database says "already there": the monitor must take
the version as known (nothing stored twice), acknowledge the event and go on,
not die on the UNIQUE constraint. Real monitor process, real ipc sockets, real
SQLite file, the real ``analyze`` and ``submit`` commands.
"""

import pytest
from harness import HELLO_TARBALL, Suite, run_kiskadee


@pytest.fixture
def suite(short_tmp):
    running = Suite(short_tmp)
    running.start_monitor()
    yield running
    running.stop()


def submit(suite, package, version):
    """``kiskadee submit``: it exits 0 only once the monitor acknowledged the event."""
    result = run_kiskadee("submit", package, version, HELLO_TARBALL, config=suite.config, timeout=60)
    assert result.returncode == 0, f"{result.stderr}\nmonitor log:\n{suite.log('monitor')}"


def analyze(suite, package, version):
    """``kiskadee analyze`` on the monitor's database: another writer, behind the monitor's cache."""
    result = run_kiskadee("analyze", "--name", package, "--version", version, HELLO_TARBALL,
                          config=suite.config, timeout=300)
    assert result.returncode == 0, result.stderr


def versions(suite):
    return sorted(suite.rows("SELECT p.name, v.number, v.state FROM version v JOIN package p ON p.id = v.package_id"))


def test_a_version_analyze_recorded_of_a_cached_package_is_taken_as_known(suite):
    submit(suite, "foo", "0.9")         # the monitor caches the 'local' fetcher and foo
    analyze(suite, "foo", "1.0")        # inserts foo 1.0 behind the cache
    submit(suite, "foo", "1.0")         # acknowledged: the monitor did not die recording it
    submit(suite, "foo", "1.1")         # and it goes on serving
    assert suite.processes["monitor"].poll() is None, suite.log("monitor")
    assert versions(suite) == [("foo", "0.9", "queued"), ("foo", "1.0", "done"), ("foo", "1.1", "queued")]
    assert "Traceback" not in suite.log("monitor")


def test_a_package_analyze_recorded_after_the_cache_was_filled_is_taken_as_known(suite):
    submit(suite, "foo", "0.9")         # the 'local' fetcher is cached; bar is not in it
    analyze(suite, "bar", "1.0")        # inserts the package bar and its version 1.0
    submit(suite, "bar", "1.0")
    submit(suite, "bar", "0.5")         # older than what analyze recorded: kept, not queued
    submit(suite, "bar", "2.0")
    assert suite.processes["monitor"].poll() is None, suite.log("monitor")
    assert versions(suite) == [("bar", "0.5", "seen"), ("bar", "1.0", "done"), ("bar", "2.0", "queued"),
                               ("foo", "0.9", "queued")]
    assert "Traceback" not in suite.log("monitor")
