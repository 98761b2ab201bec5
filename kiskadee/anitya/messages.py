"""Anitya's version-update messages, validated and normalized into ``SourceEvent``.

Anitya announces new upstream versions on two topics:

``<prefix>.anitya.project.version.update`` (deprecated, "v1")
    Two body layouts travel under it. The one fedmsg carried for years has
    ``project``, ``packages``, ``upstream_version`` at the top; the one
    anitya-schema describes (``ProjectVersionUpdated``) has ``project``,
    ``distro`` and a ``message`` object holding ``upstream_version``,
    ``packages`` and the rest.
``<prefix>.anitya.project.version.update.v2``
    ``project``, ``distro`` and ``message`` with ``upstream_versions`` (the
    versions found in this check), ``packages`` and the rest
    (anitya-schema's ``ProjectVersionUpdatedV2``).

Layouts anitya-schema describes are checked against its JSON schemas; the
older flat v1 layout has no schema there and is checked here. Either way the
fields kiskadee uses are then checked one by one (anitya-schema's schemas do
not constrain the entries of ``packages``). Anything that cannot become an
event raises ``MessageError`` saying why.
"""

import functools
import re
from typing import Any, Callable, Dict, List, Tuple

from kiskadee.core.events import SourceEvent

V1_TOPIC = "anitya.project.version.update"
V2_TOPIC = V1_TOPIC + ".v2"
DEFAULT_TOPIC_PREFIX = "org.release-monitoring.prod"
MAX_FIELD_CHARS = 255           # longest project name or version taken
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")


class MessageError(ValueError):
    """An Anitya message that cannot become a source event; the text says why."""


def topics(prefix: str = DEFAULT_TOPIC_PREFIX) -> Tuple[str, str]:
    """The v1 and v2 version-update topics under an environment prefix."""
    return f"{prefix}.{V1_TOPIC}", f"{prefix}.{V2_TOPIC}"


def prepare() -> None:
    """Import anitya-schema and compile its schemas now (a second or so) rather than on the first message."""
    for name in ("ProjectVersionUpdated", "ProjectVersionUpdatedV2"):
        _validator(name)


def normalize(topic: str, body: Any) -> SourceEvent:
    """The source event announced by one Anitya message, or MessageError saying why there is none."""
    v2 = _is_topic(topic, V2_TOPIC)
    if not (v2 or _is_topic(topic, V1_TOPIC)):
        raise MessageError(f"topic {topic!r} is not an Anitya version update")
    if not isinstance(body, dict):
        raise MessageError(f"the body is a JSON {_json_type(body)}, not an object")
    if v2:
        _check_schema("ProjectVersionUpdatedV2", body)
        message = body["message"]
        version = _newest_found(message, body["project"])
    elif "message" in body:
        _check_schema("ProjectVersionUpdated", body)
        message = body["message"]
        version = _text(message, "upstream_version", "message.")
    else:
        message = body                  # the flat layout fedmsg carried
        version = _text(message, "upstream_version")
    project = _field(body, "project", dict)
    return SourceEvent(fetcher="anitya", package=_text(project, "name", "project."), version=version,
                       meta=_meta(topic, project, message))


def _is_topic(topic: str, name: str) -> bool:
    return isinstance(topic, str) and (topic == name or topic.endswith("." + name))


def _newest_found(message: dict, project: dict) -> str:
    """The newest of the versions found: the project's latest if it is one of them, else the first."""
    found = message["upstream_versions"]
    if not found:
        raise MessageError("message.upstream_versions is empty: the message announces no version")
    latest = project.get("version")
    return _checked_text(latest if latest in found else found[0], "message.upstream_versions")


def _meta(topic: str, project: dict, message: dict) -> Dict[str, object]:
    return {
        "project_id": _field(project, "id", int, "project."),
        "backend": _text(project, "backend", "project."),
        "homepage": _optional_text(project, "homepage", "project."),
        "version_url": _optional_text(project, "version_url", "project."),
        "ecosystem": _optional_text(project, "ecosystem", "project."),
        "distributions": _distributions(message),
        "topic": topic,
    }


def _distributions(message: dict) -> List[Dict[str, str]]:
    packages = message.get("packages", [])
    if not isinstance(packages, list):
        raise MessageError(f"packages must be a list, not a JSON {_json_type(packages)}")
    mappings = []
    for index, package in enumerate(packages):
        where = f"packages[{index}]."
        if not isinstance(package, dict):
            raise MessageError(f"packages[{index}] must be an object, not a JSON {_json_type(package)}")
        mappings.append({"distro": _text(package, "distro", where),
                         "package_name": _text(package, "package_name", where)})
    return mappings


def _field(data: dict, name: str, kind: type, where: str = "") -> Any:
    if name not in data:
        raise MessageError(f"{where}{name} is missing")
    value = data[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MessageError(f"{where}{name} must be a JSON {_json_name(kind)}, not a JSON {_json_type(value)}")
    return value


def _text(data: dict, name: str, where: str = "") -> str:
    return _checked_text(_field(data, name, str, where), where + name)


def _checked_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise MessageError(f"{what} must hold strings, not a JSON {_json_type(value)}")
    if not value.strip():
        raise MessageError(f"{what} is empty")
    if len(value) > MAX_FIELD_CHARS:
        raise MessageError(f"{what} is {len(value)} characters long, over the {MAX_FIELD_CHARS} allowed")
    if not _PRINTABLE.fullmatch(value):
        raise MessageError(f"{what} {value!r} contains control characters")
    return value.strip()


def _optional_text(data: dict, name: str, where: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MessageError(f"{where}{name} must be a JSON string or null, not a JSON {_json_type(value)}")
    return value


def _check_schema(name: str, body: dict) -> None:
    """Check ``body`` against the JSON schema of anitya-schema's message class ``name``."""
    import fastjsonschema

    try:
        _validator(name)(body)
    except fastjsonschema.JsonSchemaValueException as exc:
        where = ".".join(str(part) for part in exc.path[1:]) or "the body"
        message = exc.message.replace(exc.name or "data", where, 1)
        raise MessageError(f"not a valid Anitya {name} message: {message}") from None


@functools.lru_cache(maxsize=None)
def _validator(name: str) -> Callable[[dict], Any]:
    """anitya-schema's JSON schema for message class ``name``, compiled once.

    fastjsonschema rather than jsonschema, which takes milliseconds per real
    v2 message (it walks every item of the three version lists).
    """
    import anitya_schema  # an extra's dependency: imported only when messages arrive
    import fastjsonschema

    return fastjsonschema.compile(getattr(anitya_schema, name).body_schema)


_JSON_NAMES = {dict: "object", list: "array", str: "string", int: "integer", float: "number",
               bool: "boolean", type(None): "null"}


def _json_name(kind: type) -> str:
    return _JSON_NAMES.get(kind, kind.__name__)


def _json_type(value: Any) -> str:
    return _json_name(type(value))
