"""The wire format: every message kiskadee's processes exchange over ZeroMQ.

Each message is one JSON document in one ZeroMQ frame, an object with
``type``, ``schema`` (the version of this format) and the fields of its
type. ``decode`` validates a frame completely, so the loops that receive
messages deal only in well-formed ones and count the rest.

Messages:
  source     a fetcher or the bridge announces a version (DEALER -> monitor intake
             ROUTER; kiskadee.service.intake puts a sequence number frame before it)
  ready      a runner is idle and asks for a job (DEALER -> monitor)
  job        the monitor hands a version to a runner (monitor -> DEALER)
  heartbeat  a runner is still working on a job, and what it is doing
  result     a runner's outcome for a job: analyzer runs with findings, or an error
  ack        the monitor stored a result (monitor -> DEALER)
  recorded   the monitor committed these intake sequence numbers (intake ROUTER -> sender)
"""

import json
from typing import Any, Dict, NamedTuple, Tuple

SCHEMA = 1
MAX_INTAKE_BYTES = 1024 * 1024          # a source event is small; anything larger is refused

_STR, _INT, _FLOAT, _BOOL, _DICT, _LIST = str, int, float, bool, dict, list

# type -> {field: (python type, required)}
FIELDS: Dict[str, Dict[str, Tuple[type, bool]]] = {
    "source": {
        "fetcher": (_STR, True), "package": (_STR, True), "version": (_STR, True),
        "source_url": (_STR, False), "sha256": (_STR, False), "meta": (_DICT, False),
    },
    "ready": {"runner": (_STR, True)},
    "job": {
        "job": (_INT, True), "fetcher": (_STR, True), "package": (_STR, True),
        "version": (_STR, True), "source_url": (_STR, False), "sha256": (_STR, False),
        "meta": (_DICT, False),
    },
    "heartbeat": {"runner": (_STR, True), "job": (_INT, True), "activity": (_STR, False)},
    "result": {
        "runner": (_STR, True), "job": (_INT, True), "runs": (_LIST, True),
        "error": (_STR, False), "transient": (_BOOL, False),
        "source_url": (_STR, False), "sha256": (_STR, False),
        "unresolved": (_BOOL, False),   # the error says why the source could not be located
    },
    "ack": {"job": (_INT, True)},
    "recorded": {"seqs": (_LIST, True)},   # [[first, last], ...] inclusive ranges
}
DEFAULTS = {_STR: "", _DICT: {}, _LIST: [], _BOOL: False, _INT: 0, _FLOAT: 0.0}
_NAMES = {kind: frozenset(spec) for kind, spec in FIELDS.items()}

RUN_FIELDS = {"analyzer": _STR, "tool_version": _STR, "status": _STR, "duration": (int, float),
              "error": _STR, "findings": _LIST}
RUN_STATUSES = ("ok", "failed", "timeout", "skipped")
# Coverage of analyzers that compile the code: optional, checked when present.
OPTIONAL_RUN_FIELDS = {"mode": _STR, "files_analyzed": (int, type(None)), "files_failed": (int, type(None)),
                       "fallback": _STR, "failed_files": _STR}


class WireError(ValueError):
    """A frame that is not a valid kiskadee message; the text says why."""


class Message(NamedTuple):
    type: str
    fields: Dict[str, Any]


def encode(kind: str, **fields: Any) -> bytes:
    """One frame holding a message of type ``kind``; the fields are validated first."""
    _validate(kind, fields)
    return json.dumps({"type": kind, "schema": SCHEMA, **fields}, separators=(",", ":")).encode()


def decode(frame: bytes, max_bytes: int = 0) -> Message:
    """The validated message in ``frame``, or WireError saying what is wrong with it."""
    if max_bytes and len(frame) > max_bytes:
        raise WireError(f"message of {len(frame)} bytes is over the {max_bytes} byte limit")
    try:
        # Decoding first spares json.loads guessing the encoding of every frame.
        document = json.loads(frame.decode("utf-8") if isinstance(frame, bytes) else frame)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise WireError(f"not a JSON object but {type(document).__name__}")
    kind, schema = document.pop("type", None), document.pop("schema", None)
    if kind not in FIELDS:
        raise WireError(f"unknown message type {kind!r}; known: {', '.join(FIELDS)}")
    if schema != SCHEMA:
        raise WireError(f"{kind} message has schema {schema!r}, this kiskadee speaks {SCHEMA}")
    _validate(kind, document)
    for name, (kind_of, _required) in FIELDS[kind].items():
        document.setdefault(name, type(DEFAULTS[kind_of])())
    return Message(kind, document)


def _validate(kind: str, fields: Dict[str, Any]) -> None:
    if kind not in FIELDS:
        raise WireError(f"unknown message type {kind!r}")
    spec = FIELDS[kind]
    unknown = fields.keys() - _NAMES[kind]
    if unknown:
        raise WireError(f"{kind} message has unknown fields: {', '.join(sorted(unknown))}")
    for name, (kind_of, required) in spec.items():
        if name not in fields:
            if required:
                raise WireError(f"{kind} message lacks the field '{name}'")
            continue
        if not _is(fields[name], kind_of):
            raise WireError(f"{kind} message field '{name}' must be {kind_of.__name__}, "
                            f"not {type(fields[name]).__name__}")
    if kind in ("source", "job") and not (fields["package"].strip() and fields["version"].strip()):
        raise WireError(f"{kind} message has an empty package or version")
    if kind == "result":
        for run in fields["runs"]:
            _validate_run(run)
    if kind == "recorded" and not all(
            isinstance(span, list) and len(span) == 2 and all(_is(n, _INT) for n in span)
            for span in fields["seqs"]):
        raise WireError("recorded message: seqs must be [first, last] pairs of integers")


def _validate_run(run: Any) -> None:
    if not isinstance(run, dict):
        raise WireError("result message: each run must be an object")
    for name, kind_of in RUN_FIELDS.items():
        if not _is(run.get(name), kind_of):
            raise WireError(f"result message: run field '{name}' missing or of the wrong type")
    for name, kind_of in OPTIONAL_RUN_FIELDS.items():
        if name in run and not _is(run[name], kind_of):
            raise WireError(f"result message: run field '{name}' is of the wrong type")
    if run["status"] not in RUN_STATUSES:
        raise WireError(f"result message: run status {run['status']!r} is not one of {RUN_STATUSES}")


def _is(value: Any, kind_of) -> bool:
    if isinstance(value, bool) and kind_of is not _BOOL:
        return False                    # JSON true is not a number here
    return isinstance(value, kind_of)
