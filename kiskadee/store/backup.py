"""A consistent copy of the database while the monitor writes it: SQLite's online backup.

``sqlite3.Connection.backup`` copies every page of one read snapshot in a
single step. In WAL mode a reader does not block writers, so the monitor and
runners carry on meanwhile; the copy holds every transaction committed
before the backup started and nothing of those after. Copying the file with
``cp`` instead could catch a half-written page and would miss what is still
in the ``-wal`` file.
"""

import os
import sqlite3
from pathlib import Path

import peewee

from kiskadee.errors import DatabaseError, UsageError
from kiskadee.store import migrations


def backup(db: peewee.Database, target: Path) -> int:
    """Copy the open database ``db`` to the new file ``target``; the copy's schema version.

    The copy is written next to ``target`` under a temporary name, checked
    (``PRAGMA quick_check`` and its schema version against the source's) and
    only then given its name, so ``target`` is never a partial copy.
    """
    if target.exists():
        raise UsageError(f"{target}: already exists; kiskadee db backup does not overwrite a file")
    if not target.parent.is_dir():
        raise UsageError(f"{target.parent}: no such directory")
    partial = target.with_name(f".{target.name}.partial")
    try:
        _copy(db.connection(), partial)
        schema = _check(partial, migrations.current_version(db))
        os.link(partial, target)        # unlike a rename, fails rather than replace a file made meanwhile
    except FileExistsError:
        raise UsageError(f"{target}: already exists; kiskadee db backup does not overwrite a file") from None
    finally:
        partial.unlink(missing_ok=True)
    return schema


def _copy(source: sqlite3.Connection, partial: Path) -> None:
    partial.unlink(missing_ok=True)     # left by an interrupted backup
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy)             # all pages at once: one snapshot, however busy the source
    except sqlite3.Error as exc:
        raise DatabaseError(f"backup to {partial} failed: {exc}") from None
    finally:
        copy.close()
    with open(partial, "rb") as written:
        os.fsync(written.fileno())


def _check(partial: Path, expected_schema: int) -> int:
    """The schema version of the copy at ``partial``; DatabaseError unless it is sound and at ``expected_schema``."""
    copy = sqlite3.connect(partial)
    try:
        (verdict,) = copy.execute("PRAGMA quick_check").fetchone()
        tables = {name for (name,) in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        schema = 0
        if "schema_migration" in tables:
            schema = copy.execute("SELECT MAX(number) FROM schema_migration").fetchone()[0] or 0
    finally:
        copy.close()
    if verdict != "ok":
        raise DatabaseError(f"the copy at {partial} failed its integrity check: {verdict}")
    if schema != expected_schema:
        raise DatabaseError(f"the copy at {partial} is at schema {schema}, the database at {expected_schema}")
    return schema
