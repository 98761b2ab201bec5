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
from typing import Dict, List, Optional, Sequence, Tuple

from kiskadee import versions
from kiskadee.analysis import AnalyzerRun
from kiskadee.models import Fetcher, Package, Version
from kiskadee.store import finish_version, store_runs

log = logging.getLogger(__name__)

# The version rules of each origin; fetchers not listed use PEP 440 (with rpm's rules as fallback).
SCHEME_OF_FETCHER = {"debian": "debian", "anitya": "rpm"}


@dataclasses.dataclass(frozen=True)
class QueuePolicy:
    analyze: str = "newest"         # "newest": only versions newer than any analyzed or queued; "every"
    lease_seconds: float = 120.0    # a job whose runner is silent this long is re-queued
    max_attempts: int = 3
    backoff_seconds: float = 30.0   # doubled at each further attempt


class Catalog:
    """Packages and versions the monitor knows, cached to decide quickly what is new."""

    def __init__(self, policy: QueuePolicy):
        self.policy = policy
        self._fetchers: Dict[str, int] = {}
        self._packages: Dict[Tuple[int, str], int] = {}
        self._known: Dict[int, set] = {}            # package id -> version numbers
        self._newest: Dict[int, Optional[str]] = {}  # package id -> newest analyzed or queued

    def record(self, event: dict, now: datetime.datetime) -> str:
        """Record a source event; returns "queued", "seen" or "known" (nothing changed)."""
        scheme = SCHEME_OF_FETCHER.get(event["fetcher"], "pep440")
        package_id = self._package_id(event["fetcher"], event["package"], scheme)
        number = event["version"]
        if number in self._known[package_id]:
            return "known"
        wanted = self._wanted(package_id, number, scheme)
        Version.insert(
            package=package_id, number=number, state="queued" if wanted else "seen",
            source_url=event.get("source_url", ""), sha256=event.get("sha256", ""),
            event=json.dumps(event), created_at=now, queued_at=now if wanted else None,
        ).execute()
        self._known[package_id].add(number)
        if wanted:
            self._newest[package_id] = number
        return "queued" if wanted else "seen"

    def _wanted(self, package_id: int, number: str, scheme: str) -> bool:
        if self.policy.analyze == "every":
            return True
        newest = self._newest[package_id]
        return newest is None or versions.compare(scheme, number, newest) > 0

    def _package_id(self, fetcher: str, name: str, scheme: str) -> int:
        """The package's id, with its known versions loaded into the cache."""
        if fetcher not in self._fetchers:
            self._fetchers[fetcher] = Fetcher.get_or_create(name=fetcher)[0].id
        key = (self._fetchers[fetcher], name)
        if key not in self._packages:
            package, created = Package.get_or_create(fetcher=key[0], name=name)
            self._packages[key] = package.id
            self._load_versions(package.id, scheme, created)
        return self._packages[key]

    def _load_versions(self, package_id: int, scheme: str, new: bool) -> None:
        rows = [] if new else Version.select(Version.number, Version.state).where(Version.package == package_id)
        states = {row.number: row.state for row in rows}
        tried = [number for number, state in states.items() if state != "seen"]
        self._known[package_id] = set(states)
        self._newest[package_id] = versions.newest(scheme, tried) if tried else None


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
    """Store a runner's result for a job; returns what happened ("stored", "requeued", "failed", "duplicate").

    A result for a job that is already done or failed (a late runner whose lease
    had run out) is acknowledged but not stored again. The caller wraps this in
    one transaction.
    """
    job = Version.get_or_none(Version.id == job_id)
    if job is None or job.state in ("done", "failed"):
        return "duplicate"
    if fields.get("error"):
        if fields.get("transient"):
            requeue(job, fields["error"], policy, now)
            return "requeued" if job.state == "queued" else "failed"
        job.state, job.error, job.finished_at = "failed", fields["error"], now
        job.save()
        return "failed"
    job.source_url = fields.get("source_url") or job.source_url
    job.sha256 = fields.get("sha256") or job.sha256
    store_runs(job, runs, started_at=job.started_at)
    finish_version(job, runs, now)
    return "stored"
