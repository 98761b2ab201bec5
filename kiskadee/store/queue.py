"""The durable job queue and the one module that changes a version's state.

A version's ``state`` is its job's state (``kiskadee.core.states.VersionState``):
``seen`` (recorded, not to be analyzed), ``queued``, ``leased`` (a runner has
it until ``lease_expires``, extended by heartbeats), ``done``, ``failed`` or
``unresolved``. A lease that runs out puts the job back in the queue after a
backoff, up to ``max_attempts``.

Leases are authority: ``lease`` issues a random token with the job, and a
heartbeat, result or error counts only from the runner that holds the job's
current lease with that token (``LeaseRefused`` otherwise, saying why). The
token stays on the version once the job is finished, so the holder's replay
of the same result is a "duplicate", never stored twice. Every state change goes through ``_move``
or ``retry`` here, along ``states.TRANSITIONS``; any other is a bug and raises
``states.ForbiddenTransition``.

The monitor calls the queue functions, so its catalog of known versions
(``kiskadee.store.catalog``) stays true to the database; ``record_analysis``
(``kiskadee analyze``) and ``retry`` (``kiskadee retry``) are one-shot commands
that write next to it.

With ``QueuePolicy.publish`` (``[publish] enabled``), every version that is
stored or fails is announced in the outbox (``kiskadee.store.outbox``) in the
same transaction, for ``kiskadee publish`` to send.
"""

import dataclasses
import datetime
import logging
import secrets
from typing import List, Optional, Sequence

import peewee

from kiskadee.core.ranking import Priors
from kiskadee.core.runs import AnalyzerRun
from kiskadee.core.states import FAILURES, IN_QUEUE, RETRYABLE, ForbiddenTransition, VersionState, check_transition
from kiskadee.store import outbox
from kiskadee.store.db import retry_when_busy, write_transaction
from kiskadee.store.models import Fetcher, Package, Version, utcnow
from kiskadee.store.results import VersionKey, get_version, store_runs

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class QueuePolicy:
    analyze: str = "newest"         # "newest": only versions newer than any analyzed or queued; "every"
    lease_seconds: float = 120.0    # a job whose runner is silent this long is re-queued
    max_attempts: int = 3
    backoff_seconds: float = 30.0   # doubled at each further attempt
    publish: bool = False           # announce each stored or failed version in the outbox ('kiskadee publish')


class LeaseRefused(Exception):
    """A heartbeat, result or error from a runner that does not hold the job's lease; the text says why."""


def _move(job: Version, state: VersionState) -> None:
    """Set ``job``'s state, which the caller saves; ForbiddenTransition if the table forbids it."""
    check_transition(job.state, state)
    job.state = state.value


def _due(now: datetime.datetime) -> peewee.Expression:
    return (Version.state == VersionState.QUEUED) & (Version.not_before.is_null() | (Version.not_before <= now))


def _jobs() -> peewee.ModelSelect:
    """Versions with their package and fetcher in the same row: the job message, the lineage and the
    outbox read both, and would otherwise load each with a query of its own."""
    return Version.select(Version, Package, Fetcher).join(Package).join(Fetcher)


def any_due(now: datetime.datetime) -> bool:
    """Whether a queued job is due at ``now``: a read without the write lock, before leasing."""
    return Version.select().where(_due(now)).exists()


def lease(runner: str, policy: QueuePolicy, now: datetime.datetime) -> Optional[Version]:
    """Give the oldest queued job that is due to ``runner``; None if there is none."""
    job = _jobs().where(_due(now)).order_by(Version.queued_at, Version.id).first()
    if job is None:
        return None
    _move(job, VersionState.LEASED)
    job.leased_by, job.attempts = runner, job.attempts + 1
    job.lease_token = secrets.token_hex(16)
    job.lease_expires = now + datetime.timedelta(seconds=policy.lease_seconds)
    job.started_at = now
    job.save()
    return job


def release(job: Version) -> None:
    """Put a leased job back at once, without counting the attempt (it never reached a runner)."""
    _move(job, VersionState.QUEUED)
    job.leased_by, job.lease_expires, job.lease_token = "", None, ""
    job.attempts = max(0, job.attempts - 1)
    job.save()


def holder(job_id: int, runner: str, token: str, job: Optional[Version] = None) -> Version:
    """The job ``runner`` holds the current lease of with ``token``; LeaseRefused saying why if not.
    ``job``: the job's row, if the caller has read it already."""
    job = job or _jobs().where(Version.id == job_id).first()
    if job is None:
        raise LeaseRefused(f"job {job_id} does not exist")
    if job.state != VersionState.LEASED:
        raise LeaseRefused(f"job {job_id} is {job.state}, not leased")
    if job.leased_by != runner:
        raise LeaseRefused(f"job {job_id} is leased to another runner")
    if not _token_matches(job, token):
        raise LeaseRefused(f"job {job_id}: that is not the lease token the monitor issued")
    return job


def _token_matches(job: Version, token: str) -> bool:
    """Whether ``token`` is the lease token the monitor issued with ``job`` (never an empty one)."""
    return bool(token) and secrets.compare_digest(job.lease_token.encode(), token.encode())


def hand_back(job_id: int, runner: str, token: str) -> Version:
    """The job ``runner`` holds with ``token`` back in the queue at once, its attempt not counted: the
    runner stopped before it could finish (LeaseRefused if it does not hold that lease)."""
    job = holder(job_id, runner, token)
    release(job)
    return job


def heartbeat(job_id: int, runner: str, token: str, policy: QueuePolicy, now: datetime.datetime) -> None:
    """Extend the lease of ``job_id`` held by ``runner`` with ``token``; LeaseRefused if it does not hold it."""
    job = holder(job_id, runner, token)
    job.lease_expires = now + datetime.timedelta(seconds=policy.lease_seconds)
    job.save(only=[Version.lease_expires])


def fail(job: Version, reason: str, now: datetime.datetime, publish: bool = False) -> None:
    """Fail a leased job for good with ``reason``: its result could not be taken or its job not sent;
    announced in the outbox when ``publish``."""
    log.warning("%s %s failed: %s", job.package.name, job.number, reason)
    _move(job, VersionState.FAILED)
    job.error, job.lease_expires, job.finished_at = reason, None, now
    job.save()
    _announce(job, publish, now)


def expire_leases(policy: QueuePolicy, now: datetime.datetime) -> List[Version]:
    """Re-queue (with backoff) or fail the jobs whose runner went silent; returns them."""
    expired = list(Version.select().where((Version.state == VersionState.LEASED) & (Version.lease_expires < now)))
    for job in expired:
        reason = f"runner {job.leased_by} went silent (attempt {job.attempts})"
        requeue(job, reason, policy, now)
    return expired


def requeue(job: Version, reason: str, policy: QueuePolicy, now: datetime.datetime) -> None:
    """Put a job back in the queue after a backoff, or fail it after its last attempt."""
    log.warning("%s %s: %s", job.package.name, job.number, reason)
    job.error, job.leased_by, job.lease_expires, job.lease_token = reason, "", None, ""
    if job.attempts >= policy.max_attempts:
        _move(job, VersionState.FAILED)
        job.finished_at = now
    else:
        delay = policy.backoff_seconds * 2 ** max(0, job.attempts - 1)
        _move(job, VersionState.QUEUED)
        job.not_before = now + datetime.timedelta(seconds=delay)
    job.save()
    if job.state == VersionState.FAILED:
        _announce(job, policy.publish, now)


def complete(job_id: int, fields: dict, runs: Sequence[AnalyzerRun], policy: QueuePolicy,
             now: datetime.datetime, table: Optional[Priors] = None) -> str:
    """Store a runner's result for a job; returns what happened ("stored", "requeued", "failed",
    "unresolved" (the source could not be located; the error says why), "duplicate").

    ``fields`` are the result message's: its ``runner`` must hold the job's lease
    with the token in ``lease``, else LeaseRefused. The holder's result again for
    a job it finished is a "duplicate", acknowledged but not stored. The findings
    are ranked with the priors ``table`` (the shipped ones when None). The caller
    wraps this in one transaction.
    """
    runner, token = fields.get("runner", ""), fields.get("lease", "")
    job = _jobs().where(Version.id == job_id).first()
    if job is not None and job.state not in IN_QUEUE and job.leased_by == runner and _token_matches(job, token):
        return "duplicate"
    job = holder(job_id, runner, token, job)
    if fields.get("error"):
        if fields.get("transient"):
            requeue(job, fields["error"], policy, now)
            return "requeued" if job.state == VersionState.QUEUED else "failed"
        _move(job, VersionState.UNRESOLVED if fields.get("unresolved") else VersionState.FAILED)
        job.error, job.finished_at = fields["error"], now
        job.save()
        _announce(job, policy.publish, now)
        return job.state
    job.source_url = fields.get("source_url") or job.source_url
    job.sha256 = fields.get("sha256") or job.sha256
    store_runs(job, runs, started_at=job.started_at, table=table)
    _finish(job, runs, now)
    _announce(job, policy.publish, now)
    return "stored"


def _finish(version: Version, runs: Sequence[AnalyzerRun], now: datetime.datetime) -> None:
    """Mark a version analyzed: failed only when every analyzer failed or timed out."""
    failed = [run for run in runs if run.status in FAILURES]
    _move(version, VersionState.FAILED if failed and len(failed) == len(runs) else VersionState.DONE)
    version.error = "; ".join(f"{run.analyzer}: {run.error}" for run in failed)
    version.lease_expires, version.finished_at = None, now     # leased_by stays: who analyzed it
    version.save()


def record_analysis(key: VersionKey, runs: Sequence[AnalyzerRun], *, source_url: str = "",
                    sha256: str = "", db: peewee.Database, table: Optional[Priors] = None,
                    publish: bool = False) -> Version:
    """Store a complete one-shot analysis of ``key`` (``kiskadee analyze``) in one transaction,
    tried again with backoff while the monitor keeps the database busy: the analysis took minutes.
    Announced in the outbox when ``publish``."""
    def write() -> Version:
        with write_transaction(db):
            version = get_version(key)
            store_runs(version, runs, table=table)
            version.source_url, version.sha256 = source_url, sha256
            now = utcnow()
            _finish(version, runs, now)
            _announce(version, publish, now)
        return version
    return retry_when_busy(write)


def _announce(version: Version, publish: bool, now: datetime.datetime) -> None:
    """Write the message announcing ``version``'s outcome to the outbox, in the caller's transaction."""
    if publish:
        outbox.announce(version, now)


def retry(versions: peewee.Query, now: datetime.datetime) -> int:
    """Put every version ``versions`` selects back in the queue as new (attempts, backoff,
    lease, error and times reset), in one UPDATE; how many.

    ForbiddenTransition if one is not ``states.RETRYABLE``: resetting a job in the
    queue would take its lease from the runner that holds it.
    """
    ids = versions.select(Version.id).order_by()
    for (state,) in Version.select(Version.state).where(Version.id.in_(ids)).distinct().tuples():
        if state not in RETRYABLE:
            raise ForbiddenTransition(f"a {state} version cannot be re-queued as new")
    return (Version.update(state=VersionState.QUEUED.value, attempts=0, not_before=None, leased_by="",
                           lease_expires=None, lease_token="", error="", queued_at=now, started_at=None, finished_at=None)
            .where(Version.id.in_(ids)).execute())
