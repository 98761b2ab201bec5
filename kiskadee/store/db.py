"""Opening the database: SQLite in WAL mode with foreign keys, schema kept current; writing it safely.

SQLite is the default; ``database.url = "postgresql://..."`` selects a
PostgreSQL server instead (``kiskadee.store.postgresql``), where every
transaction holds one advisory lock from its BEGIN: the same single writer.

The monitor writes the database all the time, and ``kiskadee analyze``,
``retry`` and ``waive`` write it next to the monitor. Every transaction
starts as ``BEGIN IMMEDIATE`` (the database's ``lock_type``), taking SQLite's
write lock at its first statement: a deferred transaction that reads and
then writes cannot wait for the lock once it holds a snapshot, and SQLite
answers "database is locked" at once, whatever the busy timeout. Taking the
lock at BEGIN waits up to the busy timeout instead; a lock still held then
is ``DatabaseBusy`` (exit 5), never a traceback.

Who may read: whoever may read the file. Under systemd that is root, the
user kiskadee and the group kiskadee (the file is 0640). A reader without
write access opens it read-only. In WAL mode such a reader needs the
``-shm`` file to exist, which it cannot create, so every writer returns the
file to rollback-journal mode when it closes the database last
(``close_database``): with the service stopped, the group reads the plain
file; while it runs, the monitor's ``-wal`` and ``-shm`` files are there.
"""

import contextlib
import grp
import logging
import os
import time
import urllib.parse
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import peewee

from kiskadee.config import is_server, sqlite_path
from kiskadee.errors import DatabaseError
from kiskadee.store import migrations, postgresql
from kiskadee.store.models import database

log = logging.getLogger(__name__)

T = TypeVar("T")


class DatabaseBusy(DatabaseError):
    """Another process held the database's write lock for longer than the busy timeout."""


def open_database(location: str, *, schema: str = "upgrade", busy_timeout_ms: int = 10_000) -> peewee.Database:
    """Open the database at ``location`` and bind the models to it.

    ``location`` is an SQLite file's path (or ``sqlite:///PATH``) or a
    ``postgresql://`` URL. ``schema`` says what to do about the schema:
    "upgrade" creates the database's tables when missing and applies pending
    migrations; "current" requires an existing database at the latest
    schema; "as-is" opens (or creates) the file and leaves the schema alone,
    for ``kiskadee db``.
    """
    if is_server(location):
        return _open_server(location, schema, busy_timeout_ms)
    return _open_file(sqlite_path(location), schema, busy_timeout_ms)


def _open_server(url: str, schema: str, busy_timeout_ms: int) -> peewee.Database:
    db = postgresql.connect(url, busy_timeout_ms)
    db.kiskadee_path = postgresql.display(url)
    try:
        database.initialize(db)
        _check_schema(db, db.kiskadee_path, schema)
    except peewee.DatabaseError as exc:
        db.close()
        raise DatabaseError(f"{db.kiskadee_path}: cannot open database: {str(exc).strip()}") from None
    return db


def _open_file(path: str, schema: str, busy_timeout_ms: int) -> peewee.Database:
    read_only = False
    if path != ":memory:":
        if schema == "current" and not Path(path).exists():
            raise DatabaseError(f"{path}: no such database; create it with 'kiskadee db upgrade'")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        read_only = _read_only(Path(path))
    pragmas = {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "synchronous": "normal",
        "busy_timeout": busy_timeout_ms,
        "cache_size": -65536,               # 64 MiB: bulk finding inserts touch random index pages
    }
    if read_only:
        del pragmas["journal_mode"]         # a reader cannot change it, nor needs to
    db = peewee.SqliteDatabase(
        f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro" if read_only else path,
        uri=read_only,
        lock_type="IMMEDIATE",              # every transaction writes: take the write lock at BEGIN
        pragmas=pragmas,
    )
    db.kiskadee_path = path
    db.busy_timeout_ms = busy_timeout_ms
    try:
        db.connect(reuse_if_open=True)
        database.initialize(db)
        _check_schema(db, path, "current" if read_only and schema == "upgrade" else schema)
    except peewee.DatabaseError as exc:
        db.close()
        if read_only and "readonly" in str(exc):
            raise DatabaseError(f"{path}: cannot read the database without write access to "
                                f"{Path(path).parent}: it was left in WAL mode with no -shm file "
                                "(closed by a program other than kiskadee); start the monitor, or run "
                                "'kiskadee db status' once as its owner") from None
        raise DatabaseError(f"{path}: cannot open database: {exc}") from None
    return db


def close_database(db: peewee.Database) -> None:
    """Close ``db``; the last writer to close returns the file to rollback-journal mode.

    Then readers without write access can open it while no kiskadee process
    has it open (see the module's docstring). While other connections are
    open the switch fails at once, and the last of them makes it.
    """
    if db.is_closed():
        return
    if isinstance(db, peewee.SqliteDatabase) and not db.connect_params.get("uri") and db.database != ":memory:":
        try:
            db.execute_sql("PRAGMA busy_timeout = 0")
            db.execute_sql("PRAGMA journal_mode = delete")
        except peewee.DatabaseError:
            pass                            # another connection is open: it will, when it closes
    db.close()


def close_bound_database() -> None:
    """Close the database the models are bound to, if one is open (at the end of a command)."""
    if database.obj is not None:
        close_database(database.obj)


def _read_only(path: Path) -> bool:
    """Whether the existing database at ``path`` must be opened read-only; DatabaseError if unreadable."""
    if not path.exists():
        return False
    if not os.access(path, os.R_OK):
        raise DatabaseError(f"{path}: permission denied: reading the database takes {_readers(path)}")
    return not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK)


def _readers(path: Path) -> str:
    """Who may read ``path``, for a refusal: its owner, and its group where the mode lets the group read."""
    status = path.stat()
    try:
        group = grp.getgrgid(status.st_gid).gr_name
    except KeyError:
        group = str(status.st_gid)
    if status.st_mode & 0o040:
        return f"membership of the group {group!r} (an admin adds you: usermod -aG {group} $USER)"
    return "the file owner's rights or root's"


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
    where = getattr(db, "kiskadee_path", db.database)
    try:
        with db.atomic():                   # SQLite's BEGIN IMMEDIATE, or PostgreSQL's write lock
            yield
    except (peewee.OperationalError, peewee.ProgrammingError) as exc:
        if "readonly" in str(exc) or "permission denied" in str(exc):
            raise DatabaseError(f"{where}: permission denied: this command writes the database, which takes "
                                "the rights of its owner (the kiskadee user under systemd) or root") from None
        if not _is_busy(exc):
            raise
        raise DatabaseBusy(f"{where}: the database stayed busy for {db.busy_timeout_ms / 1000:g} s (another "
                           "process, such as the monitor, was writing it); nothing was changed, try again") from None


def unreachable(db: peewee.Database, exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached or written just now (a server restarting
    or gone, a lock held too long, a full disk), rather than that the statement was wrong."""
    if isinstance(exc, (peewee.OperationalError, peewee.InterfaceError)):
        return True
    return isinstance(exc, peewee.DatabaseError) and isinstance(db, postgresql.WriterLockedPostgresql) \
        and postgresql.unreachable(exc)


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


def _is_busy(exc: peewee.DatabaseError) -> bool:
    return any(text in str(exc) for text in ("database is locked", "database is busy")) or postgresql.is_busy(exc)
