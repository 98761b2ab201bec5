"""Putting versions back in the queue: ``kiskadee retry``.

A version whose job failed (after its last attempt) or whose source could
not be located stays so until someone asks again; so does an analyzed one,
which an operator may want analyzed anew after enabling an analyzer. This
puts such versions back in the queue with their attempts reset; the next
runner to ask takes them, and their new results replace the old ones
analyzer by analyzer. Versions that are queued or leased are in the queue
already and left alone.

It writes to the database directly, as ``kiskadee waive`` does, in one
transaction holding the write lock from its start (``store.db.write_transaction``):
it waits for the monitor's transaction, which reads the queue from the
database whenever a runner asks for work, and exits 5 if the lock stays
taken past the busy timeout. It goes through ``kiskadee.store.queue.retry``
like every change of a version's state.
"""

import dataclasses
import datetime
from typing import List, Optional, Sequence

from kiskadee.core.states import COULD_NOT_ANALYZE, RETRYABLE
from kiskadee.errors import NotFoundError, UsageError
from kiskadee.store import queue
from kiskadee.store.db import write_transaction
from kiskadee.store.models import Fetcher, Package, Version, utcnow

DEFAULT_STATES = tuple(state.value for state in COULD_NOT_ANALYZE)
# What can be put back in the queue, the default states first as 'kiskadee retry --help' lists them.
STATES = DEFAULT_STATES + tuple(state.value for state in RETRYABLE if state.value not in DEFAULT_STATES)


@dataclasses.dataclass(frozen=True)
class Requeued:
    fetcher: str
    package: str
    version: str
    state: str          # the state it had
    error: str          # why it had failed, if it had


def requeue(package: Optional[str] = None, numbers: Sequence[str] = (), states: Sequence[str] = DEFAULT_STATES,
            fetcher: Optional[str] = None, dry_run: bool = False,
            now: Optional[datetime.datetime] = None) -> List[Requeued]:
    """Put the matching versions back in the queue (unless ``dry_run``); what was, or would be, re-queued.

    NotFoundError when a named package or version is not in the database.
    """
    unknown = set(states) - set(STATES)
    if unknown:
        raise UsageError(f"cannot re-queue versions in state {', '.join(sorted(unknown))}; "
                         f"states that can be: {', '.join(STATES)}")
    if numbers and not package:
        raise UsageError("name the package of the versions")
    query = (Version.select(Version, Package, Fetcher).join(Package).join(Fetcher)
             .where(Version.state.in_(list(states))).order_by(Fetcher.name, Package.name, Version.id))
    if fetcher:
        query = query.where(Fetcher.name == fetcher)
    if package:
        _check_exists(package, numbers, fetcher)
        query = query.where(Package.name == package)
    if numbers:
        query = query.where(Version.number.in_(list(numbers)))
    with write_transaction(Version._meta.database):     # read and re-queued under the write lock
        versions = list(query)
        if not dry_run:
            queue.retry(query, now or utcnow())
    return [Requeued(v.package.fetcher.name, v.package.name, v.number, v.state, v.error) for v in versions]


def _check_exists(package: str, numbers: Sequence[str], fetcher: Optional[str]) -> None:
    packages = Package.select().join(Fetcher).where(Package.name == package)
    if fetcher:
        packages = packages.where(Fetcher.name == fetcher)
    if not packages.exists():
        raise NotFoundError(f"no package {package} in the database")
    known = {v.number for v in Version.select(Version.number).where(Version.package.in_(packages))}
    missing = [number for number in numbers if number not in known]
    if missing:
        raise NotFoundError(f"no version {', '.join(missing)} of {package} in the database")
