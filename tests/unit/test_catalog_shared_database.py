"""The monitor's catalog when another writer ('kiskadee analyze') recorded versions behind its cache.

A real database, SQLite and PostgreSQL; the other writer is a second
connection to it, as another process would be. What the other writer
recorded is taken as known: stored once, as that writer left it, and the
catalog's later decisions count it, without a look-up per event on the hot
path.
"""

import contextlib
import datetime

import pytest
from harness import other_connection

from kiskadee.store import queue
from kiskadee.store.catalog import Catalog

pytestmark = pytest.mark.both_databases

T0 = datetime.datetime(2026, 11, 28, 12, 0, 0)
POLICY = queue.QueuePolicy()


def event(version, package="foo", fetcher="local"):
    return {"fetcher": fetcher, "package": package, "version": version, "source_url": "", "sha256": "", "meta": {}}


def record(catalog, source_event):
    """Record one event and write it, as the monitor does per batch."""
    outcome = catalog.record(source_event, T0)
    catalog.flush()
    return outcome


def other_writer_records(location, package, number, fetcher="local"):
    """What 'kiskadee analyze' leaves: the package (if new) and an analyzed version, from another connection."""
    with other_connection(location) as other:
        other.execute("INSERT INTO fetcher (name, created_at) VALUES (?, '2026-11-28 11:00:00')"
                      " ON CONFLICT DO NOTHING", fetcher)
        other.execute("INSERT INTO package (fetcher_id, name, created_at)"
                      " SELECT id, ?, '2026-11-28 11:00:00' FROM fetcher WHERE name = ? ON CONFLICT DO NOTHING",
                      package, fetcher)
        other.execute("INSERT INTO version (package_id, number, state, created_at, finished_at)"
                      " SELECT p.id, ?, 'done', '2026-11-28 11:00:00', '2026-11-28 11:01:00' FROM package p"
                      " JOIN fetcher f ON f.id = p.fetcher_id WHERE p.name = ? AND f.name = ?",
                      number, package, fetcher)


@contextlib.contextmanager
def traced_selects(db):
    """The SELECT statements the database driver runs meanwhile: sqlite3's trace callback, or a
    psycopg2 cursor class that notes each statement."""
    selects = []

    def note(statement):
        if isinstance(statement, bytes):        # psycopg2's execute_values composes the query as bytes
            statement = statement.decode()
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    connection = db.connection()
    if hasattr(connection, "set_trace_callback"):
        connection.set_trace_callback(note)
        try:
            yield selects
        finally:
            connection.set_trace_callback(None)
        return
    import psycopg2.extensions

    class Traced(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):  # noqa: A002 (psycopg2's name)
            note(query)
            return super().execute(query, vars)

        def executemany(self, query, vars_list):
            note(query)
            return super().executemany(query, vars_list)

    connection.cursor_factory = Traced
    try:
        yield selects
    finally:
        connection.cursor_factory = None


def versions(db):
    return sorted(db.execute_sql("SELECT p.name, v.number, v.state FROM version v JOIN package p"
                                 " ON p.id = v.package_id"))


def test_a_version_of_a_cached_package_recorded_by_another_writer_is_taken_as_known(db):
    catalog = Catalog(POLICY)
    assert record(catalog, event("0.9")) == "queued"        # the cache now holds foo
    other_writer_records(db.database, "foo", "1.0")
    record(catalog, event("1.0"))                           # the cache could not know: no IntegrityError
    assert versions(db) == [("foo", "0.9", "queued"), ("foo", "1.0", "done")]
    assert record(catalog, event("1.0")) == "known"
    assert record(catalog, event("0.95")) == "seen"         # 1.0, analyzed by the other writer, is the newest
    assert record(catalog, event("1.1")) == "queued"
    assert versions(db) == [("foo", "0.9", "queued"), ("foo", "0.95", "seen"), ("foo", "1.0", "done"),
                            ("foo", "1.1", "queued")]


def test_a_package_new_to_the_cache_with_a_version_another_writer_recorded(db):
    catalog = Catalog(POLICY)
    record(catalog, event("0.9"))                           # loads what the 'local' fetcher knows
    other_writer_records(db.database, "bar", "1.0")
    record(catalog, event("1.0", package="bar"))
    assert versions(db) == [("bar", "1.0", "done"), ("foo", "0.9", "queued")]
    assert record(catalog, event("1.0", package="bar")) == "known"
    assert record(catalog, event("0.5", package="bar")) == "seen"
    assert record(catalog, event("2.0", package="bar")) == "queued"


def test_the_rest_of_a_batch_is_written_around_what_another_writer_recorded(db):
    catalog = Catalog(POLICY)
    record(catalog, event("0.9"))
    other_writer_records(db.database, "foo", "1.0")
    other_writer_records(db.database, "bar", "1.0")
    batch = [event("1.0"), event("1.1"), event("1.0", package="bar"), event("3.0", package="baz"),
             event("1.0", package="foo", fetcher="debian")]
    for each in batch:
        catalog.record(each, T0)
    catalog.flush()
    rows = db.execute_sql("SELECT f.name, p.name, v.number, v.state FROM version v JOIN package p"
                          " ON p.id = v.package_id JOIN fetcher f ON f.id = p.fetcher_id")
    assert sorted(rows) == [("debian", "foo", "1.0", "queued"), ("local", "bar", "1.0", "done"),
                            ("local", "baz", "3.0", "queued"), ("local", "foo", "0.9", "queued"),
                            ("local", "foo", "1.0", "done"), ("local", "foo", "1.1", "queued")]
    assert [catalog.record(each, T0) for each in batch] == ["known"] * len(batch)


def test_recording_known_packages_looks_nothing_up_per_event(db):
    """The hot path: a batch of new versions of cached packages costs a few statements, not one per event."""
    catalog = Catalog(POLICY)
    for number in range(50):
        record(catalog, event("1.0", package=f"p{number}"))
    with traced_selects(db) as selects:
        for number in range(50):
            for patch in range(20):
                catalog.record(event(f"1.0.{patch}", package=f"p{number}"), T0)
        catalog.flush()
    assert len(selects) <= 2, selects
    assert db.execute_sql("SELECT COUNT(*) FROM version").fetchone() == (50 * 21,)
