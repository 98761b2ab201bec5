"""The durable job queue: versions to analyze, kept in the database by the monitor.

A version's ``state`` is its job's state: ``seen`` (recorded, not to be
analyzed), ``queued``, ``leased`` (a runner has it until ``lease_expires``,
extended by heartbeats), ``done`` or ``failed``. A lease that runs out puts
the job back in the queue after a backoff, up to ``max_attempts``. Only the
monitor calls these functions, so its catalog of known versions
(``kiskadee.store.catalog``) stays true to the database.
"""

import dataclasses
import datetime
import logging
from typing import List, Optional, Sequence

from kiskadee.core.runs import AnalyzerRun
from kiskadee.store.models import Version
from kiskadee.store.results import finish_version, store_runs

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class QueuePolicy:
    analyze: str = "newest"         # "newest": only versions newer than any analyzed or queued; "every"
    lease_seconds: float = 120.0    # a job whose runner is silent this long is re-queued
    max_attempts: int = 3
    backoff_seconds: float = 30.0   # doubled at each further attempt


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
