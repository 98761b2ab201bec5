"""A fuzzer against both sockets of a real monitor: thousands of random and mutated messages, then
the monitor must still acknowledge a good event and store a good result.

Messages are real valid ones (a source event, ready, heartbeat, a result with findings) mutated by
Hypothesis: a field dropped or added, a value of the wrong type, huge, out of range, with a lone
surrogate, control characters or deep nesting, invalid UTF-8 bytes; or random JSON, or random bytes.
The bulk runs against an in-process Monitor over inproc:// (fast, a fixed number of examples); a
smaller run goes to a ``kiskadee monitor`` process over ipc:// to show the process itself survives.
"""

import collections
import datetime
import json
import struct

import pytest
import zmq
from harness import Suite, short_tmp_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiskadee.config import from_mapping
from kiskadee.core.events import SourceEvent
from kiskadee.service import wire
from kiskadee.service.intake import IntakeSender
from kiskadee.service.loop import Instant
from kiskadee.service.monitor import Monitor

pytestmark = pytest.mark.slow

T0 = Instant(1000.0, datetime.datetime(2026, 11, 28, 12, 0, 0))
IN_PROCESS_EXAMPLES = 3000
SUBPROCESS_EXAMPLES = 600
FUZZER = "fuzz"     # the identity of the fuzzing runner, so some mutated messages pass the name check
FINDING = {"path": "src/a.c", "line": 3, "column": 1, "function": "main", "check_id": "nullPointer",
           "cwe": 476, "severity": "high", "message": "null pointer", "fingerprint": "f" * 32, "rank": 0.5}
RUN = {"analyzer": "cppcheck", "tool_version": "2.10", "status": "ok", "duration": 1.5, "error": "",
       "findings": [FINDING], "mode": "per-file", "files_analyzed": 3, "files_failed": 0}
VALID = {
    "intake": [{"type": "source", "schema": 1, "fetcher": "debian", "package": "hello", "version": "2.10-3",
                "source_url": "http://mirror/h.tar.gz", "sha256": "ab" * 32, "meta": {"backend": "x"}}],
    "work": [{"type": "ready", "schema": 1, "runner": FUZZER},
             {"type": "heartbeat", "schema": 1, "runner": FUZZER, "job": 1, "lease": "0" * 32, "activity": "x"},
             {"type": "result", "schema": 1, "runner": FUZZER, "job": 1, "lease": "0" * 32, "runs": [RUN],
              "source_url": "http://mirror/h.tar.gz", "sha256": "ab" * 32},
             {"type": "result", "schema": 1, "runner": FUZZER, "job": 1, "lease": "0" * 32, "runs": [],
              "error": "checksum mismatch", "transient": False}],
}

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
HOSTILE_VALUES = st.sampled_from([
    "x" * 300, "x" * 70_000, "p" * 900_000, "\ud800", "a\udcffb", "\x00", "hel\x1b[2Jlo", "1\n2", "",
    2**63, 2**64, -1, 2**200, 1e308 * 10, 0.5, True, None, [], {}, [[[[[]]]]],
    {"text": "m"}, "1" * 5000, "1:", "~", "\u202e", "\ufffd",
])


def _slots(document, found=None):
    """Every (container, key) in a message, nested runs and findings included."""
    found = [] if found is None else found
    items = document.items() if isinstance(document, dict) else enumerate(document)
    for key, value in items:
        found.append((document, key))
        if isinstance(value, (dict, list)):
            _slots(value, found)
    return found


@st.composite
def mutated(draw, socket: str):
    """(class of malformation, frame): a valid message of ``socket`` changed in one place."""
    document = json.loads(json.dumps(draw(st.sampled_from(VALID[socket]))))
    container, key = draw(st.sampled_from(_slots(document)))
    how = draw(st.sampled_from(["drop", "extra", "wrong value", "hostile value", "deep", "bad utf-8"]))
    if how == "drop":
        del container[key]
    elif how == "extra":
        target = container if isinstance(container, dict) else document
        target[draw(st.text(max_size=10))] = draw(JSON_VALUES)
    elif how == "wrong value":
        container[key] = draw(JSON_VALUES)
    elif how == "hostile value":
        container[key] = draw(HOSTILE_VALUES)
    elif how == "deep":
        depth = draw(st.sampled_from([33, 1000, 100_000]))
        container[key] = "@DEEP@"
        frame = json.dumps(document).encode()
        return how, frame.replace(b'"@DEEP@"', b"[" * depth + b"]" * depth)
    else:
        container[key] = "@BAD@"
        frame = json.dumps(document).encode()
        return how, frame.replace(b"@BAD@", draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc0\xaf"])))
    return how, json.dumps(document).encode()


def messages(socket: str):
    return st.one_of(
        mutated(socket),
        JSON_VALUES.map(lambda value: ("random JSON", json.dumps(value).encode())),
        st.binary(max_size=512).map(lambda data: ("random bytes", data)),
    )


class Fuzzer:
    """Raw peers on both sockets of a monitor; counts what it sent, by socket and class."""

    def __init__(self, context, intake: str, work: str):
        self.intake = context.socket(zmq.DEALER)
        self.work = context.socket(zmq.DEALER)
        self.work.setsockopt(zmq.IDENTITY, FUZZER.encode())
        for sock, endpoint in ((self.intake, intake), (self.work, work)):
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
        self.sent = collections.Counter()
        self.answers = collections.Counter()
        self.seq = 0

    def send(self, socket: str, how: str, frame: bytes) -> None:
        if socket == "intake":
            self.seq += 1
            self.intake.send_multipart([struct.pack(">Q", self.seq), frame])
        else:
            self.work.send(frame)
        self.sent[(socket, how)] += 1

    def drain(self) -> None:
        for sock in (self.intake, self.work):
            while sock.poll(0):
                self.answers[wire.decode(sock.recv()).type] += 1

    def close(self) -> None:
        self.intake.close(linger=0)
        self.work.close(linger=0)


def fuzz(fuzzer: Fuzzer, examples: int, after_each) -> None:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(["intake", "work"]).flatmap(lambda socket: st.tuples(st.just(socket),
                                                                                 messages(socket))))
    def one(case):
        socket, (how, frame) = case
        fuzzer.send(socket, how, frame)
        after_each()
        fuzzer.drain()

    one()


def good_event_and_result(context, intake: str, work: str, step) -> None:
    """A good event is acknowledged; a runner gets a job and its good result is acknowledged."""
    sender = IntakeSender(intake, context)
    sender.send(SourceEvent("local", "innocent", "1.0", source_url="/x"))
    for _ in range(200):
        step()
        sender.pump(0.02)
        if not sender.pending:
            break
    sender.close(timeout=0)
    assert sender.rejected == {} and sender.pending == 0, "the monitor no longer acknowledges a good event"
    good = context.socket(zmq.DEALER)
    good.setsockopt(zmq.IDENTITY, b"good")
    good.setsockopt(zmq.LINGER, 0)
    good.connect(work)
    good.send(wire.encode("ready", runner="good"))
    job = _next(good, step, "job")
    good.send(wire.encode("result", runner="good", job=job["job"], lease=job["lease"], runs=[RUN]))
    assert _next(good, step, "ack")["job"] == job["job"], "the monitor no longer stores a good result"
    good.close(linger=0)


def _next(sock, step, kind: str) -> dict:
    for _ in range(300):
        step()
        while sock.poll(10):
            message = wire.decode(sock.recv())
            if message.type == kind:
                return message.fields
    pytest.fail(f"no {kind} message from the monitor")


def report(where: str, fuzzer: Fuzzer) -> None:
    total = sum(fuzzer.sent.values())
    classes = sorted({how for _, how in fuzzer.sent})
    print(f"\n{where}: {total} messages sent ({dict(collections.Counter(s for s, _ in fuzzer.sent.elements()))}),"
          f" {len(classes)} classes {classes}; answers {dict(fuzzer.answers)}")


def test_fuzzing_an_in_process_monitor_leaves_it_serving(tmp_path):
    context = zmq.Context()
    monitor = Monitor(from_mapping({"database": {"path": str(tmp_path / "k.db")},
                                    "service": {"intake": "inproc://intake", "work": "inproc://work"}}),
                      context=context)
    monitor.poll_ms = 0
    monitor.setup()
    fuzzer = Fuzzer(context, "inproc://intake", "inproc://work")
    try:
        fuzz(fuzzer, IN_PROCESS_EXAMPLES, lambda: monitor.step(T0))
        report("in-process monitor", fuzzer)
        assert sum(fuzzer.sent.values()) >= IN_PROCESS_EXAMPLES
        assert len({how for _, how in fuzzer.sent}) == 8
        assert monitor.counters["rejected"] > IN_PROCESS_EXAMPLES // 2
        assert monitor.counters["errors"] == 0      # refused by the schema, not caught after failing
        monitor.poll_ms = 5
        good_event_and_result(context, "inproc://intake", "inproc://work", lambda: monitor.step(T0))
    finally:
        fuzzer.close()
        monitor.teardown()
        context.destroy(linger=0)


def test_fuzzing_a_monitor_process_leaves_it_running_and_serving():
    with short_tmp_dir() as root:
        suite = Suite(root)
        process = suite.start_monitor()
        run = root / "run"
        context = zmq.Context()
        fuzzer = Fuzzer(context, f"ipc://{run}/intake.sock", f"ipc://{run}/work.sock")
        try:
            fuzz(fuzzer, SUBPROCESS_EXAMPLES, lambda: None)
            report("monitor process", fuzzer)
            good_event_and_result(context, f"ipc://{run}/intake.sock", f"ipc://{run}/work.sock", lambda: None)
            assert process.poll() is None, suite.log("monitor")
            assert "Traceback" not in suite.log("monitor")     # every message refused before it could fail
        finally:
            fuzzer.close()
            context.destroy(linger=0)
            suite.stop()
