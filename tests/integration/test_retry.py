"""`kiskadee retry` against a running monitor and runner: a failed version analyzed after all, a done one again."""


import pytest
from harness import HELLO_TARBALL, Suite, run_kiskadee, submit, wait_until


@pytest.fixture
def running(short_tmp):
    suite = Suite(short_tmp)
    suite.start_monitor()
    suite.start_runner("r1")
    yield suite
    suite.stop()


def retry(suite, *args):
    result = run_kiskadee("retry", *args, config=suite.config)
    assert result.returncode == 0, result.stderr
    return result


def state(suite):
    return suite.states().get("hello 2.10")


@pytest.mark.slow
def test_a_failed_version_is_analyzed_once_retried_and_a_done_one_again_on_request(running, backends):
    later = backends.url + "/later/hello-2.10.tar.gz"
    submit(running, "hello", "2.10", later)                 # not there yet: 404
    wait_until(lambda: state(running) == "failed", 60, "hello 2.10 failed")
    (error,) = running.rows("SELECT error FROM version")[0]
    assert later in error and "HTTP 404" in error

    dry = retry(running, "--dry-run")
    assert dry.stdout.startswith(f"local hello 2.10 (failed: {error.splitlines()[0][:40]}")
    assert "would re-queue 1 version" in dry.stderr and state(running) == "failed"

    backends.add("/later/hello-2.10.tar.gz", HELLO_TARBALL.read_bytes())
    assert "re-queued 1 version" in retry(running, "hello").stderr
    wait_until(lambda: state(running) == "done", 60, "hello 2.10 analyzed after the retry")
    assert running.rows("SELECT attempts, error FROM version") == [(1, "")]
    assert running.rows("SELECT analyzer, status, finding_count FROM analysis_detail") == [("flawfinder", "ok", 334)]

    nothing = retry(running)
    assert nothing.stdout == "" and "re-queued 0 versions (none in state failed, unresolved)" in nothing.stderr

    first_analysis = running.rows("SELECT started_at FROM analysis")
    assert "re-queued 1 version" in retry(running, "hello", "2.10", "--state", "done").stderr
    wait_until(lambda: state(running) == "done" and running.rows("SELECT started_at FROM analysis") != first_analysis,
               60, "hello 2.10 analyzed again")
    assert running.rows("SELECT analyzer, status, finding_count FROM analysis_detail") == [("flawfinder", "ok", 334)]
    assert running.rows("SELECT COUNT(*) FROM finding") == [(334,)]     # replaced, not stored twice


def test_unknown_package_or_version_exits_6_and_a_bad_state_2(running):
    assert run_kiskadee("retry", "nosuch", config=running.config).returncode == 6
    submit(running, "hello", "2.10", HELLO_TARBALL)
    wait_until(lambda: state(running) == "done", 60, "hello 2.10 analyzed")
    missing = run_kiskadee("retry", "hello", "9.9", config=running.config)
    assert missing.returncode == 6 and "no version 9.9 of hello" in missing.stderr
    bad = run_kiskadee("retry", "--state", "leased", config=running.config)
    assert bad.returncode == 2 and "cannot re-queue versions in state leased" in bad.stderr
