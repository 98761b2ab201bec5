"""What the service is doing, read from the database: for ``kiskadee status`` and the
live status line of ``kiskadee run``, so the questions are asked in one place.

Plain reads through the models, bound by ``open_database``. Times are naive
UTC, as stored; ``now`` is always passed in.
"""

import datetime
from typing import Dict, List

import peewee

from kiskadee.core.states import COULD_NOT_ANALYZE, VersionState
from kiskadee.store.models import Package, Runner, Version

STATES = tuple(state.value for state in VersionState)      # plain strings: keys of counts read back from SQLite
FAILED_STATES = tuple(state.value for state in COULD_NOT_ANALYZE)
GONE_AFTER = 60.0           # seconds of silence after which a runner is shown as gone
RECENT_FAILURES = 10


def version_counts() -> Dict[str, int]:
    """How many versions are in each state; every known state is present, zero or not."""
    counts = {state: 0 for state in STATES}
    query = Version.select(Version.state, peewee.fn.COUNT(Version.id)).group_by(Version.state)
    counts.update(dict(query.tuples()))
    return counts


def runners(now: datetime.datetime, gone_after: float = GONE_AFTER) -> List[Dict]:
    """Every runner the monitor heard of: state (``gone`` when silent too long) and what it does."""
    horizon = now - datetime.timedelta(seconds=gone_after)
    query = (Runner.select(Runner, Version, Package)
             .join(Version, peewee.JOIN.LEFT_OUTER).join(Package, peewee.JOIN.LEFT_OUTER)
             .order_by(Runner.name))
    rows = []
    for runner in query:
        gone = runner.state == "gone" or runner.last_seen < horizon
        version = runner.version
        rows.append({
            "name": runner.name,
            "state": "gone" if gone else runner.state,
            "package": version.package.name if version else "",
            "version": version.number if version else "",
            "activity": runner.activity,
            "last_seen": runner.last_seen,
            "seconds_ago": round(max(0.0, (now - runner.last_seen).total_seconds()), 1),
        })
    return rows


def running_jobs() -> List[Dict]:
    """The leased versions, oldest lease first, with what their runner last said it was doing."""
    activity = dict(Runner.select(Runner.name, Runner.activity).tuples())
    query = (Version.select(Version, Package).join(Package)
             .where(Version.state == VersionState.LEASED).order_by(Version.started_at, Version.id))
    return [{"package": v.package.name, "version": v.number, "runner": v.leased_by,
             "activity": activity.get(v.leased_by, "")} for v in query]


def recent_failures(limit: int = RECENT_FAILURES) -> List[Dict]:
    """The latest failed (or unresolved) versions, most recently finished first."""
    query = (Version.select(Version, Package).join(Package)
             .where(Version.state.in_(FAILED_STATES))
             .order_by(Version.finished_at.desc(), Version.id.desc()).limit(limit))
    return [{"package": v.package.name, "version": v.number, "state": v.state,
             "error": v.error, "finished_at": v.finished_at} for v in query]


def queue(now: datetime.datetime) -> Dict:
    """Queued versions split into those due now and those waiting on a backoff."""
    queued = Version.select().where(Version.state == VersionState.QUEUED)
    waiting = queued.where(Version.not_before.is_null(False) & (Version.not_before > now))
    next_due = waiting.select(peewee.fn.MIN(Version.not_before)).scalar()
    count = waiting.count()
    return {"due": queued.count() - count, "waiting": count, "next_due": next_due}


def collect(now: datetime.datetime) -> Dict:
    """Everything ``kiskadee status`` reports, as plain data (times still datetimes)."""
    return {
        "versions": version_counts(),
        "queue": queue(now),
        "runners": runners(now),
        "failures": recent_failures(),
    }
