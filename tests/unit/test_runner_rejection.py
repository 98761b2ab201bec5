"""A runner told ``reject`` stops re-sending that result and takes the next job; a job whose lease
the monitor says it no longer holds is abandoned, its result never sent.

A real RunnerService over ``inproc://`` with a fake clock; the test answers it as the monitor would.
"""

import datetime

import pytest
import zmq

from kiskadee.config import from_mapping
from kiskadee.service import wire
from kiskadee.service.loop import Instant
from kiskadee.service.runner import ACK_SECONDS, RunnerService

T0 = Instant(1000.0, datetime.datetime(2026, 11, 28, 12, 0, 0))


@pytest.fixture
def runner(tmp_path):
    context = zmq.Context()
    work = context.socket(zmq.ROUTER)
    work.setsockopt(zmq.LINGER, 0)
    work.bind("inproc://work")
    service = RunnerService(from_mapping({"analysis": {"analyzers": ["cppcheck"]},
                                          "service": {"work": "inproc://work"}}), "r1", context=context)
    service.poll_ms = 20
    service.setup()
    yield service, work
    service.teardown()
    context.destroy(linger=0)


def receive(sock, timeout_ms=1000):
    return wire.decode(sock.recv_multipart()[-1]) if sock.poll(timeout_ms) else None


def give_job(service, work, tmp_path, job=7):
    service.step(T0)
    assert receive(work).type == "ready"
    work.send_multipart([b"r1", wire.encode("job", job=job, lease="t" * 32, fetcher="local", package="gone",
                                            version="1.0", source_url=str(tmp_path / "missing.tar.gz"))])


def test_a_rejected_result_is_not_sent_again(runner, tmp_path):
    service, work = runner
    give_job(service, work, tmp_path)
    for _ in range(250):                # the worker fails fast on the missing source
        service.step(T0)
        sent = receive(work, 10)
        if sent is not None:
            break
    assert sent.type == "result" and sent.fields["lease"] == "t" * 32
    work.send_multipart([b"r1", wire.encode("reject", job=7, reason="result refused: job 7 is queued")])
    service.step(T0.later(0.1))
    service.step(T0.later(2 * ACK_SECONDS))
    assert receive(work).type == "ready"        # the next job, not the result again
    assert service.job is None and receive(work, 100) is None


def test_a_job_whose_lease_is_gone_is_abandoned(runner, tmp_path):
    service, work = runner
    give_job(service, work, tmp_path)
    work.send_multipart([b"r1", wire.encode("reject", job=7, reason="heartbeat refused: job 7 is queued")])
    for _ in range(250):
        service.step(T0)
        if service.job is None:
            break
    assert service.job is None
    service.step(T0.later(ACK_SECONDS))
    assert receive(work).type == "ready"        # its result was never sent


def test_a_second_stop_request_hands_the_job_back(runner, tmp_path):
    service, work = runner
    give_job(service, work, tmp_path)
    for _ in range(50):
        service.step(T0)
        if service.job is not None:
            break
    service.stop_requests = 2           # what a second SIGTERM does
    service.step(T0.later(0.1))
    sent = receive(work)
    assert (sent.type, sent.fields["job"], sent.fields["lease"]) == ("release", 7, "t" * 32)
    assert service.job is None and service.should_stop()
