"""Leases are authority: only the runner holding a job's current lease, with the token the monitor
issued, may extend it or answer for it; forged and misrouted results are rejected and the real
holder's result is then stored, once.

A real Monitor on a real database (SQLite and PostgreSQL), in-process over ``inproc://`` with a fake
clock; the test plays the runners with DEALER sockets whose identity is their name, as real runners have.
"""

import json

import inproc
import pytest
from inproc import T0, exchange, inproc_settings, runner_socket, running_monitor

from kiskadee.service import wire
from kiskadee.store.models import Analysis, Finding, Version

pytestmark = pytest.mark.both_databases

RUN = {"analyzer": "cppcheck", "tool_version": "2.10", "status": "ok", "duration": 1.0, "error": "",
       "findings": [{"path": "src/a.c", "line": 3, "check_id": "nullPointer", "severity": "high",
                     "message": "forged"}]}


@pytest.fixture
def monitor(db, tmp_path, context):
    with running_monitor(inproc_settings(tmp_path, db.database, monitor={"analyze": "every"}), context) as service:
        yield service


def announce(monitor, context, package: str, version: str = "1.0", fetcher: str = "local") -> None:
    inproc.announce(monitor, context, T0, package, version, fetcher, source_url="/x")


def take_job(monitor, context, name: str) -> tuple:
    """Runner ``name`` asks for a job; its socket and the job message's fields."""
    sock = runner_socket(context, name)
    job = exchange(monitor, sock, wire.encode("ready", runner=name))
    assert job is not None and job.type == "job", job
    return sock, job.fields


def result(runner_name: str, job: int, lease: str, **fields) -> bytes:
    return wire.encode("result", runner=runner_name, job=job, lease=lease, **{"runs": [RUN], **fields})


def assert_rejected(reply, job: int, why: str) -> None:
    assert reply is not None and reply.type == "reject", reply
    assert reply.fields["job"] == job and why in reply.fields["reason"]


def test_the_job_carries_a_fresh_lease_token(monitor, context):
    announce(monitor, context, "a")
    announce(monitor, context, "b")
    _, first = take_job(monitor, context, "r1")
    _, second = take_job(monitor, context, "r2")
    assert len(first["lease"]) == 32 and first["lease"] != second["lease"]
    assert Version.get_by_id(first["job"]).lease_token == first["lease"]


@pytest.mark.parametrize("state", ["queued", "seen"])
def test_a_result_for_a_job_no_runner_holds_is_rejected_and_nothing_is_stored(monitor, context, state):
    announce(monitor, context, "hello")
    job = Version.get()
    Version.update(state=state).execute()
    forger = runner_socket(context, "forger")
    assert_rejected(exchange(monitor, forger, result("forger", job.id, "0" * 32)), job.id, f"is {state}, not leased")
    assert Version.get_by_id(job.id).state == state and Analysis.select().count() == 0


def test_runner_b_cannot_answer_for_runner_a_and_a_real_result_is_then_stored(monitor, context):
    announce(monitor, context, "hello")
    a, job = take_job(monitor, context, "a")
    b = runner_socket(context, "b")
    assert_rejected(exchange(monitor, b, result("b", job["job"], job["lease"])), job["job"],
                    "leased to another runner")
    assert_rejected(exchange(monitor, b, wire.encode("heartbeat", runner="b", job=job["job"], lease=job["lease"])),
                    job["job"], "leased to another runner")
    real = dict(RUN, findings=[dict(RUN["findings"][0], message="real")])
    reply = exchange(monitor, a, result("a", job["job"], job["lease"], runs=[real]))
    assert (reply.type, reply.fields["job"]) == ("ack", job["job"])
    assert [f.message for f in Finding.select()] == ["real"]
    assert Version.get_by_id(job["job"]).state == "done"


def test_a_runner_that_lies_about_its_name_is_rejected(monitor, context):
    announce(monitor, context, "hello")
    _, job = take_job(monitor, context, "a")
    b = runner_socket(context, "b")        # claims to be a, but its connection says b
    reply = exchange(monitor, b, result("a", job["job"], job["lease"]))
    assert_rejected(reply, job["job"], "is not the one its connection gave")
    assert Version.get_by_id(job["job"]).state == "leased" and Analysis.select().count() == 0


def test_an_outsiders_error_result_does_not_fail_someone_elses_job(monitor, context):
    announce(monitor, context, "hello")
    a, job = take_job(monitor, context, "a")
    outsider = runner_socket(context, "outsider")
    reply = exchange(monitor, outsider, wire.encode("result", runner="outsider", job=job["job"], lease="guess",
                                                  runs=[], error="checksum mismatch"))
    assert_rejected(reply, job["job"], "leased to another runner")
    assert Version.get_by_id(job["job"]).state == "leased" and Version.get_by_id(job["job"]).error == ""
    assert exchange(monitor, a, result("a", job["job"], job["lease"])).type == "ack"


def test_the_holders_name_with_a_wrong_token_is_rejected(monitor, context):
    announce(monitor, context, "hello")
    a, job = take_job(monitor, context, "a")
    for token in ("", "0" * 32, job["lease"][:-1]):
        assert_rejected(exchange(monitor, a, result("a", job["job"], token)), job["job"], "not the lease token")
    assert Version.get_by_id(job["job"]).state == "leased"


def test_a_replayed_result_is_acknowledged_as_a_duplicate_and_stored_once(monitor, context):
    announce(monitor, context, "hello")
    a, job = take_job(monitor, context, "a")
    frame = result("a", job["job"], job["lease"])
    assert exchange(monitor, a, frame).type == "ack"
    assert exchange(monitor, a, frame).type == "ack"
    assert monitor.counters["result-duplicate"] == 1
    assert Analysis.select().count() == 1 and Finding.select().count() == 1


def test_a_late_runners_result_after_its_lease_ran_out_is_rejected(monitor, context):
    announce(monitor, context, "hello")
    a, job = take_job(monitor, context, "a")
    monitor.housekeeping(T0.later(monitor.policy.lease_seconds + 1))       # a went silent: re-queued
    assert Version.get_by_id(job["job"]).state == "queued"
    assert_rejected(exchange(monitor, a, result("a", job["job"], job["lease"])), job["job"], "is queued, not leased")
    assert Analysis.select().count() == 0


def test_a_result_with_an_id_over_sqlites_range_names_no_job_and_is_dropped(monitor, context):
    a = runner_socket(context, "a")
    frame = json.dumps({"type": "result", "schema": 1, "runner": "a", "job": 2**64, "lease": "x",
                        "runs": []}).encode()
    assert exchange(monitor, a, frame) is None and monitor.counters["rejected"] == 1
