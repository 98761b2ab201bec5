"""PostgreSQL, for a site whose database other hosts read: one writer at a time, as with SQLite.

kiskadee's writers were designed against SQLite, where a transaction that
begins ``IMMEDIATE`` holds the one write lock: the monitor and the commands
that write next to it (``analyze``, ``retry``, ``waive``) never interleave.
Here every transaction takes one transaction-scoped advisory lock at BEGIN,
which keeps exactly that guarantee: a second writer waits up to the busy
timeout (``lock_timeout``) and then fails as "busy", which the callers
already handle (``kiskadee.store.db.DatabaseBusy``). Reads outside a
transaction (``show``, ``diff``, ``export``, the report) take no lock.

PostgreSQL's text cannot hold the NUL character, which SQLite's can and
which a hostile source file or an analyzer's output may contain: every
value written here has it replaced by U+FFFD (``storable``), rather than
the whole write refused.
"""

import logging
import re
import urllib.parse
from typing import Iterable, Optional, Sequence

import peewee

from kiskadee.errors import DatabaseError

log = logging.getLogger(__name__)

# The advisory lock every kiskadee transaction holds: a constant of kiskadee's own ('kisk' in ASCII).
WRITE_LOCK = 0x6B69736B


class WriterLockedPostgresql(peewee.PostgresqlDatabase):
    """A PostgreSQL database whose every transaction holds kiskadee's write lock from its BEGIN."""

    def __init__(self, url: str, busy_timeout_ms: int):
        super().__init__(url)
        self.busy_timeout_ms = busy_timeout_ms

    def connection_lost(self) -> bool:
        """Whether the server closed this connection (it restarted, or went away): psycopg2 marks it
        closed, or (as after a failed statement) no longer knows the state of its transaction."""
        if self.is_closed():
            return False
        connection = self._state.conn
        return bool(connection.closed) or self._adapter.txn_status(connection) == self._adapter.txn_unknown

    def cursor(self, *args, **kwargs):
        """A cursor; on a connection the server closed (a restart), a new connection first."""
        if self.connection_lost() and not self.in_transaction():
            log.warning("%s: the server closed the connection; connecting again", display(self.database))
            self.close()
        return super().cursor(*args, **kwargs)

    def execute_sql(self, sql: str, params: Optional[Sequence] = None, *args, **kwargs):
        return super().execute_sql(sql, storable(params) if params else params, *args, **kwargs)

    def begin(self, isolation_level=None):
        super().begin(isolation_level)
        try:
            # One round trip: the wait limit for this transaction (SET LOCAL), then the lock.
            self.execute_sql("SELECT set_config('lock_timeout', %s, true), pg_advisory_xact_lock(%s)",
                             (f"{int(self.busy_timeout_ms)}ms", WRITE_LOCK))
        except peewee.DatabaseError:
            self.rollback()             # peewee's transaction never began: end the server's
            raise


def storable(row: Sequence) -> tuple:
    """``row`` with NUL characters in its text replaced by U+FFFD, as PostgreSQL's text can hold it."""
    return tuple(value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value
                 for value in row)


# The row of an INSERT's VALUES list, as sql.execute_many writes it: "VALUES (%s, %s, ...)".
_ROW = re.compile(r"VALUES (\(%s(?:, %s)*\))")
ROWS_PER_STATEMENT = 5000


def execute_many(db: peewee.Database, statement: str, rows: Iterable[Sequence]) -> int:
    """Run ``statement`` for each of ``rows``; how many rows it changed.

    psycopg2's executemany sends one statement per row, a round trip each; an
    INSERT here goes as one statement per ROWS_PER_STATEMENT rows instead
    (a VALUES list), which stores a result's thousand findings in one.
    """
    rows = [storable(row) for row in rows]
    row = _ROW.search(statement)
    cursor = db.cursor()
    if row is None:
        cursor.executemany(statement, rows)
        return cursor.rowcount
    from psycopg2.extras import execute_values
    listed = statement[:row.start()] + "VALUES %s" + statement[row.end():]
    changed = 0
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        page = rows[start:start + ROWS_PER_STATEMENT]
        execute_values(cursor, listed, page, template=row.group(1), page_size=len(page))
        changed += cursor.rowcount
    return changed


def connect(url: str, busy_timeout_ms: int) -> peewee.Database:
    """An open connection to the PostgreSQL database at ``url`` (postgresql://, libpq's URL form)."""
    try:
        import psycopg2  # noqa: F401  (peewee finds it; say clearly when it is not installed)
    except ImportError:
        raise DatabaseError(f"{display(url)}: PostgreSQL needs psycopg2 (dnf install python3-psycopg2,"
                            " apt install python3-psycopg2, or pip install psycopg2-binary)") from None
    db = WriterLockedPostgresql(url.replace("postgres://", "postgresql://", 1), busy_timeout_ms)
    try:
        db.connect(reuse_if_open=True)
    except peewee.DatabaseError as exc:
        raise DatabaseError(f"{display(url)}: cannot connect: {str(exc).strip()}") from None
    return db


# How the migrations' SQLite SQL reads in PostgreSQL: the few words the two spell differently.
_SPELLINGS = (
    ("id INTEGER PRIMARY KEY", "id SERIAL PRIMARY KEY"),    # SQLite's rowid alias numbers new rows itself
    (" DATETIME", " TIMESTAMP"),
    (" REAL", " DOUBLE PRECISION"),                         # SQLite's REAL has 8 bytes; PostgreSQL's has 4
    ("CROSS JOIN", "JOIN"),                                 # SQLite's join-order hint; an inner join
    ("instr(", "strpos("),
    ("char(10)", "chr(10)"),
)


def from_sqlite(statement: str) -> str:
    """A migration's statement, written for SQLite, as PostgreSQL spells it."""
    for sqlite, postgres in _SPELLINGS:
        statement = statement.replace(sqlite, postgres)
    return statement


def display(url: str) -> str:
    """``url`` without its password (user:PASSWORD@ or ?password=), for messages and logs."""
    password = urllib.parse.urlsplit(url).password
    if password:
        url = url.replace(f":{password}@", ":***@", 1)
    return re.sub(r"([?&])password=[^&]*", r"\1password=***", url)


# SQLSTATE classes of a server that cannot serve now: connection exception, insufficient resources
# (a full disk), operator intervention (shutting down), system error; and a lock wait that timed out.
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")
_LOCK_NOT_AVAILABLE = "55P03"


def unreachable(exc: peewee.DatabaseError) -> bool:
    """Whether ``exc`` (peewee's, wrapping psycopg2's) says the server cannot be reached or cannot
    serve just now, rather than that the statement was wrong. psycopg2 reports a connection the
    server closed mid-statement as a bare DatabaseError with no SQLSTATE."""
    original = getattr(exc, "orig", None)
    if type(original).__name__ not in ("DatabaseError", "OperationalError", "InterfaceError"):
        return False
    code = _sqlstate(exc)
    return code is None or code[:2] in _UNAVAILABLE_CLASSES or code == _LOCK_NOT_AVAILABLE


def is_busy(exc: peewee.DatabaseError) -> bool:
    """Whether ``exc`` is the lock timeout of a writer that waited for another."""
    return _sqlstate(exc) == _LOCK_NOT_AVAILABLE


def _sqlstate(exc: peewee.DatabaseError) -> Optional[str]:
    """The SQLSTATE of the driver's exception that peewee keeps; None where the server gave none."""
    return getattr(getattr(exc, "orig", None), "pgcode", "")
