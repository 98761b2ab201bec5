"""The wire format: every message kiskadee's processes exchange over ZeroMQ.

Each message is one JSON document in one ZeroMQ frame, an object with
``type``, ``schema`` (the version of this format) and the fields of its
type. ``decode`` validates a frame completely against its type's schema
(``FIELDS``): types, required and unknown fields, string lengths
(``config.LimitsConfig``), integer ranges (what SQLite's signed 64-bit
integers hold, never negative), nesting depth, valid Unicode (no lone
surrogate), no control characters in names and versions. So the loops
that receive messages deal only in well-formed ones, and refuse the rest
with the reason ``WireError`` gives.

Messages:
  source     a fetcher or the bridge announces a version (DEALER -> monitor intake
             ROUTER; kiskadee.service.intake puts a sequence number frame before it)
  recorded   the monitor committed these intake sequence numbers (intake ROUTER -> sender)
  rejected   the monitor refused these intake sequence numbers, for good, and why
  ready      a runner is idle and asks for a job (DEALER -> monitor)
  job        the monitor hands a version to a runner, with the lease token it issued
  heartbeat  a runner is still working on a job (its lease token), and what it is doing
  result     a runner's outcome for a job: analyzer runs with findings, or an error
  ack        the monitor stored a result (monitor -> DEALER)
  reject     the monitor will not take this heartbeat or result, and why: stop sending it
  release    a runner that is stopping hands back the job it holds (its lease token): the job
             goes back to the queue at once, the attempt not counted
"""

import itertools
import json
import math
import re
from typing import Any, Dict, NamedTuple, Optional, Tuple, Union

from kiskadee.analysis.context import MOST_LINES, WIDTH
from kiskadee.config import LimitsConfig
from kiskadee.core.findings import SEVERITIES

SCHEMA = 1
DEFAULT_LIMITS = LimitsConfig()
MAX_INTAKE_BYTES = DEFAULT_LIMITS.intake_message_bytes  # a source event is small; anything larger is refused
MAX_ID = 2**63 - 1                  # SQLite's largest integer: ids, line numbers, sequence numbers
MAX_REASON_CHARS = 1000             # a reason sent back to a peer

_STR, _INT, _FLOAT, _BOOL, _DICT, _LIST, _NONE = str, int, float, bool, dict, list, type(None)
_NUMBER = (int, float)


class Field(NamedTuple):
    """One field of a message: its type(s), whether it must be there, and for a string its limit."""

    kind: Union[type, Tuple[type, ...]]
    required: bool = True
    text: str = ""      # a key of TEXT_LIMITS: how long the string may be and what it may hold


# text class -> (the LimitsConfig attribute bounding its length, whether control characters are refused)
TEXT_LIMITS = {
    "name": ("name_chars", True), "version": ("version_chars", True), "token": ("name_chars", True),
    "url": ("url_chars", False), "path": ("path_chars", False), "text": ("text_chars", False),
    "activity": ("activity_chars", False),
}

_NAME, _VERSION = Field(_STR, True, "name"), Field(_STR, True, "version")
_LEASE = Field(_STR, False, "token")     # '' (absent) never matches a lease the monitor issued
_ID = Field(_INT)
_EVENT = {"fetcher": _NAME, "package": _NAME, "version": _VERSION, "source_url": Field(_STR, False, "url"),
          "sha256": Field(_STR, False, "token"), "meta": Field(_DICT, False)}

FIELDS: Dict[str, Dict[str, Field]] = {
    "source": _EVENT,
    "recorded": {"seqs": Field(_LIST)},                 # [[first, last], ...] inclusive ranges
    "rejected": {"seqs": Field(_LIST), "reason": Field(_STR, True, "text")},
    "ready": {"runner": _NAME},
    "job": {"job": _ID, "lease": _LEASE, **_EVENT},
    "heartbeat": {"runner": _NAME, "job": _ID, "lease": _LEASE, "activity": Field(_STR, False, "activity")},
    "result": {
        "runner": _NAME, "job": _ID, "lease": _LEASE, "runs": Field(_LIST),
        "error": Field(_STR, False, "text"), "transient": Field(_BOOL, False),
        "source_url": Field(_STR, False, "url"), "sha256": Field(_STR, False, "token"),
        "unresolved": Field(_BOOL, False),      # the error says why the source could not be located
    },
    "release": {"runner": _NAME, "job": _ID, "lease": _LEASE},
    "ack": {"job": _ID},
    "reject": {"job": _ID, "reason": Field(_STR, True, "text")},
}
DEFAULTS = {_STR: "", _DICT: {}, _LIST: [], _BOOL: False, _INT: 0, _FLOAT: 0.0}

RUN_FIELDS = {
    "analyzer": _NAME, "tool_version": _VERSION, "status": _NAME, "duration": Field(_NUMBER),
    "error": Field(_STR, True, "text"), "findings": Field(_LIST),
    # Coverage of analyzers that compile the code: optional, checked when present.
    "mode": Field(_STR, False, "name"), "files_analyzed": Field((int, _NONE), False),
    "files_failed": Field((int, _NONE), False), "fallback": Field(_STR, False, "text"),
    "failed_files": Field(_STR, False, "text"),
}
RUN_STATUSES = ("ok", "failed", "timeout", "skipped")
FINDING_FIELDS = {
    "path": Field(_STR, True, "path"), "line": _ID, "check_id": _NAME, "severity": _NAME,
    "message": Field(_STR, True, "text"), "column": Field(_INT, False), "function": Field(_STR, False, "path"),
    "cwe": Field((int, _NONE), False), "cwes": Field(_LIST, False), "fingerprint": Field(_STR, False, "token"),
    "rank": Field(_NUMBER, False),
    # The source around the finding (kiskadee.analysis.context): checked in _check_context.
    "context": Field(_LIST, False), "context_line": Field(_INT, False), "line_hash": Field(_STR, False, "token"),
}
MAX_CWES = 16           # CWEs one finding may name (flawfinder gives two or three)
LINE_HASH = re.compile(r"[0-9a-f]{1,16}:[1-9][0-9]{0,9}")     # GitHub's primaryLocationLineHash: hash:occurrence

# A JSON string, to skip when counting brackets; unrolled so a long string costs no backtracking.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class WireError(ValueError):
    """A frame that is not a valid kiskadee message; the text says why.

    ``document`` is the parsed message when the frame was a JSON object, so a
    receiver can still tell whose job a refused result or heartbeat was.
    """

    def __init__(self, reason: str, document: Optional[dict] = None):
        super().__init__(reason)
        self.document = document


class Message(NamedTuple):
    type: str
    fields: Dict[str, Any]


def encode(kind: str, **fields: Any) -> bytes:
    """One frame holding a message of type ``kind``; its types and structure are validated first.

    Lengths are not checked here: the receiver's limits are the ones that count.
    """
    _validate(kind, fields, None)
    return json.dumps({"type": kind, "schema": SCHEMA, **fields}, separators=(",", ":")).encode()


def decode(frame: bytes, max_bytes: int = 0, limits: LimitsConfig = DEFAULT_LIMITS) -> Message:
    """The validated message in ``frame``, or WireError saying what is wrong with it."""
    if max_bytes and len(frame) > max_bytes:
        raise WireError(f"message of {len(frame)} bytes is over the {max_bytes} byte limit")
    document = _parse(frame, limits.depth)
    kind, schema = document.pop("type", None), document.pop("schema", None)
    if not isinstance(kind, str) or kind not in FIELDS:
        raise WireError(f"unknown message type {_short(kind)}; known: {', '.join(FIELDS)}")
    if schema != SCHEMA:
        raise WireError(f"{kind} message has schema {_short(schema)}, this kiskadee speaks {SCHEMA}")
    try:
        _validate(kind, document, limits)
    except WireError as exc:
        raise WireError(str(exc), dict(document, type=kind)) from None
    for name, field in FIELDS[kind].items():
        if name not in document:
            document[name] = type(DEFAULTS[field.kind])()
    return Message(kind, document)


def reason_text(reason: str) -> str:
    """A reason cut to what is sent back to a peer or stored, any lone surrogate escaped."""
    reason = reason.encode("utf-8", "backslashreplace").decode("utf-8")
    return reason if len(reason) <= MAX_REASON_CHARS else reason[:MAX_REASON_CHARS - 3] + "..."


# parsing -------------------------------------------------------------------------------

def _parse(frame: Union[bytes, str], depth: int) -> dict:
    """The JSON object in ``frame``: UTF-8, nested at most ``depth`` deep, no lone surrogate."""
    try:
        text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
    except UnicodeDecodeError as exc:
        raise WireError(f"not JSON: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    nesting = _nesting(text)
    if nesting > depth:
        raise WireError(f"nested {nesting} deep, over the limit of {depth}")
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:      # a belt to the braces counted above
        raise WireError(f"nested over the limit of {depth}") from None
    except ValueError as exc:   # also a number of more digits than Python converts
        raise WireError(f"not JSON: {str(exc)[:200]}") from None
    if not isinstance(document, dict):
        raise WireError(f"not a JSON object but {type(document).__name__}")
    # Decoded UTF-8 holds no surrogate; only a \\uD8xx escape can bring one, so the walk is rare.
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(document):
        raise WireError("holds a lone surrogate (\\ud800-\\udfff), which is not valid Unicode", document)
    return document


def _nesting(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest, counted without recursion."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    steps = (1 if char in "[{" else -1 for char in brackets)
    return max(itertools.accumulate(steps), default=0)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (keys too) holds a lone surrogate; depth is bounded already."""
    if isinstance(value, str):
        return bool(_SURROGATE.search(value))
    if isinstance(value, dict):
        return any(_has_lone_surrogate(key) or _has_lone_surrogate(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


# validation ----------------------------------------------------------------------------

def _validate(kind: str, fields: Dict[str, Any], limits: Optional[LimitsConfig]) -> None:
    """Check ``fields`` against the schema of ``kind``; lengths only when ``limits`` is given."""
    if kind not in FIELDS:
        raise WireError(f"unknown message type {kind!r}")
    _check_fields(f"{kind} message", FIELDS[kind], fields, limits)
    if kind in ("source", "job") and not (fields["package"].strip() and fields["version"].strip()):
        raise WireError(f"{kind} message has an empty package or version")
    if kind == "result":
        for number, run in enumerate(fields["runs"], 1):
            _check_run(f"result message: run {number}", run, limits)
    if kind in ("recorded", "rejected"):
        _check_seqs(kind, fields["seqs"])


def _check_fields(where: str, spec: Dict[str, Field], fields: Any, limits: Optional[LimitsConfig]) -> None:
    if not isinstance(fields, dict):
        raise WireError(f"{where} must be an object, not {type(fields).__name__}")
    unknown = fields.keys() - spec.keys()
    if unknown:
        names = sorted(name if name.isprintable() and len(name) <= 60 else _short(name) for name in unknown)
        raise WireError(f"{where} has unknown fields: {', '.join(names)}")
    for name, field in spec.items():
        if name in fields:
            _check_value(f"{where} field '{name}'", field, fields[name], limits)
        elif field.required:
            raise WireError(f"{where} lacks the field '{name}'")


def _check_value(what: str, field: Field, value: Any, limits: Optional[LimitsConfig]) -> None:
    if not _is(value, field.kind):
        raise WireError(f"{what} must be {_kind_name(field.kind)}, not {type(value).__name__}")
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_ID:
        raise WireError(f"{what} is out of range: an integer from 0 to 2**63-1")
    if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
        raise WireError(f"{what} must be a finite number, 0 or more")
    if isinstance(value, str) and field.text and limits is not None:
        attribute, printable_only = TEXT_LIMITS[field.text]
        limit = getattr(limits, attribute)
        if len(value) > limit:
            raise WireError(f"{what} is {len(value)} characters long, over the limit of {limit}")
        if printable_only and not value.isprintable():
            raise WireError(f"{what} holds control or other non-printable characters")


def _check_run(where: str, run: Any, limits: Optional[LimitsConfig]) -> None:
    _check_fields(where, RUN_FIELDS, run, limits)
    if run["status"] not in RUN_STATUSES:
        raise WireError(f"{where}: status {_short(run['status'])} is not one of {', '.join(RUN_STATUSES)}")
    for number, finding in enumerate(run["findings"], 1):
        _check_fields(f"{where} finding {number}", FINDING_FIELDS, finding, limits)
        if finding["severity"] not in SEVERITIES:
            raise WireError(f"{where} finding {number}: severity {_short(finding['severity'])} "
                            f"is not one of {', '.join(SEVERITIES)}")
        cwes = finding.get("cwes", [])
        if len(cwes) > MAX_CWES or not all(_is(cwe, _INT) and 0 < cwe <= MAX_ID for cwe in cwes):
            raise WireError(f"{where} finding {number}: cwes must be at most {MAX_CWES} positive integers")
        _check_context(f"{where} finding {number}", finding, limits)


def _check_context(where: str, finding: dict, limits: Optional[LimitsConfig]) -> None:
    """The source lines around a finding: a few short lines without line ends, its line among them."""
    lines, first = finding.get("context", []), finding.get("context_line", 0)
    if len(lines) > MOST_LINES or not all(_is(line, _STR) and len(line) <= WIDTH for line in lines):
        raise WireError(f"{where}: context must be at most {MOST_LINES} strings of at most {WIDTH} characters")
    if any("\n" in line or "\r" in line for line in lines):
        raise WireError(f"{where}: a context line holds a line end")
    if limits is not None and sum(map(len, lines)) > limits.text_chars:
        raise WireError(f"{where}: context is over the limit of {limits.text_chars} characters")
    if lines and not 1 <= first <= finding["line"] < first + len(lines):
        raise WireError(f"{where}: context from line {first} for {len(lines)} lines does not hold "
                        f"the finding's line {finding['line']}")
    if first and not lines:
        raise WireError(f"{where}: context_line is {first} but there is no context")
    line_hash = finding.get("line_hash", "")
    if line_hash and not LINE_HASH.fullmatch(line_hash):
        raise WireError(f"{where}: line_hash {_short(line_hash)} is not a line hash "
                        "(hex digits, ':', the occurrence number)")


def _check_seqs(kind: str, seqs: list) -> None:
    for span in seqs:
        if not (isinstance(span, list) and len(span) == 2 and all(_is(n, _INT) for n in span)
                and 0 <= span[0] <= span[1] <= MAX_ID):
            raise WireError(f"{kind} message: seqs must be [first, last] pairs of integers, first <= last")


def _is(value: Any, kind_of) -> bool:
    if isinstance(value, bool) and kind_of is not _BOOL:
        return False                    # JSON true is not a number here
    return isinstance(value, kind_of)


def _kind_name(kind_of) -> str:
    kinds = kind_of if isinstance(kind_of, tuple) else (kind_of,)
    return " or ".join("null" if kind is _NONE else kind.__name__ for kind in kinds)


def _short(value: Any) -> str:
    """``value`` for a reason: its repr, cut, so a huge or hostile value never fills a log."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
