"""The durable job queue: versions to analyze, kept in the database by the monitor.

A version's ``state`` is its job's state: ``seen`` (recorded, not to be
analyzed), ``queued``, ``leased`` (a runner has it until ``lease_expires``,
extended by heartbeats), ``done`` or ``failed``. A lease that runs out puts
the job back in the queue after a backoff, up to ``max_attempts``. Only the
monitor calls these functions, so the in-memory catalog of known versions
stays true to the database.
"""

import dataclasses
import datetime
import json
import logging
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple, Union

from kiskadee import versions
from kiskadee.analysis import AnalyzerRun
from kiskadee.models import Fetcher, Version
from kiskadee.store import finish_version, store_runs

log = logging.getLogger(__name__)

NAMES_PER_QUERY = 500          # package names looked up at once after inserting them

# The version rules of each origin; fetchers not listed use PEP 440 (with rpm's rules as fallback).
SCHEME_OF_FETCHER = {"debian": "debian", "anitya": "rpm"}


@dataclasses.dataclass(frozen=True)
class QueuePolicy:
    analyze: str = "newest"         # "newest": only versions newer than any analyzed or queued; "every"
    lease_seconds: float = 120.0    # a job whose runner is silent this long is re-queued
    max_attempts: int = 3
    backoff_seconds: float = 30.0   # doubled at each further attempt


class Catalog:
    """Packages and versions the monitor knows, cached to decide quickly what is new.

    Recording is the monitor's hot path (a Debian pass is some 34,000 events),
    so it uses plain SQL: building a peewee query costs thirty times more than
    SQLite takes to run it. New packages and versions are written together by
    ``flush``; until then a new package goes by a provisional (negative) id.
    """

    def __init__(self, policy: QueuePolicy):
        self.policy = policy
        self._fetchers: Dict[str, int] = {}
        self._packages: Dict[Tuple[int, str], int] = {}
        self._known: Dict[int, set] = {}            # package id -> version numbers
        self._newest: Dict[int, Optional[str]] = {}  # package id -> newest analyzed or queued
        self._new_packages: Dict[Tuple[int, str], object] = {}  # (fetcher id, name) -> created_at; not written yet
        self._pending: List[tuple] = []             # version rows not yet written

    def record(self, event: dict, now: Union[datetime.datetime, str]) -> str:
        """Record a source event; returns "queued", "seen" or "known" (nothing changed).

        New versions are written by ``flush``, which the caller runs before
        committing the transaction.
        """
        scheme = SCHEME_OF_FETCHER.get(event["fetcher"], "pep440")
        package_id = self._package_id(event["fetcher"], event["package"], scheme, now)
        number = event["version"]
        if number in self._known[package_id]:
            return "known"
        wanted = self._wanted(package_id, number, scheme)
        meta = json.dumps({"meta": event["meta"]}) if event.get("meta") else ""
        self._pending.append((package_id, number, "queued" if wanted else "seen", event.get("source_url", ""),
                              event.get("sha256", ""), meta, now, now if wanted else None))
        self._known[package_id].add(number)
        if wanted:
            self._newest[package_id] = number
        return "queued" if wanted else "seen"

    def flush(self) -> None:
        """Write the packages and versions recorded since the last flush."""
        if self._new_packages:
            ids = self._write_packages()
            self._pending = [(ids.get(row[0], row[0]),) + row[1:] for row in self._pending]
        if self._pending:
            _cursor().executemany(_param(
                "INSERT INTO version (package_id, number, state, source_url, sha256, event, created_at,"
                " queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"), self._pending)
            self._pending = []

    def _write_packages(self) -> Dict[int, int]:
        """Insert the new packages; move their cache entries to the real ids. Provisional id -> real id."""
        new, self._new_packages = self._new_packages, {}
        # OR IGNORE: a package another writer ('kiskadee analyze') added meanwhile is taken as it is.
        _cursor().executemany(_param("INSERT OR IGNORE INTO package (fetcher_id, name, created_at)"
                                     " VALUES (?, ?, ?)"), [(*key, created) for key, created in new.items()])
        real: Dict[Tuple[int, str], int] = {}
        names = defaultdict(list)
        for fetcher_id, name in new:
            names[fetcher_id].append(name)
        for fetcher_id, all_names in names.items():
            for start in range(0, len(all_names), NAMES_PER_QUERY):
                chunk = all_names[start:start + NAMES_PER_QUERY]
                rows = _sql(f"SELECT id, name FROM package WHERE fetcher_id = ? AND name IN"
                            f" ({', '.join('?' * len(chunk))})", fetcher_id, *chunk)
                real.update(((fetcher_id, name), package_id) for package_id, name in rows)
        ids = {}
        for key in new:
            provisional, package_id = self._packages[key], real[key]
            self._packages[key], ids[provisional] = package_id, package_id
            self._known.setdefault(package_id, set()).update(self._known.pop(provisional))
            self._newest[package_id] = self._newest.pop(provisional)
        return ids

    def _wanted(self, package_id: int, number: str, scheme: str) -> bool:
        if self.policy.analyze == "every":
            return True
        newest = self._newest[package_id]
        return newest is None or versions.compare(scheme, number, newest) > 0

    def _package_id(self, fetcher: str, name: str, scheme: str, now: Union[datetime.datetime, str]) -> int:
        """The package's id; the first event of a fetcher loads all it knows into the cache."""
        if fetcher not in self._fetchers:
            self._load_fetcher(fetcher, scheme)
        key = (self._fetchers[fetcher], name)
        package_id = self._packages.get(key)
        if package_id is None:
            package_id = self._packages[key] = -1 - len(self._new_packages)
            self._new_packages[key] = now
            self._known[package_id], self._newest[package_id] = set(), None
        return package_id

    def _load_fetcher(self, fetcher: str, scheme: str) -> None:
        fetcher_id = self._fetchers[fetcher] = Fetcher.get_or_create(name=fetcher)[0].id
        for package_id, name in _sql("SELECT id, name FROM package WHERE fetcher_id = ?", fetcher_id):
            self._packages[(fetcher_id, name)] = package_id
            self._known[package_id] = set()
        tried = defaultdict(list)
        rows = _sql("SELECT v.package_id, v.number, v.state FROM version v JOIN package p"
                    " ON p.id = v.package_id WHERE p.fetcher_id = ?", fetcher_id)
        for package_id, number, state in rows:
            self._known[package_id].add(number)
            if state != "seen":
                tried[package_id].append(number)
        for package_id in self._known:
            self._newest.setdefault(package_id, None)
        for package_id, numbers in tried.items():
            self._newest[package_id] = versions.newest(scheme, numbers)


def _cursor():
    return Version._meta.database.cursor()


def _param(statement: str) -> str:
    """``statement`` with the database driver's parameter mark."""
    return statement.replace("?", Version._meta.database.param)


def _sql(statement: str, *params):
    cursor = _cursor()
    cursor.execute(_param(statement), params)
    return cursor


def lease(runner: str, policy: QueuePolicy, now: datetime.datetime) -> Optional[Version]:
    """Give the oldest queued job that is due to ``runner``; None if there is none."""
    job = (Version.select().where((Version.state == "queued")
                                  & (Version.not_before.is_null() | (Version.not_before <= now)))
           .order_by(Version.queued_at, Version.id).first())
    if job is None:
        return None
    job.state, job.leased_by, job.attempts = "leased", runner, job.attempts + 1
    job.lease_expires = now + datetime.timedelta(seconds=policy.lease_seconds)
    job.started_at = now
    job.save()
    return job


def release(job: Version) -> None:
    """Put a leased job back at once, without counting the attempt (it never reached a runner)."""
    job.state, job.leased_by, job.lease_expires = "queued", "", None
    job.attempts = max(0, job.attempts - 1)
    job.save()


def heartbeat(job_id: int, runner: str, policy: QueuePolicy, now: datetime.datetime) -> bool:
    """Extend the lease of ``job_id`` held by ``runner``; False if it no longer holds it."""
    updated = (Version.update(lease_expires=now + datetime.timedelta(seconds=policy.lease_seconds))
               .where((Version.id == job_id) & (Version.state == "leased") & (Version.leased_by == runner))
               .execute())
    return bool(updated)


def expire_leases(policy: QueuePolicy, now: datetime.datetime) -> List[Version]:
    """Re-queue (with backoff) or fail the jobs whose runner went silent; returns them."""
    expired = list(Version.select().where((Version.state == "leased") & (Version.lease_expires < now)))
    for job in expired:
        reason = f"runner {job.leased_by} went silent (attempt {job.attempts})"
        requeue(job, reason, policy, now)
    return expired


def requeue(job: Version, reason: str, policy: QueuePolicy, now: datetime.datetime) -> None:
    """Put a job back in the queue after a backoff, or fail it after its last attempt."""
    log.warning("%s %s: %s", job.package.name, job.number, reason)
    job.error, job.leased_by, job.lease_expires = reason, "", None
    if job.attempts >= policy.max_attempts:
        job.state, job.finished_at = "failed", now
    else:
        delay = policy.backoff_seconds * 2 ** max(0, job.attempts - 1)
        job.state, job.not_before = "queued", now + datetime.timedelta(seconds=delay)
    job.save()


def complete(job_id: int, fields: dict, runs: Sequence[AnalyzerRun], policy: QueuePolicy,
             now: datetime.datetime) -> str:
    """Store a runner's result for a job; returns what happened ("stored", "requeued", "failed",
    "unresolved" (the source could not be located; the error says why), "duplicate").

    A result for a job that is already done or failed (a late runner whose lease
    had run out) is acknowledged but not stored again. The caller wraps this in
    one transaction.
    """
    job = Version.get_or_none(Version.id == job_id)
    if job is None or job.state in ("done", "failed", "unresolved"):
        return "duplicate"
    if fields.get("error"):
        if fields.get("transient"):
            requeue(job, fields["error"], policy, now)
            return "requeued" if job.state == "queued" else "failed"
        state = "unresolved" if fields.get("unresolved") else "failed"
        job.state, job.error, job.finished_at = state, fields["error"], now
        job.save()
        return state
    job.source_url = fields.get("source_url") or job.source_url
    job.sha256 = fields.get("sha256") or job.sha256
    store_runs(job, runs, started_at=job.started_at)
    finish_version(job, runs, now)
    return "stored"
