"""Opening the database: SQLite in WAL mode with foreign keys, schema kept current; writing it safely.

The monitor writes the database all the time, and ``kiskadee analyze``,
``retry`` and ``waive`` write it next to the monitor. Every transaction
starts as ``BEGIN IMMEDIATE`` (the database's ``lock_type``), taking SQLite's
write lock at its first statement: a deferred transaction that reads and
then writes cannot wait for the lock once it holds a snapshot, and SQLite
answers "database is locked" at once, whatever the busy timeout. Taking the
lock at BEGIN waits up to the busy timeout instead; a lock still held then
is ``DatabaseBusy`` (exit 5), never a traceback.
"""

import contextlib
import logging
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import peewee

from kiskadee.errors import DatabaseError
from kiskadee.store import migrations
from kiskadee.store.models import database

log = logging.getLogger(__name__)

T = TypeVar("T")


class DatabaseBusy(DatabaseError):
    """Another process held the database's write lock for longer than the busy timeout."""


def open_database(path: str, *, schema: str = "upgrade", busy_timeout_ms: int = 10_000) -> peewee.Database:
    """Open the SQLite database at ``path`` and bind the models to it.

    ``schema`` says what to do about the schema: "upgrade" creates the file
    when missing and applies pending migrations; "current" requires an
    existing database at the latest schema; "as-is" opens (or creates) the
    file and leaves the schema alone, for ``kiskadee db``.
    """
    if path != ":memory:":
        if schema == "current" and not Path(path).exists():
            raise DatabaseError(f"{path}: no such database; create it with 'kiskadee db upgrade'")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = peewee.SqliteDatabase(
        path,
        lock_type="IMMEDIATE",              # every transaction writes: take the write lock at BEGIN
        pragmas={
            "journal_mode": "wal",
            "foreign_keys": 1,
            "synchronous": "normal",
            "busy_timeout": busy_timeout_ms,
            "cache_size": -65536,           # 64 MiB: bulk finding inserts touch random index pages
        },
    )
    try:
        db.connect(reuse_if_open=True)
        database.initialize(db)
        _check_schema(db, path, schema)
    except peewee.DatabaseError as exc:
        db.close()
        raise DatabaseError(f"{path}: cannot open database: {exc}") from None
    return db


def _check_schema(db: peewee.Database, path: str, schema: str) -> None:
    if schema == "upgrade":
        migrations.upgrade(db)
    elif schema == "current":
        current = migrations.current_version(db)
        if current != migrations.LATEST:
            raise DatabaseError(
                f"{path}: schema is at {current}, this kiskadee needs {migrations.LATEST};"
                " run 'kiskadee db upgrade'"
            )


@contextlib.contextmanager
def write_transaction(db: peewee.Database) -> Iterator[None]:
    """One transaction holding the write lock from its start; DatabaseBusy if it stays taken too long."""
    try:
        with db.atomic("IMMEDIATE"):
            yield
    except peewee.OperationalError as exc:
        if not _is_busy(exc):
            raise
        (timeout_ms,) = db.execute_sql("PRAGMA busy_timeout").fetchone()
        raise DatabaseBusy(f"{db.database}: the database stayed busy for {timeout_ms / 1000:g} s (another "
                           "process, such as the monitor, was writing it); nothing was changed, try again") from None


def retry_when_busy(write: Callable[[], T], attempts: int = 4, backoff_seconds: float = 1.0) -> T:
    """``write()``, which runs a write_transaction, tried again after a growing pause while the database is busy.

    For writes too costly to lose, like the results of an analysis that took minutes.
    """
    for attempt in range(1, attempts):
        try:
            return write()
        except DatabaseBusy as exc:
            delay = backoff_seconds * 2 ** (attempt - 1)
            log.warning("%s; trying again in %g s", exc, delay)
            time.sleep(delay)
    return write()


def _is_busy(exc: peewee.OperationalError) -> bool:
    return any(text in str(exc) for text in ("database is locked", "database is busy"))
