"""Opening the database: SQLite in WAL mode with foreign keys, schema kept current."""

import logging
from pathlib import Path

import peewee

from kiskadee.errors import DatabaseError
from kiskadee.store import migrations
from kiskadee.store.models import database

log = logging.getLogger(__name__)


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
