import json

import pytest

from kiskadee.service import wire


def test_round_trip_fills_optional_fields():
    frame = wire.encode("source", fetcher="debian", package="hello", version="2.10-3")
    message = wire.decode(frame)
    assert message.type == "source"
    assert message.fields == {"fetcher": "debian", "package": "hello", "version": "2.10-3",
                              "source_url": "", "sha256": "", "meta": {}}
    assert json.loads(frame)["schema"] == wire.SCHEMA


def test_result_with_runs_round_trips():
    run = {"analyzer": "cppcheck", "tool_version": "2.10", "status": "ok", "duration": 1.5,
           "error": "", "findings": []}
    message = wire.decode(wire.encode("result", runner="r1", job=4, runs=[run]))
    assert message.fields["runs"] == [run] and message.fields["transient"] is False


@pytest.mark.parametrize("frame, reason", [
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"type": "launch", "schema": 1}', "unknown message type 'launch'"),
    (b'{"type": "source", "schema": 99, "fetcher": "d", "package": "p", "version": "1"}', "schema 99"),
    (b'{"type": "source", "schema": 1, "fetcher": "d", "package": "p"}', "lacks the field 'version'"),
    (b'{"type": "source", "schema": 1, "fetcher": "d", "package": "p", "version": 2}',
     "field 'version' must be str"),
    (b'{"type": "source", "schema": 1, "fetcher": "d", "package": " ", "version": "1"}', "empty package"),
    (b'{"type": "source", "schema": 1, "fetcher": "d", "package": "p", "version": "1", "x": 1}',
     "unknown fields: x"),
    (b'{"type": "ack", "schema": 1, "job": true}', "field 'job' must be int"),
    (b'{"type": "result", "schema": 1, "runner": "r", "job": 1, "runs": [{"status": "ok"}]}',
     "run 1 lacks the field 'analyzer'"),
])
def test_malformed_frames_say_why(frame, reason):
    with pytest.raises(wire.WireError, match=reason):
        wire.decode(frame)


def test_oversized_frame_is_refused_before_parsing():
    frame = b'{"type": "source", "schema": 1, "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    with pytest.raises(wire.WireError, match="over the 1048576 byte limit"):
        wire.decode(frame, max_bytes=wire.MAX_INTAKE_BYTES)


def test_encode_refuses_what_decode_would_refuse():
    with pytest.raises(wire.WireError, match="lacks the field 'package'"):
        wire.encode("source", fetcher="debian", version="1")


def test_a_finding_keeps_every_cwe_from_the_runner_to_the_monitor():
    from kiskadee.core.findings import Finding
    from kiskadee.core.runs import AnalyzerRun

    finding = Finding("src/a.c", 3, "strcpy", "high", "Does not check for buffer overflows", cwes=(120, 119))
    run = AnalyzerRun("flawfinder", "2.0.20", "ok", 0.5, findings=[finding])
    message = wire.decode(wire.encode("result", runner="r1", job=4, runs=[run.to_wire()]))
    received = AnalyzerRun.from_wire(message.fields["runs"][0]).findings[0]
    assert (received.cwe, received.cwes) == (120, (120, 119))


@pytest.mark.parametrize("cwes", [["120"], [0], list(range(1, 18))])
def test_a_finding_with_bad_cwes_is_refused(cwes):
    run = {"analyzer": "flawfinder", "tool_version": "2", "status": "ok", "duration": 1.0, "error": "",
           "findings": [{"path": "a.c", "line": 1, "check_id": "c", "severity": "low", "message": "m",
                         "cwes": cwes}]}
    with pytest.raises(wire.WireError, match="cwes must be"):
        wire.decode(wire.encode("result", runner="r1", job=4, runs=[run]))
