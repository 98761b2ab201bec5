"""``kiskadee db copy``: every row of one database into another, SQLite or PostgreSQL, either way.

A site moves from the SQLite file to a PostgreSQL server (or back, or to a
file as a snapshot of a server) with its ids, so every URL, waiver and
exported fingerprint stays valid. The source is read in one read-only
snapshot, so a monitor still writing it leaves a consistent copy of what was
committed before the copy began. The target is written in one transaction:
an interrupted copy leaves it as empty as it was.
"""

import contextlib
from typing import Callable, Dict, Iterator, Sequence

import peewee

from kiskadee.errors import DatabaseError, UsageError
from kiskadee.store import migrations, postgresql

# Every table of the latest schema but schema_migration (the target has its own), parents first.
TABLES = ("fetcher", "package", "version", "analyzer", "analysis", "finding", "runner", "waiver", "outbox")
# Columns that point into their own table: written once every row of the table is there.
SELF_REFERENCES = {"version": "previous_id"}
BATCH = 2000


def copy(source: peewee.Database, target: peewee.Database,
         progress: Callable[[str, int], None] = lambda table, rows: None) -> Dict[str, int]:
    """Copy every row of ``source`` into the empty ``target``, both at the latest schema; rows per table."""
    for db in (source, target):
        if migrations.current_version(db) != migrations.LATEST:
            raise DatabaseError(f"{_where(db)}: schema {migrations.current_version(db)}, not"
                                f" {migrations.LATEST}; run 'kiskadee db upgrade' on it first")
    unknown = set(source.get_tables()) - set(TABLES) - {"schema_migration"}
    if unknown:
        raise DatabaseError(f"{_where(source)}: tables this kiskadee does not copy: {', '.join(sorted(unknown))}")
    filled = [table for table in TABLES if target.execute_sql(f"SELECT 1 FROM {table} LIMIT 1").fetchone()]
    if filled:
        raise UsageError(f"{_where(target)}: not empty ({', '.join(filled)} have rows); kiskadee db copy"
                         " writes only into an empty database")
    copied = {}
    try:
        with _snapshot(source), target.atomic(), peewee.__exception_wrapper__:
            for table in TABLES:
                copied[table] = _copy_table(source, target, table)
                progress(table, copied[table])
            if isinstance(target, peewee.PostgresqlDatabase):
                _move_sequences(target)
    except peewee.DatabaseError as exc:
        raise DatabaseError(f"copying into {_where(target)} failed, which is left as it was: "
                            f"{str(exc).strip()}") from None
    for table in TABLES:
        (count,) = target.execute_sql(f"SELECT COUNT(*) FROM {table}").fetchone()
        if count != copied[table]:
            raise DatabaseError(f"{_where(target)}: {table} holds {count} rows after copying {copied[table]}")
    return copied


def _copy_table(source: peewee.Database, target: peewee.Database, table: str) -> int:
    columns = [column.name for column in target.get_columns(table)]
    later = SELF_REFERENCES.get(table)
    written = [name for name in columns if name != later]
    quoted = ", ".join(f'"{name}"' for name in written)
    cursor = source.execute_sql(f"SELECT {quoted} FROM {table} ORDER BY id")
    count = 0
    while True:
        rows = cursor.fetchmany(BATCH)
        if not rows:
            break
        _insert(target, table, quoted, len(written), rows)
        count += len(rows)
    if later:
        pairs = source.execute_sql(f"SELECT {later}, id FROM {table} WHERE {later} IS NOT NULL").fetchall()
        mark = target.param
        target.cursor().executemany(f"UPDATE {table} SET {later} = {mark} WHERE id = {mark}", pairs)
    return count


def _insert(target: peewee.Database, table: str, quoted: str, width: int, rows: Sequence[Sequence]) -> None:
    statement = f"INSERT INTO {table} ({quoted}) VALUES ({', '.join([target.param] * width)})"
    if isinstance(target, postgresql.WriterLockedPostgresql):
        postgresql.execute_many(target, statement, rows)    # a VALUES list a batch, text made storable
    else:
        target.cursor().executemany(statement, rows)


def _move_sequences(target: peewee.Database) -> None:
    """Start each table's id sequence past the copied ids, so new rows do not collide with them."""
    for table in TABLES:
        target.execute_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 1),"
                           f" MAX(id) IS NOT NULL) FROM {table}")


@contextlib.contextmanager
def _snapshot(db: peewee.Database) -> Iterator[None]:
    """One read-only snapshot of ``db`` for the statements inside; writers carry on meanwhile."""
    if isinstance(db, peewee.PostgresqlDatabase):
        db.execute_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    else:
        db.execute_sql("BEGIN DEFERRED")        # WAL: a reader's snapshot, without the write lock
    try:
        yield
    finally:
        db.execute_sql("ROLLBACK")              # it only read


def _where(db: peewee.Database) -> str:
    return getattr(db, "kiskadee_path", db.database)

