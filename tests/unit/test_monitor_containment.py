"""Nothing one message holds crashes the monitor: each malformed class is rejected with its reason,
the sender is told, and the monitor still acknowledges a good event afterwards.

A real Monitor on a real SQLite file, driven in-process over ``inproc://`` with a fake clock;
the test plays the intake senders (a real IntakeSender) and the runners (DEALER sockets).
"""

import json
import logging
import re

import pytest
import zmq
from inproc import INTAKE, T0, WORK, exchange, inproc_settings, runner_socket, running_monitor

from kiskadee.config import from_mapping
from kiskadee.core.events import SourceEvent
from kiskadee.service import wire
from kiskadee.service.intake import IntakeSender, event_frame
from kiskadee.service.monitor import Monitor
from kiskadee.store.models import Package, Runner, Version


def settings_for(tmp_path, intake=INTAKE, work=WORK):
    return inproc_settings(tmp_path, service={"intake": intake, "work": work})


@pytest.fixture
def monitor(tmp_path, context):
    with running_monitor(settings_for(tmp_path), context) as service:
        yield service


def deliver(monitor, context, frame: bytes) -> dict:
    """Send one encoded event through a real IntakeSender; the sequence numbers it had rejected, and why."""
    sender = IntakeSender("inproc://intake", context)
    try:
        sender.send_frame(frame)
        for _ in range(100):
            monitor.step(T0)
            sender.pump(0.01)
            if not sender.pending:
                return dict(sender.rejected)
        pytest.fail("the monitor neither acknowledged nor rejected the event")
    finally:
        sender.close(timeout=0)


def source(**fields) -> bytes:
    """A source message with ``fields`` over a good event's, encoded without any check."""
    document = {"type": "source", "schema": 1, "fetcher": "local", "package": "hello", "version": "2.10"}
    return json.dumps({**document, **fields}).encode()


def assert_still_serves(monitor, context, package="good"):
    assert deliver(monitor, context, event_frame(SourceEvent("local", package, "1.0"))) == {}
    assert Version.select().join(Package).where(Package.name == package).count() == 1


# intake: each malformed class rejected with its reason --------------------------------

NESTED = b'{"type":"source","schema":1,"fetcher":"local","package":"p","version":"1","meta":{"a":' \
         + b"[" * 100_000 + b"]" * 100_000 + b"}}"

INTAKE_CASES = {
    "lone surrogate": (source(package="hel\ud800lo"), "lone surrogate"),
    "nested 100k deep": (NESTED, r"nested 100002 deep, over the limit of 32"),
    "5000-digit version": (source(version="1" * 5000), "'version' is 5000 characters long, over the limit of 256"),
    "invalid Debian version": (source(fetcher="debian", version="1:"), "'1:' is not a Debian version"),
    "900 KB package name": (source(package="p" * 900_000), "'package' is 900000 characters long"),
    "control characters in a name": (source(package="hel\x1b[2Jlo"), "'package' holds control"),
    "control characters in a version": (source(version="1.0\n2"), "holds control"),
    "version as a number": (source(version=2), "'version' must be str, not int"),
    "NaN in meta": (source().replace(b'"version"', b'"meta": {"x": NaN}, "version"'), "NaN is not a number"),
    "not UTF-8": (source().replace(b"hello", b"hel\xfflo"), "not UTF-8"),
    "a 5000-digit number": (source().replace(b'"version"', b'"meta": {"n": ' + b"9" * 5000 + b'}, "version"'),
                            "not JSON"),
    "not a source message": (wire.encode("ready", runner="r1"), "intake takes source messages, not ready"),
}


@pytest.mark.parametrize("name", INTAKE_CASES)
def test_a_malformed_event_is_rejected_with_its_reason_and_the_monitor_serves_on(monitor, context, caplog, name):
    frame, reason = INTAKE_CASES[name]
    with caplog.at_level(logging.WARNING, logger="kiskadee.service.monitor"):
        rejected = deliver(monitor, context, frame)
    assert list(rejected) == [1] and re.search(reason, rejected[1]), rejected
    assert "rejected an intake event" in caplog.text
    assert monitor.counters["rejected"] == 1 and Version.select().count() == 0
    assert_still_serves(monitor, context)


def test_a_bad_event_in_a_batch_costs_only_itself(monitor, context):
    sender = IntakeSender("inproc://intake", context)
    for number in range(5):
        sender.send(SourceEvent("local", f"p{number}", "1.0"))
    sender.send_frame(source(package="bad\ud800"))
    sender.send(SourceEvent("local", "p5", "1.0"))
    for _ in range(100):
        monitor.step(T0)
        sender.pump(0.01)
        if not sender.pending:
            break
    sender.close(timeout=0)
    assert list(sender.rejected) == [6] and Version.select().count() == 6


def test_a_bad_version_stored_before_the_checks_does_not_stop_later_events(monitor, context):
    assert deliver(monitor, context, event_frame(SourceEvent("debian", "hello", "2.10-1"))) == {}
    monitor.db.execute_sql("UPDATE version SET number = ?", ("1" * 5000,))     # as an older kiskadee stored it
    monitor.catalog.reset()                                                   # a restarted monitor
    assert deliver(monitor, context, event_frame(SourceEvent("debian", "hello", "2.10-2"))) == {}
    assert Version.get(Version.number == "2.10-2").state == "queued"


def test_the_limits_come_from_the_configuration(tmp_path, context):
    settings = from_mapping({**{"limits": {"name_chars": 16}}, "database": {"path": str(tmp_path / "k.db")},
                             "service": {"intake": "inproc://intake", "work": "inproc://work"}})
    service = Monitor(settings, context=context)
    service.poll_ms = 10
    service.setup()
    try:
        rejected = deliver(service, context, event_frame(SourceEvent("local", "a-name-of-17-char", "1")))
        assert "over the limit of 16" in rejected[1]
        assert deliver(service, context, event_frame(SourceEvent("local", "sixteen-chars-ok", "1"))) == {}
    finally:
        service.teardown()


# work socket ----------------------------------------------------------------------------

@pytest.fixture
def leased(monitor, context):
    """Runner r1 and the job it holds (its fields, with the lease token)."""
    r1 = runner_socket(context, "r1")
    r1.send(wire.encode("ready", runner="r1"))
    assert deliver(monitor, context, event_frame(SourceEvent("local", "hello", "2.10", source_url="/x"))) == {}
    monitor.step(T0)
    assert r1.poll(1000)
    job = wire.decode(r1.recv()).fields
    return r1, job


def result(job, runner="r1", finding=None, **fields) -> bytes:
    """A result message for ``job``, with one finding made of ``finding`` over a good one; not checked."""
    good = {"path": "src/hello.c", "line": 3, "check_id": "nullPointer", "severity": "high", "message": "m"}
    run = {"analyzer": "cppcheck", "tool_version": "2.10", "status": "ok", "duration": 1.0, "error": "",
           "findings": [{**good, **(finding or {})}]}
    document = {"type": "result", "schema": 1, "runner": runner, "job": job["job"], "lease": job["lease"],
                "runs": [run], **fields}
    return json.dumps(document).encode()


HOSTILE_RESULTS = {
    "lone surrogate in a path": ({"path": "src/\udcff.c"}, "lone surrogate"),
    "finding message as an object": ({"message": {"text": "m"}}, "'message' must be str, not dict"),
    "line number of 2**64": ({"line": 2**64}, "'line' is out of range"),
    "negative line number": ({"line": -1}, "'line' is out of range"),
    "unknown severity": ({"severity": "apocalyptic"}, "severity 'apocalyptic' is not one of"),
    "a message over the text limit": ({"message": "m" * 70_000}, "over the limit of 65536"),
}


@pytest.mark.parametrize("name", HOSTILE_RESULTS)
def test_the_holders_malformed_result_fails_its_job_and_is_rejected_so_it_is_not_sent_again(
        monitor, context, leased, name):
    finding, reason = HOSTILE_RESULTS[name]
    r1, job = leased
    answer = exchange(monitor, r1, result(job, finding=finding))
    assert answer.type == "reject" and answer.fields["job"] == job["job"]
    assert reason in answer.fields["reason"]
    stored = Version.get_by_id(job["job"])
    assert stored.state == "failed" and reason in stored.error and "result refused" in stored.error
    assert_still_serves(monitor, context)


def test_a_heartbeat_for_a_job_that_does_not_exist_is_rejected(monitor, context, leased):
    r1, job = leased
    answer = exchange(monitor, r1, wire.encode("heartbeat", runner="r1", job=999_999, lease=job["lease"]))
    assert (answer.type, answer.fields["job"]) == ("reject", 999_999)
    assert "job 999999 does not exist" in answer.fields["reason"]
    assert Runner.get(Runner.name == "r1").version_id is None       # no row points at a job that is not there
    assert_still_serves(monitor, context)


@pytest.mark.parametrize("frame, reason", [
    (b'{"type":"heartbeat","schema":1,"runner":"r1","job":18446744073709551616,"lease":"x"}', "out of range"),
    (b'{"type":"ready","schema":1,"runner":"r\\u0000"}', "holds control"),
    (b'{"type":"ready","schema":1,"runner":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested 100001 deep"),
    (wire.encode("ready", runner="someone-else"), "not the one its connection gave"),
    (wire.encode("ack", job=1), "runners do not send ack messages"),
])
def test_a_malformed_runner_message_is_logged_with_its_reason(monitor, context, caplog, frame, reason):
    r1 = runner_socket(context, "r1")
    with caplog.at_level(logging.WARNING, logger="kiskadee.service.monitor"):
        assert exchange(monitor, r1, frame) is None         # names no job it could be told about
    assert reason in caplog.text and monitor.counters["rejected"] == 1
    assert Runner.select().count() == 0
    assert_still_serves(monitor, context)


def test_a_100_mb_runner_name_is_cut_off_by_the_socket(tmp_path, context):
    """Over ipc (inproc does not enforce it), ZeroMQ drops a peer whose message is over MAXMSGSIZE."""
    run = tmp_path / "r"
    run.mkdir()
    service = Monitor(settings_for(tmp_path, f"ipc://{run}/i.sock", f"ipc://{run}/w.sock"), context=context)
    service.poll_ms = 10
    service.setup()
    try:
        huge = context.socket(zmq.DEALER)
        huge.setsockopt(zmq.LINGER, 0)
        huge.connect(f"ipc://{run}/w.sock")
        huge.send(b'{"type":"ready","schema":1,"runner":"' + b"r" * (100 * 1024**2) + b'"}')
        for _ in range(20):
            service.step(T0)
        assert Runner.select().count() == 0 and service.counters["rejected"] == 0   # never read at all
        good = context.socket(zmq.DEALER)
        good.setsockopt(zmq.IDENTITY, b"r1")
        good.setsockopt(zmq.LINGER, 0)
        good.connect(f"ipc://{run}/w.sock")
        good.send(wire.encode("ready", runner="r1"))
        for _ in range(20):
            service.step(T0)
        assert [runner.name for runner in Runner.select()] == ["r1"]
    finally:
        service.teardown()


def test_an_event_that_fails_in_the_database_is_rejected_and_the_rest_of_its_batch_kept(monitor, context, caplog):
    """A failure the schema cannot foresee (here a trigger of the real database) costs its event only."""
    monitor.db.execute_sql("CREATE TRIGGER poison BEFORE INSERT ON version WHEN NEW.number = '6.6.6'"
                           " BEGIN SELECT RAISE(ABORT, 'poisoned row'); END")
    sender = IntakeSender("inproc://intake", context)
    for number, version in enumerate(["1.0", "6.6.6", "1.0", "1.0"]):
        sender.send(SourceEvent("local", f"p{number}", version))
    with caplog.at_level(logging.ERROR, logger="kiskadee.service.monitor"):
        for _ in range(100):
            monitor.step(T0)
            sender.pump(0.01)
            if not sender.pending:
                break
    sender.close(timeout=0)
    assert list(sender.rejected) == [2] and "poisoned row" in sender.rejected[2]
    assert sorted(p.name for p in Package.select().join(Version)) == ["p0", "p2", "p3"]
    assert "Traceback" in caplog.text and monitor.counters["errors"] == 2     # the batch, then the event
    assert_still_serves(monitor, context)
