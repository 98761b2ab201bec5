"""Writers next to the monitor take SQLite's write lock at BEGIN, wait for it, and say so when it never comes.

Real SQLite files; the other writer is a plain sqlite3 connection holding
``BEGIN IMMEDIATE``, as the monitor's transaction does.
"""

import sqlite3
import threading
import time

import pytest

from kiskadee.core.runs import AnalyzerRun
from kiskadee.errors import EXIT_DATABASE
from kiskadee.store import retry, waivers
from kiskadee.store.db import DatabaseBusy, open_database
from kiskadee.store.models import Waiver, utcnow
from kiskadee.store.queue import record_analysis
from kiskadee.store.results import VersionKey, get_version

KEY = VersionKey("local", "tiny", "1.0")


@pytest.fixture
def path(tmp_path):
    path = tmp_path / "k.db"
    open_database(str(path)).close()
    return path


@pytest.fixture
def other_writer(path):
    """A second connection that holds the write lock until the test releases it."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN IMMEDIATE")
    yield connection
    if connection.in_transaction:
        connection.rollback()
    connection.close()


def test_every_transaction_holds_the_write_lock_from_its_start(path):
    db = open_database(str(path))
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with db.atomic():           # the monitor's transactions are plain atomic() blocks
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")
    other.rollback()
    other.close()
    db.close()


def test_retry_still_locked_after_the_busy_timeout_is_a_database_error_exit_5(path, other_writer):
    open_database(str(path), busy_timeout_ms=100)
    with pytest.raises(DatabaseBusy, match="stayed busy for 0.1 s .*nothing was changed") as refused:
        retry.requeue()
    assert refused.value.exit_code == EXIT_DATABASE


def test_waive_still_locked_is_a_database_error_and_changes_nothing(path):
    db = open_database(str(path), busy_timeout_ms=100)
    Waiver.create(package=get_version(KEY).package, fingerprint="abcdef0123", kind="bug", created_at=utcnow())
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(DatabaseBusy):
        waivers.waive("abcdef0123", "false-positive")
    with pytest.raises(DatabaseBusy):
        waivers.remove("abcdef0123")
    blocker.rollback()
    assert [w.kind for w in Waiver.select()] == ["bug"]
    db.close()


def test_analyze_results_wait_out_a_long_busy_spell_and_are_stored(path, other_writer):
    db = open_database(str(path), busy_timeout_ms=100)
    release = threading.Timer(0.5, other_writer.rollback)     # longer than the busy timeout
    release.start()
    started = time.monotonic()
    version = record_analysis(KEY, [AnalyzerRun("flawfinder", "2.0", "ok")], db=db)
    release.join()
    assert time.monotonic() - started >= 0.5
    assert version.state == "done"
    assert db.execute_sql("SELECT COUNT(*) FROM analysis").fetchone() == (1,)
    db.close()
