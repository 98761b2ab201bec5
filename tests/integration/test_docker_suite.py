"""The service suite on the docker backend: real monitor and runner processes, a real dockerd stopped mid-run."""

import pytest
from harness import HELLO_TARBALL, Suite, submit, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.docker]


@pytest.fixture
def docker_suite(short_tmp, docker_engine):
    suite = Suite(short_tmp, analyzers=("cppcheck", "flawfinder"), extra=docker_engine.toml())
    yield suite
    suite.stop()


def test_job_analyzed_in_containers_is_stored_with_the_image_versions(docker_suite, docker_engine):
    docker_suite.start_monitor()
    docker_suite.start_runner("r1")
    submit(docker_suite, "hello", "2.10", HELLO_TARBALL)
    wait_until(lambda: docker_suite.states().get("hello 2.10") == "done", 120, "hello 2.10 analyzed")
    assert docker_suite.rows("SELECT analyzer, analyzer_version, status, finding_count FROM analysis_detail "
                             "ORDER BY analyzer") == [("cppcheck", "2.10", "ok", 12), ("flawfinder", "2.0.19", "ok", 334)]
    assert docker_engine.kiskadee_containers() == []


def test_engine_stopped_mid_analysis_the_job_is_requeued_and_finishes_when_it_is_back(docker_suite, docker_engine):
    suite = docker_suite
    suite.start_monitor()
    runner = suite.start_runner("r1")
    submit(suite, "hello", "2.10", HELLO_TARBALL)
    wait_until(lambda: suite.rows("SELECT 1 FROM runner WHERE name = 'r1' "
                                  "AND activity LIKE 'analyzing hello 2.10 with cppcheck'"), 60, "r1 running cppcheck")
    docker_engine.stop()
    try:
        requeued = wait_until(lambda: suite.rows("SELECT state, attempts, error FROM version WHERE error != ''"),
                              60, "the job sent back to the queue")
        assert requeued[0][:2] == ("queued", 1)
        assert "container engine" in requeued[0][2]
        wait_until(lambda: "taking no jobs until the sandbox is back" in suite.log("r1"), 30, "r1 waiting")
        assert suite.rows("SELECT COUNT(*) FROM analysis") == [(0,)]
        assert suite.states() == {"hello 2.10": "queued"}       # not failed, however long the engine is away
        assert runner.poll() is None
    finally:
        docker_engine.start()
    wait_until(lambda: suite.states().get("hello 2.10") == "done", 180, "hello 2.10 analyzed after the restart")
    assert suite.rows("SELECT attempts FROM version") == [(2,)]
    assert suite.rows("SELECT analyzer, analyzer_version, status, finding_count FROM analysis_detail "
                      "ORDER BY analyzer") == [("cppcheck", "2.10", "ok", 12), ("flawfinder", "2.0.19", "ok", 334)]
    assert "the sandbox is back; taking jobs again" in suite.log("r1")
    assert docker_engine.kiskadee_containers() == []        # the one the stopped engine held was reaped
