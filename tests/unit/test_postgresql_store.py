"""What PostgreSQL does differently as the store: one writer by an advisory lock, text without NUL.

Every transaction holds kiskadee's advisory lock from BEGIN, as SQLite's
``BEGIN IMMEDIATE`` holds its write lock. A real PostgreSQL server
(tests/postgresql_server.py); the other writer is a plain psycopg2
connection holding the lock, as the monitor's transaction does.
"""

import threading
import time

import peewee
import psycopg2
import pytest

from kiskadee.core.findings import Finding
from kiskadee.core.runs import AnalyzerRun
from kiskadee.errors import EXIT_DATABASE, DatabaseError
from kiskadee.store import retry
from kiskadee.store.db import DatabaseBusy, close_database, open_database, unreachable
from kiskadee.store.postgresql import WRITE_LOCK, display
from kiskadee.store.queue import record_analysis
from kiskadee.store.results import VersionKey

KEY = VersionKey("local", "tiny", "1.0")


@pytest.fixture
def url(postgresql):
    return postgresql.fresh_database()


@pytest.fixture
def other_writer(url):
    """A second connection that holds the write lock until the test releases it."""
    connection = psycopg2.connect(url)
    connection.cursor().execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
    yield connection
    connection.rollback()
    connection.close()


def holds_the_lock(url) -> bool:
    with psycopg2.connect(url) as other:
        cursor = other.cursor()
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", (WRITE_LOCK,))
        free = cursor.fetchone()[0]
        other.rollback()
    return not free


def test_every_transaction_holds_the_write_lock_from_its_start(url):
    db = open_database(url)
    with db.atomic():           # the monitor's transactions are plain atomic() blocks
        assert holds_the_lock(url)
    assert not holds_the_lock(url)
    close_database(db)


def test_a_writer_still_locked_out_after_the_busy_timeout_is_a_database_error_exit_5(url, other_writer):
    db = open_database(url, busy_timeout_ms=100)
    with pytest.raises(DatabaseBusy, match="stayed busy for 0.1 s .*nothing was changed") as refused:
        retry.requeue()
    assert refused.value.exit_code == EXIT_DATABASE
    assert db.execute_sql("SELECT 1").fetchone() == (1,)     # the connection is usable again
    close_database(db)


def test_analyze_results_wait_out_a_long_busy_spell_and_are_stored(url, other_writer):
    db = open_database(url, busy_timeout_ms=100)
    release = threading.Timer(0.5, other_writer.rollback)     # longer than the busy timeout
    release.start()
    started = time.monotonic()
    version = record_analysis(KEY, [AnalyzerRun("flawfinder", "2.0", "ok")], db=db)
    release.join()
    assert time.monotonic() - started >= 0.5
    assert version.state == "done"
    assert db.execute_sql("SELECT COUNT(*) FROM analysis").fetchone() == (1,)
    close_database(db)


def test_a_wrong_url_is_a_clear_database_error(postgresql):
    with pytest.raises(DatabaseError, match="cannot connect") as refused:
        open_database(postgresql.url("no_such_database"))
    assert refused.value.exit_code == EXIT_DATABASE


def test_text_with_nul_characters_is_stored_with_them_replaced(url):
    """A hostile source line or analyzer output may hold NUL, which PostgreSQL's text cannot."""
    db = open_database(url)
    finding = Finding(path="src/a.c", line=3, check_id="buffer.strcpy", severity="high", message="copy \x00 here",
                      fingerprint="ab" * 16, context=("char b[4];", "strcpy(b, \"\x00\");"), context_line=2)
    runs = [AnalyzerRun("flawfinder", "2.0", "ok", findings=[finding]),
            AnalyzerRun("cppcheck", "2.10", "failed", error="crashed on \x00")]
    record_analysis(KEY, runs, db=db)
    rows = db.execute_sql("SELECT f.message, f.context, a.error FROM finding f JOIN analysis a ON a.id = f.analysis_id"
                          " UNION ALL SELECT '', '', error FROM analysis WHERE status = 'failed'").fetchall()
    assert rows == [("copy \ufffd here", "char b[4];\nstrcpy(b, \"\ufffd\");", ""), ("", "", "crashed on \ufffd")]
    close_database(db)


@pytest.mark.parametrize("url, shown", [
    ("postgresql://kiskadee:s3cret@/kiskadee?host=/run/postgresql", "postgresql://kiskadee:***@/kiskadee?host=/run/postgresql"),
    ("postgresql:///kiskadee?user=k&password=s3cret&host=/tmp", "postgresql:///kiskadee?user=k&password=***&host=/tmp"),
    ("postgresql:///kiskadee?password=s3cret", "postgresql:///kiskadee?password=***"),
    ("postgresql:///kiskadee?host=/run/postgresql", "postgresql:///kiskadee?host=/run/postgresql"),
])
def test_messages_and_logs_never_show_the_password(url, shown):
    assert display(url) == shown


def test_a_refused_connection_names_the_database_without_its_password(postgresql):
    url = postgresql.url("no_such_database").replace("user=kiskadee", "user=kiskadee&password=s3cret")
    with pytest.raises(DatabaseError) as refused:
        open_database(url)
    assert "s3cret" not in str(refused.value) and "password=***" in str(refused.value)


def test_a_wrong_statement_is_not_an_unreachable_database_but_a_lock_never_granted_is(url, other_writer):
    """The monitor waits out an unreachable database and answers nothing; a wrong statement it must not."""
    db = open_database(url, busy_timeout_ms=100)
    with pytest.raises(peewee.DatabaseError) as wrong:
        db.execute_sql("SELEC 1")
    assert not unreachable(db, wrong.value)
    with pytest.raises(peewee.DatabaseError) as locked:
        with db.atomic():
            pass
    assert unreachable(db, locked.value)
    close_database(db)
