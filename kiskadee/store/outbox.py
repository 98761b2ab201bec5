"""The outbox: messages for the message bus, written with the results they announce.

When a version's analysis is stored, or the version fails, ``kiskadee.store.queue``
calls ``announce`` in the same transaction: the message is stored exactly when
the results are, and a monitor that crashes leaves neither. ``kiskadee publish``
(``kiskadee.anitya.publisher``) reads the outbox in id order, sends each message
with publisher confirms and deletes what the broker confirmed. Each message gets
a random ``message_id`` when written; a message sent again (the publisher was
killed between the broker's confirm and the delete) keeps it, so consumers can
tell a repeat from a new event.

The body is plain JSON here; ``kiskadee.anitya.schema`` holds the message
classes and the JSON schema it follows (``version`` 1):

- ``fetcher``, ``package``, ``version``: which version; ``state``: done,
  failed or unresolved; ``error``: why it failed, '' when it did not;
- ``previous_version``: the analyzed version it is compared with, or null;
- ``analyses``: per analyzer its tool version, status (ok, failed, timeout,
  skipped), findings, findings by severity, duration, error, and ``new`` and
  ``fixed``: null where the analyzer was not compared (no previous version,
  or it did not complete on both);
- ``findings``, ``new``, ``fixed``: the sums (``new`` and ``fixed`` null when
  no analyzer was compared);
- ``report``: the version's page in the HTML report, relative to the report
  directory: ``FETCHER/PACKAGE/VERSION/index.html``, each name written as
  the report writes it (``report_path``), a valid relative URL too;
- ``finished_at``: when the version was stored or failed (UTC, ISO 8601).

New and fixed are counted by the ``new_finding`` and ``fixed_finding`` views
(fingerprints, per file coverage), as ``sqlite3`` users read them; findings
that only moved between files (``kiskadee diff``'s second pass) count there as
one new and one fixed.
"""

import datetime
import json
import uuid
from typing import Dict, Iterable, List, Optional, Tuple

from kiskadee.core import reportpaths
from kiskadee.core.states import COMPLETED, VersionState
from kiskadee.store import sql
from kiskadee.store.models import Analysis, Analyzer, OutboxMessage, Version

SCHEMA_VERSION = 1
COMPLETE = "kiskadee.analysis.complete"     # a version's analyses are stored (some may have failed)
FAILED = "kiskadee.analysis.failed"         # the version could not be analyzed (failed, unresolved)
TOPICS = (COMPLETE, FAILED)

_BY_ANALYZER = ("SELECT analyzer, COUNT(*) FROM {view} WHERE fetcher = ? AND package = ? AND version = ?"
                " GROUP BY analyzer")
_BY_SEVERITY = "SELECT severity, COUNT(*) FROM finding WHERE analysis_id = ? GROUP BY severity"


def announce(version: Version, now: datetime.datetime) -> OutboxMessage:
    """Write the message announcing ``version``'s outcome (done: complete, else failed), in the caller's
    transaction."""
    topic = COMPLETE if version.state == VersionState.DONE else FAILED
    return OutboxMessage.create(message_id=str(uuid.uuid4()), topic=topic,
                                body=json.dumps(body_of(version, now), sort_keys=True), created_at=now)


def body_of(version: Version, now: datetime.datetime) -> Dict:
    """The message body announcing ``version``'s stored analyses or its failure."""
    package = version.package
    fetcher = package.fetcher.name
    previous = Version.get_or_none(Version.id == version.previous_id) if version.previous_id else None
    key = (fetcher, package.name, version.number)
    new, fixed = _counts("new_finding", key), _counts("fixed_finding", key)
    compared = _compared(version, previous)
    analyses = [_analysis(row, compared, new, fixed) for row in _analyses(version)]
    counted = [a for a in analyses if a["new"] is not None]
    return {
        "schema_version": SCHEMA_VERSION,
        "fetcher": fetcher,
        "package": package.name,
        "version": version.number,
        "previous_version": previous.number if previous else None,
        "state": str(version.state),
        "error": version.error,
        "analyses": analyses,
        "findings": sum(a["findings"] for a in analyses),
        "new": sum(a["new"] for a in counted) if counted else None,
        "fixed": sum(a["fixed"] for a in counted) if counted else None,
        "report": report_path(fetcher, package.name, version.number),
        "finished_at": (version.finished_at or now).replace(microsecond=0).isoformat() + "Z",
    }


def report_path(fetcher: str, package: str, version: str) -> str:
    """The version's page in the HTML report, relative to the report directory (a relative URL as well)."""
    return reportpaths.version_page(fetcher, package, version)


def _analyses(version: Version) -> List[Tuple[str, str, str, int, float, str, int]]:
    return list(Analysis.select(Analyzer.name, Analyzer.version, Analysis.status, Analysis.finding_count,
                                Analysis.duration, Analysis.error, Analysis.id)
                .join(Analyzer).where(Analysis.version == version.id).order_by(Analyzer.name).tuples())


def _analysis(row: tuple, compared: frozenset, new: Dict[str, int], fixed: Dict[str, int]) -> Dict:
    name, tool_version, status, findings, duration, error, analysis_id = row
    return {
        "analyzer": name, "tool_version": tool_version, "status": status, "findings": findings,
        "by_severity": dict(sql.execute(_BY_SEVERITY, analysis_id).fetchall()),
        "duration": round(duration, 3), "error": error,
        "new": new.get(name, 0) if name in compared else None,
        "fixed": fixed.get(name, 0) if name in compared else None,
    }


def _compared(version: Version, previous: Optional[Version]) -> frozenset:
    """The analyzers that completed on both ``version`` and ``previous``: those the views compare."""
    if previous is None:
        return frozenset()

    def completed(v: Version) -> set:
        return {name for name, status in Analysis.select(Analyzer.name, Analysis.status).join(Analyzer)
                .where(Analysis.version == v.id).tuples() if status in COMPLETED}
    return frozenset(completed(version) & completed(previous))


def _counts(view: str, key: Tuple[str, str, str]) -> Dict[str, int]:
    return dict(sql.execute(_BY_ANALYZER.format(view=view), *key).fetchall())


def pending(limit: int) -> List[OutboxMessage]:
    """The oldest ``limit`` messages still to send, oldest first (those marked undeliverable left out)."""
    return list(OutboxMessage.select().where(OutboxMessage.error == "").order_by(OutboxMessage.id).limit(limit))


def delete(ids: Iterable[int]) -> int:
    """Delete the messages with these row ids (the broker confirmed them); how many."""
    ids = list(ids)
    return OutboxMessage.delete().where(OutboxMessage.id.in_(ids)).execute() if ids else 0


def set_aside(row_id: int, reason: str) -> None:
    """Keep a message the bus can never take, with the reason, and skip it from now on."""
    OutboxMessage.update(error=reason or "undeliverable").where(OutboxMessage.id == row_id).execute()


def waiting() -> Tuple[int, int]:
    """How many messages wait to be sent, and how many were set aside as undeliverable."""
    rows = dict(sql.execute("SELECT error = '', COUNT(*) FROM outbox GROUP BY error = ''").fetchall())
    return rows.get(1, 0), rows.get(0, 0)
