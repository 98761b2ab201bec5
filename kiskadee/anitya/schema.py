"""kiskadee's own messages on fedora-messaging: the schema of what ``kiskadee publish`` sends.

Two message classes, registered under the ``fedora.messages`` entry point
group (``setup.py``) so a consumer's fedora-messaging finds them by the
``fedora_messaging_schema`` header every message carries:

=================================  ==============================  ==================================
schema (entry point)               class                           topic (after the configured prefix)
=================================  ==============================  ==================================
``kiskadee.analysis.complete.v1``  ``AnalysisCompleteV1``          ``kiskadee.analysis.complete``
``kiskadee.analysis.failed.v1``    ``AnalysisFailedV1``            ``kiskadee.analysis.failed``
=================================  ==============================  ==================================

Both share one body, ``BODY_SCHEMA`` (JSON Schema draft 4, as Fedora's
publishers write theirs; ``kiskadee.store.outbox`` builds it and says what each
field means). A message is published at least once: after a crash of the
publisher the same message may come again with the same ``id``, which
consumers use to deduplicate.

This module imports nothing of kiskadee but itself, so a consumer needs only
kiskadee installed (for the entry points) and fedora-messaging.
"""

from typing import List, Optional

from fedora_messaging import message

COMPLETE_TOPIC = "kiskadee.analysis.complete"
FAILED_TOPIC = "kiskadee.analysis.failed"

_COUNT = {"type": "integer", "minimum": 0}
_COUNT_OR_NULL = {"anyOf": [_COUNT, {"type": "null"}]}
_TEXT = {"type": "string"}

ANALYSIS_SCHEMA = {
    "type": "object",
    "description": "One analyzer's run over the version",
    "required": ["analyzer", "tool_version", "status", "findings", "by_severity", "duration", "error",
                 "new", "fixed"],
    "properties": {
        "analyzer": _TEXT,
        "tool_version": _TEXT,
        "status": {"type": "string", "enum": ["ok", "failed", "timeout", "skipped"]},
        "findings": _COUNT,
        "by_severity": {"type": "object", "additionalProperties": _COUNT,
                        "description": "findings by severity: high, medium, low, info"},
        "duration": {"type": "number", "minimum": 0},
        "error": _TEXT,
        "new": dict(_COUNT_OR_NULL, description="findings the previous version did not have; "
                                                "null when not compared"),
        "fixed": dict(_COUNT_OR_NULL, description="findings of the previous version this one no longer has; "
                                                  "null when not compared"),
    },
}

BODY_SCHEMA = {
    "id": "urn:kiskadee:message:analysis:v1",
    "$schema": "http://json-schema.org/draft-04/schema#",
    "description": "A version's analysis by kiskadee was stored, or the version could not be analyzed",
    "type": "object",
    "required": ["schema_version", "fetcher", "package", "version", "previous_version", "state", "error",
                 "analyses", "findings", "new", "fixed", "report", "finished_at"],
    "properties": {
        "schema_version": {"type": "integer", "enum": [1]},
        "fetcher": dict(_TEXT, description="where the version came from: debian, anitya, directory, local"),
        "package": dict(_TEXT, description="the package's name as its fetcher knows it"),
        "version": _TEXT,
        "previous_version": {"anyOf": [_TEXT, {"type": "null"}],
                             "description": "the analyzed version new and fixed are counted against"},
        "state": {"type": "string", "enum": ["done", "failed", "unresolved"]},
        "error": _TEXT,
        "analyses": {"type": "array", "items": ANALYSIS_SCHEMA},
        "findings": _COUNT,
        "new": _COUNT_OR_NULL,
        "fixed": _COUNT_OR_NULL,
        "report": dict(_TEXT, description="the version's page, relative to the HTML report's directory"),
        "finished_at": dict(_TEXT, description="UTC, ISO 8601"),
    },
}


class AnalysisMessage(message.Message):
    """What both of kiskadee's messages share: the body, its accessors and the human-readable forms."""

    body_schema = BODY_SCHEMA

    @property
    def app_name(self) -> str:
        return "kiskadee"

    @property
    def packages(self) -> List[str]:
        """The package, by the name its fetcher knows it (a Debian source name, an Anitya project)."""
        return [self.body["package"]]

    @property
    def url(self) -> Optional[str]:
        """None: the report is served wherever a site puts it; ``report`` is the page's relative path."""
        return None

    @property
    def report(self) -> str:
        return self.body["report"]

    def _analyses_text(self) -> str:
        lines = []
        for run in self.body["analyses"]:
            changes = "" if run["new"] is None else f", {run['new']} new, {run['fixed']} fixed"
            error = f": {run['error']}" if run["error"] else ""
            lines.append(f"  {run['analyzer']} {run['tool_version']}: {run['status']}, "
                         f"{run['findings']} findings{changes}{error}")
        return "\n".join(lines)

    def __str__(self) -> str:
        body = self.body
        parts = [self.summary, ""]
        if body["previous_version"]:
            parts.append(f"Compared with {body['previous_version']}.")
        if body["analyses"]:
            parts += ["Analyzers:", self._analyses_text()]
        parts.append(f"Report: {body['report']}")
        return "\n".join(parts) + "\n"


class AnalysisCompleteV1(AnalysisMessage):
    """A version's analyses are stored (``state`` done; some analyzers may have failed: see ``analyses``)."""

    topic = COMPLETE_TOPIC
    severity = message.INFO

    @property
    def summary(self) -> str:
        body = self.body
        text = f"kiskadee analyzed {body['package']} {body['version']} ({body['fetcher']}): {body['findings']} findings"
        if body["new"] is not None:
            text += f", {body['new']} new and {body['fixed']} fixed since {body['previous_version']}"
        return text


class AnalysisFailedV1(AnalysisMessage):
    """The version could not be analyzed: every analyzer failed, its source was refused or not found."""

    topic = FAILED_TOPIC
    severity = message.WARNING

    @property
    def summary(self) -> str:
        body = self.body
        reason = (body["error"].splitlines() or [body["state"]])[0][:200]
        return f"kiskadee could not analyze {body['package']} {body['version']} ({body['fetcher']}): {reason}"


# The message class for each topic the outbox holds (kiskadee.store.outbox.TOPICS).
CLASSES = {COMPLETE_TOPIC: AnalysisCompleteV1, FAILED_TOPIC: AnalysisFailedV1}
