import json
import re

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


def test_a_finding_keeps_its_source_lines_and_line_hash_from_the_runner_to_the_monitor():
    from kiskadee.core.findings import Finding
    from kiskadee.core.runs import AnalyzerRun

    lines = ("{", "  char buf[8];", '  strcpy(buf, "<script>");', "}")
    finding = Finding("src/a.c", 3, "strcpy", "high", "Does not check for buffer overflows",
                      context=lines, context_line=1, line_hash="83e0cb156f87e489:2")
    run = AnalyzerRun("flawfinder", "2.0.20", "ok", 0.5, findings=[finding])
    frame = wire.encode("result", runner="r1", job=4, runs=[run.to_wire()])
    assert json.loads(frame)["runs"][0]["findings"][0]["context"] == list(lines)
    received = AnalyzerRun.from_wire(wire.decode(frame).fields["runs"][0]).findings[0]
    assert (received.context, received.context_line, received.line_hash) == (lines, 1, "83e0cb156f87e489:2")
    assert received == finding


def finding_with(**fields):
    finding = {"path": "a.c", "line": 4, "check_id": "c", "severity": "low", "message": "m"}
    finding.update(fields)
    return finding


def result_frame(finding):
    run = {"analyzer": "cppcheck", "tool_version": "2", "status": "ok", "duration": 1.0, "error": "",
           "findings": [finding]}
    return json.dumps({"type": "result", "schema": wire.SCHEMA, "runner": "r1", "job": 4, "runs": [run]}).encode()


@pytest.mark.parametrize("fields, reason", [
    ({"context": ["x"] * 8, "context_line": 1}, "context must be at most 7 strings of at most 240 characters"),
    ({"context": ["x" * 241], "context_line": 4}, "context must be at most 7 strings of at most 240 characters"),
    ({"context": [4], "context_line": 4}, "context must be at most 7 strings"),
    ({"context": "int x;", "context_line": 4}, "field 'context' must be list"),
    ({"context": ["a", "b\nc"], "context_line": 3}, "a context line holds a line end"),
    ({"context": ["a\r"], "context_line": 4}, "a context line holds a line end"),
    ({"context": ["a", "b"], "context_line": 5}, "does not hold the finding's line 4"),
    ({"context": ["a", "b"], "context_line": 0}, "does not hold the finding's line 4"),
    ({"context_line": 2}, "context_line is 2 but there is no context"),
    ({"context": ["a"], "context_line": -1}, "field 'context_line' is out of range"),
    ({"context": ["a"], "context_line": "4"}, "field 'context_line' must be int"),
    ({"line_hash": "<script>"}, "line_hash '<script>' is not a line hash"),
    ({"line_hash": "83e0cb156f87e489"}, "is not a line hash"),
    ({"line_hash": "83e0cb156f87e489:0"}, "is not a line hash"),
    ({"line_hash": "1" * 17 + ":1"}, "is not a line hash"),
    ({"line_hash": 12}, "field 'line_hash' must be str"),
])
def test_a_finding_with_malformed_source_lines_is_refused_with_the_reason(fields, reason):
    with pytest.raises(wire.WireError, match=re.escape(reason)) as refused:
        wire.decode(result_frame(finding_with(**fields)))
    assert str(refused.value).startswith("result message: run 1 finding 1")


def test_source_lines_count_against_the_text_limit():
    from kiskadee.config import LimitsConfig

    lines = ["x" * 40] * 7
    frame = result_frame(finding_with(context=lines, context_line=1))
    assert wire.decode(frame).fields["runs"][0]["findings"][0]["context"] == lines
    with pytest.raises(wire.WireError, match="context is over the limit of 200 characters"):
        wire.decode(frame, limits=LimitsConfig(text_chars=200))


def test_encode_refuses_source_lines_that_decode_would_refuse():
    with pytest.raises(wire.WireError, match="context_line is 3 but there is no context"):
        wire.encode("result", runner="r1", job=4, runs=[{
            "analyzer": "cppcheck", "tool_version": "2", "status": "ok", "duration": 1.0, "error": "",
            "findings": [finding_with(context_line=3)]}])
