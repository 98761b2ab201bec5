"""A runner stopped mid-job (a second SIGTERM) hands the job back: queued again at once, the attempt
not counted, so a shutdown never costs a job one of its monitor.max_attempts. On SQLite and PostgreSQL."""

import pytest

from kiskadee.service import wire
from kiskadee.store.models import Version

from inproc import T0, announce, exchange, inproc_settings, runner_socket, running_monitor

pytestmark = pytest.mark.both_databases


@pytest.fixture
def monitor(db, tmp_path, context):
    with running_monitor(inproc_settings(tmp_path, db.database), context) as service:
        yield service


def leased_job(monitor, context):
    """Runner r1's socket and the job it was handed."""
    announce(monitor, context)
    sock = runner_socket(context, "r1")
    job = exchange(monitor, sock, wire.encode("ready", runner="r1"))
    assert job is not None and job.type == "job", job
    return sock, job.fields


def settle(monitor) -> Version:
    for _ in range(3):
        monitor.step(T0)
    return Version.get()


def test_a_handed_back_job_is_queued_at_once_without_counting_the_attempt(monitor, context):
    sock, job = leased_job(monitor, context)
    assert Version.get().attempts == 1
    sock.send(wire.encode("release", runner="r1", job=job["job"], lease=job["lease"]))
    version = settle(monitor)
    assert (version.state, version.attempts, version.leased_by) == ("queued", 0, "")
    again = exchange(monitor, runner_socket(context, "r2"), wire.encode("ready", runner="r2"))
    assert again.type == "job" and again.fields["job"] == job["job"] and again.fields["lease"] != job["lease"]


def test_only_the_lease_holder_can_hand_a_job_back(monitor, context):
    sock, job = leased_job(monitor, context)
    runner_socket(context, "r2").send(wire.encode("release", runner="r2", job=job["job"], lease=job["lease"]))
    sock.send(wire.encode("release", runner="r1", job=job["job"], lease="0" * 32))
    version = settle(monitor)
    assert (version.state, version.attempts, version.leased_by) == ("leased", 1, "r1")
