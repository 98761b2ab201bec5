"""The service suite with real processes: monitor and runners on real ipc sockets, a real database.

The tests of what the suite stores run on SQLite and on PostgreSQL
(``on_both_databases``); those of the intake's parsing and of the runner's
signals, where the database plays no part, on SQLite alone.
"""

import io
import signal
import tarfile
import time

import pytest
import zmq
from builders import hello_copy
from harness import HELLO_TARBALL, SOURCES, Suite, run_kiskadee, submit, wait_until

from kiskadee.service import wire


@pytest.fixture
def database(request):
    """The suite's database: None for SQLite in the suite's directory, or (parametrized "postgresql",
    see ``on_both_databases``) a fresh PostgreSQL database's URL."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return request.getfixturevalue("postgresql").fresh_database()
    return None


on_both_databases = pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def suite(short_tmp, database):
    running = Suite(short_tmp, database=database)
    yield running
    running.stop()


@on_both_databases
def test_submitted_source_is_analyzed_and_stored(suite):
    suite.start_monitor()
    suite.start_runner("r1")
    submit(suite, "hello", "2.10", HELLO_TARBALL)
    wait_until(lambda: suite.states().get("hello 2.10") == "done", 60, "hello 2.10 analyzed")
    assert suite.rows("SELECT analyzer, status, finding_count FROM analysis_detail") == [
        ("flawfinder", "ok", 334)]
    assert suite.rows("SELECT COUNT(*) FROM finding") == [(334,)]
    assert suite.rows("SELECT sha256 FROM version")[0][0].startswith("31e066137a96")


def test_submit_without_a_monitor_exits_7(suite):
    result = run_kiskadee("submit", "hello", "2.10", HELLO_TARBALL, config=suite.config)
    assert result.returncode == 7 and "no monitor is listening" in result.stderr


@on_both_databases
def test_debian_fetcher_through_monitor_and_runner(short_tmp, mirror, database):
    suite = Suite(short_tmp, database=database,
                  extra=f'[fetchers.debian]\nmirror = "{mirror.url}"\nallow = ["hello", "hostname"]\n')
    try:
        suite.start_monitor()
        suite.start_runner("r1")
        fetched = run_kiskadee("fetch", "debian", config=suite.config)
        assert fetched.returncode == 0, fetched.stderr
        assert "sent 2 events" in fetched.stdout
        wait_until(lambda: set(suite.states().values()) == {"done"} and len(suite.states()) == 2,
                   90, "hello and hostname analyzed")
        (hello,) = suite.rows("SELECT source_url, sha256 FROM version WHERE number = '2.10-3'")
        assert hello[0] == f"{mirror.url}/pool/main/h/hello/hello_2.10.orig.tar.gz"
        assert hello[1] == "31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b"
        assert suite.rows("SELECT COUNT(*) FROM finding_detail WHERE package = 'hello'") == [(334,)]
        again = run_kiskadee("fetch", "debian", config=suite.config)
        assert "sent 0 events" in again.stdout                 # nothing changed since the last pass
        mirror.publish(SOURCES.replace("Version: 2.10-3", "Version: 2.10-4"))
        assert "sent 1 events" in run_kiskadee("fetch", "debian", config=suite.config).stdout
        wait_until(lambda: "hello 2.10-4" in suite.states(), 20, "the new hello version recorded")
    finally:
        suite.stop()


def push_frames(suite, frames):
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)     # the intake is a ROUTER (kiskadee.service.intake)
    sock.setsockopt(zmq.LINGER, 10_000)
    sock.connect(f"ipc://{suite.root / 'run' / 'intake.sock'}")
    for frame in frames:
        sock.send(frame)
    sock.close()
    context.term()


def source_frame(package, version, source=""):
    return wire.encode("source", fetcher="local", package=package, version=version, source_url=str(source))


@on_both_databases
def test_the_same_event_a_thousand_times_makes_one_version_and_one_job(suite):
    suite.start_monitor()
    push_frames(suite, [source_frame("hello", "2.10", HELLO_TARBALL)] * 1000)
    wait_until(lambda: "hello 2.10" in suite.states(), 20, "the event recorded")
    time.sleep(1.5)
    assert suite.rows("SELECT COUNT(*), MIN(state) FROM version") == [(1, "queued")]


def test_malformed_intake_messages_are_logged_counted_and_skipped(suite):
    suite.start_monitor()
    push_frames(suite, [
        b"this is not json",
        wire.encode("ack", job=1),
        b'{"type": "source", "schema": 1, "fetcher": "local", "package": "x"}',
        b"x" * (10 * 1024 * 1024),
        source_frame("good", "1.0"),
    ])
    wait_until(lambda: "good 1.0" in suite.states(), 20, "the valid event after the bad ones")
    log = suite.log("monitor")
    assert "not JSON" in log
    assert "intake takes source messages, not ack" in log
    assert "lacks the field 'version'" in log
    # The 10 MB frame is over the intake socket's MAXMSGSIZE (limits.intake_message_bytes):
    # ZeroMQ drops it, and the connection, before the monitor reads any of it.
    assert "rejected an intake event (3 so far)" in log
    assert suite.processes["monitor"].poll() is None


@pytest.mark.slow
@on_both_databases
def test_runner_killed_mid_analysis_the_job_is_leased_again_and_stored_once(short_tmp, database):
    suite = Suite(short_tmp, database=database, analyzers=("cppcheck", "flawfinder"))
    try:
        suite.start_monitor()
        suite.start_runner("r1")
        submit(suite, "hello", "2.10", HELLO_TARBALL)
        suite.wait_analyzing("r1")
        suite.kill("r1")
        suite.start_runner("r2")
        wait_until(lambda: suite.states().get("hello 2.10") == "done", 90, "hello analyzed by r2")
        assert suite.rows("SELECT attempts, leased_by FROM version") == [(2, "r2")]
        assert suite.rows("SELECT analyzer, COUNT(*) FROM analysis_detail GROUP BY analyzer") == [
            ("cppcheck", 1), ("flawfinder", 1)]
        assert suite.rows("SELECT COUNT(*) FROM finding") == suite.rows("SELECT SUM(finding_count) FROM analysis")
    finally:
        suite.stop()


@pytest.mark.slow
@on_both_databases
def test_monitor_killed_with_jobs_in_flight_loses_nothing_and_stores_nothing_twice(short_tmp, database):
    suite = Suite(short_tmp, database=database, analyzers=("cppcheck", "flawfinder"))
    try:
        suite.start_monitor()
        suite.start_runner("r1")
        for version in ("1.0", "1.1", "1.2"):
            submit(suite, "hello", version, hello_copy(short_tmp, version))
        wait_until(lambda: len(suite.states()) == 3, 20, "three versions recorded")
        wait_until(lambda: "leased" in suite.states().values(), 20, "a job in flight")
        suite.kill("monitor")
        suite.start_monitor()
        wait_until(lambda: set(suite.states().values()) == {"done"}, 120, "every version analyzed")
        assert suite.rows("SELECT version, analyzer, COUNT(*) FROM analysis_detail "
                          "GROUP BY version, analyzer HAVING COUNT(*) > 1") == []
        assert suite.rows("SELECT COUNT(*) FROM analysis") == [(6,)]
        assert suite.rows("SELECT COUNT(*) FROM finding") == suite.rows("SELECT SUM(finding_count) FROM analysis")
    finally:
        suite.stop()


@pytest.mark.slow
@on_both_databases
def test_two_runners_share_the_work_and_a_slow_job_does_not_hold_back_the_queue(short_tmp, database):
    suite = Suite(short_tmp, database=database, analyzers=("cppcheck",))
    try:
        suite.start_monitor()
        small = short_tmp / "small-1.0.tar.gz"           # submit takes files: a directory is refused
        with tarfile.open(small, "w:gz") as tar:
            source = b"int main(void) { int *p = 0; return *p; }\n"
            info = tarfile.TarInfo("small-1.0/a.c")
            info.size = len(source)
            tar.addfile(info, io.BytesIO(source))
        submit(suite, "slow", "1.0", HELLO_TARBALL)                 # cppcheck takes seconds on hello
        wait_until(lambda: "slow 1.0" in suite.states(), 20, "the slow job queued")
        for name in ("quick-a", "quick-b", "quick-c"):
            submit(suite, name, "1.0", small)
        suite.start_runner("r1")
        suite.start_runner("r2")
        wait_until(lambda: set(suite.states().values()) == {"done"} and len(suite.states()) == 4,
                   90, "all four analyzed")
        finished = dict(suite.rows("SELECT p.name, v.finished_at FROM version v JOIN package p ON p.id = v.package_id"))
        assert all(finished[name] < finished["slow"] for name in ("quick-a", "quick-b", "quick-c"))
        assert {row[0] for row in suite.rows("SELECT leased_by FROM version")} == {"r1", "r2"}
    finally:
        suite.stop()


@pytest.mark.slow
def test_first_sigterm_lets_the_runner_finish_its_job(short_tmp):
    suite = Suite(short_tmp, analyzers=("cppcheck", "flawfinder"))
    try:
        suite.start_monitor()
        runner = suite.start_runner("r1")
        submit(suite, "hello", "2.10", HELLO_TARBALL)
        suite.wait_analyzing()
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(60) == 0
        assert suite.states() == {"hello 2.10": "done"}
        assert suite.rows("SELECT COUNT(*) FROM analysis WHERE status = 'ok'") == [(2,)]
    finally:
        suite.stop()
