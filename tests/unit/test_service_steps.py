"""The services' timing rules, driven in-process one step at a time with a fake clock.

A real Monitor on a real SQLite file and a real RunnerService talk over
``inproc://`` sockets of one ZeroMQ context; the test plays the other side
with its own sockets. Time is an ``Instant`` the test moves forward, so a
lease, an idle runner's expiry, a re-announcement, a re-sent result and a
restart backoff are seen without waiting for them. What only processes
show (signals, kill -9) stays in tests/integration.
"""

import sys

import pytest
import zmq
from inproc import T0, announce, inproc_settings, receive, runner_socket, running_monitor

from kiskadee.service import wire
from kiskadee.service.loop import Instant
from kiskadee.service.monitor import IDLE_RUNNER_TTL
from kiskadee.service.runner import ACK_SECONDS, READY_SECONDS, RunnerService
from kiskadee.service.supervisor import BACKOFF_MAX, STABLE_AFTER, Supervisor
from kiskadee.store.models import Runner, Version

LEASE = 60.0
BACKOFF = 10.0
QUIET_MS = 100          # how long a test listens to be sure nothing comes


def settings_for(tmp_path):
    return inproc_settings(tmp_path, monitor={"lease_seconds": LEASE, "backoff_seconds": BACKOFF, "max_attempts": 3},
                           analysis={"analyzers": ["cppcheck"]}, runner={"count": 1})


@pytest.fixture
def monitor(tmp_path, context):
    with running_monitor(settings_for(tmp_path), context, poll_ms=20) as service:
        yield service


def job_state() -> Version:
    return Version.get()


# the monitor ----------------------------------------------------------------


def test_a_silent_runners_job_goes_to_another_runner_after_the_lease_and_the_backoff(monitor, context):
    silent = runner_socket(context, "silent")
    silent.send(wire.encode("ready", runner="silent"))
    announce(monitor, context, T0)
    job = receive(silent)
    assert job.type == "job" and job.fields["package"] == "hello"

    other = runner_socket(context, "other")
    other.send(wire.encode("ready", runner="other"))
    monitor.step(T0.later(LEASE - 1))
    assert job_state().state == "leased" and receive(other, QUIET_MS) is None

    monitor.step(T0.later(LEASE + 1))           # the lease ran out: back in the queue after the backoff
    assert job_state().state == "queued" and "went silent" in job_state().error
    monitor.step(T0.later(LEASE + BACKOFF))
    assert receive(other, QUIET_MS) is None

    monitor.step(T0.later(LEASE + 1 + BACKOFF))
    again = receive(other)
    assert again.type == "job" and again.fields["job"] == job.fields["job"]
    assert job_state().attempts == 2 and job_state().leased_by == "other"


def test_heartbeats_keep_the_lease(monitor, context):
    busy = runner_socket(context, "busy")
    busy.send(wire.encode("ready", runner="busy"))
    announce(monitor, context, T0)
    job = receive(busy).fields
    job_id = job["job"]

    busy.send(wire.encode("heartbeat", runner="busy", job=job_id, lease=job["lease"],
                          activity="analyzing hello 2.10 with cppcheck"))
    monitor.step(T0.later(LEASE - 10))
    monitor.step(T0.later(2 * LEASE - 11))      # past the first lease, within the extended one
    assert job_state().state == "leased" and job_state().leased_by == "busy"
    assert Runner.get(Runner.name == "busy").activity == "analyzing hello 2.10 with cppcheck"

    monitor.step(T0.later(2 * LEASE - 9))
    assert job_state().state == "queued"


def test_a_runner_not_heard_from_for_the_idle_ttl_gets_no_job(monitor, context):
    gone = runner_socket(context, "gone")
    alive = runner_socket(context, "alive")
    gone.send(wire.encode("ready", runner="gone"))
    alive.send(wire.encode("ready", runner="alive"))
    monitor.step(T0)
    assert "2 runners idle" in monitor.status_line()

    alive.send(wire.encode("ready", runner="alive"))       # an idle runner re-announces itself
    monitor.step(T0.later(IDLE_RUNNER_TTL - 5))
    monitor.step(T0.later(IDLE_RUNNER_TTL + 1))
    assert "1 runners idle" in monitor.status_line()

    # "gone" asked first, so it would get the job were it not forgotten
    announce(monitor, context, T0.later(IDLE_RUNNER_TTL + 2))
    assert receive(alive).type == "job"
    assert receive(gone, QUIET_MS) is None


# the runner -----------------------------------------------------------------


@pytest.fixture
def runner(tmp_path, context):
    """A real RunnerService, and the work socket the test answers it on as the monitor would."""
    work = context.socket(zmq.ROUTER)
    work.setsockopt(zmq.LINGER, 0)
    work.bind("inproc://work")
    service = RunnerService(settings_for(tmp_path), "r1", context=context)
    service.poll_ms = 20
    service.setup()
    yield service, work
    service.teardown()


def test_an_idle_runner_announces_itself_again_after_ready_seconds_and_not_before(runner):
    service, work = runner
    service.step(T0)
    assert receive(work).type == "ready"
    service.step(T0.later(READY_SECONDS - 0.5))
    assert receive(work, QUIET_MS) is None
    service.step(T0.later(READY_SECONDS))
    assert receive(work).fields == {"runner": "r1"}


def test_a_result_is_sent_again_until_the_monitor_acknowledges_it(runner, tmp_path):
    service, work = runner
    service.step(T0)
    receive(work)
    work.send_multipart([b"r1", wire.encode("job", job=7, fetcher="local", package="gone", version="1.0",
                                            source_url=str(tmp_path / "missing.tar.gz"))])
    result = None
    for _ in range(250):                # the worker thread runs in real time; a missing source fails fast
        service.step(T0)
        result = receive(work, 10)
        if result is not None:
            break
    assert result.type == "result" and result.fields["job"] == 7
    assert "no such file" in result.fields["error"] and not result.fields["transient"]

    service.step(T0.later(ACK_SECONDS - 0.5))
    assert receive(work, QUIET_MS) is None
    service.step(T0.later(ACK_SECONDS))
    assert receive(work).fields["job"] == 7

    work.send_multipart([b"r1", wire.encode("ack", job=6)])     # a late one for an earlier job
    service.step(T0.later(2 * ACK_SECONDS))
    assert receive(work).fields["job"] == 7

    work.send_multipart([b"r1", wire.encode("ack", job=7)])
    service.step(T0.later(2 * ACK_SECONDS + 0.1))
    service.step(T0.later(2 * ACK_SECONDS + 0.2))   # and asks for the next job at once
    assert receive(work).type == "ready"


# the supervisor -------------------------------------------------------------

CRASHING = [sys.executable, "-I", "-S", "-c", "import sys; sys.exit(3)"]


def restart(supervisor: Supervisor, started: Instant, uptime: float):
    """Let the monitor child exit, reap it ``uptime`` after ``started``; (delay until restarted, restart)."""
    child = supervisor.monitor
    child.proc.wait(timeout=10)
    ended = started.later(uptime)
    supervisor.step(ended)
    assert child.proc is None, "restarted at once"
    delay = 0.0
    while child.proc is None:
        delay += 0.25
        assert delay <= 2 * BACKOFF_MAX, "never restarted"
        supervisor.step(ended.later(delay))
    return delay, ended.later(delay)


def test_the_restart_backoff_doubles_up_to_its_maximum_and_resets_once_a_child_stayed_up(tmp_path):
    supervisor = Supervisor(settings_for(tmp_path), None, -1, program=CRASHING)
    try:
        supervisor.step(T0)
        at, delays = T0, []
        for _ in range(8):
            delay, at = restart(supervisor, at, uptime=0.25)
            delays.append(delay)
        assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
        delay, at = restart(supervisor, at, uptime=STABLE_AFTER)
        assert delay == 1
        assert restart(supervisor, at, uptime=0.25)[0] == 2
    finally:
        supervisor.kill_all()
