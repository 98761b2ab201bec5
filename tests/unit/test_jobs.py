"""The job queue's rules, on a real SQLite database, with time passed in."""

import datetime

import pytest
from harness import other_connection

pytestmark = pytest.mark.both_databases

from kiskadee.core.findings import Finding
from kiskadee.core.runs import AnalyzerRun
from kiskadee.store import queue
from kiskadee.store.catalog import Catalog
from kiskadee.store.models import Analysis
from kiskadee.store.models import Finding as FindingRow
from kiskadee.store.models import Version

T0 = datetime.datetime(2026, 11, 28, 12, 0, 0)
POLICY = queue.QueuePolicy(lease_seconds=60, max_attempts=2, backoff_seconds=10)


def event(version, package="hello", fetcher="debian"):
    return {"fetcher": fetcher, "package": package, "version": version, "source_url": "", "sha256": "", "meta": {}}


def record(catalog, source_event, now=T0):
    """Record one event and write it, as the monitor does per batch."""
    outcome = catalog.record(source_event, now)
    catalog.flush()
    return outcome


def test_repeated_event_changes_nothing(db):
    catalog = Catalog(POLICY)
    outcomes = [record(catalog, event("2.10-3")) for _ in range(1000)]
    assert outcomes[0] == "queued" and set(outcomes[1:]) == {"known"}
    assert Version.select().count() == 1


def test_newest_policy_uses_the_fetchers_version_rules(db):
    catalog = Catalog(POLICY)
    assert record(catalog, event("2.10-3")) == "queued"
    assert record(catalog, event("2.10~rc1-1")) == "seen"       # older by Debian rules
    assert record(catalog, event("2.10-6")) == "queued"
    assert record(catalog, event("1.0", fetcher="local")) == "queued"   # another fetcher, another package
    assert record(catalog, event("1.0rc1", fetcher="local")) == "seen"  # PEP 440


def test_every_policy_queues_older_versions_too(db):
    catalog = Catalog(queue.QueuePolicy(analyze="every"))
    record(catalog, event("2.0"))
    assert record(catalog, event("1.0")) == "queued"


def test_a_restarted_monitor_knows_what_was_recorded(db):
    record(Catalog(POLICY), event("2.10-3"))
    fresh = Catalog(POLICY)
    assert record(fresh, event("2.10-3")) == "known"
    assert record(fresh, event("2.9-1")) == "seen"


def test_a_batch_of_new_packages_is_written_once_with_its_versions(db):
    catalog = Catalog(POLICY)
    for number in range(300):
        assert catalog.record(event("1.0", package=f"p{number}"), T0) == "queued"
        assert catalog.record(event("0.9", package=f"p{number}"), T0) == "seen"
    catalog.flush()
    rows = db.execute_sql("SELECT p.name, v.number, v.state FROM version v JOIN package p ON p.id = v.package_id")
    assert sorted(rows) == sorted([(f"p{n}", "1.0", "queued") for n in range(300)]
                                  + [(f"p{n}", "0.9", "seen") for n in range(300)])
    assert record(catalog, event("1.0", package="p7")) == "known"       # the cache moved to the real ids
    assert record(catalog, event("1.1", package="p7")) == "queued"


def test_a_package_another_writer_added_meanwhile_is_taken_as_it_is(db, tmp_path):
    catalog = Catalog(POLICY)
    record(catalog, event("1.0"))                   # loads what the fetcher knows
    with other_connection(db.database) as other:     # e.g. 'kiskadee analyze'
        other.execute("INSERT INTO package (fetcher_id, name, created_at)"
                      " SELECT id, 'jq', '2026-11-28 12:00:00' FROM fetcher WHERE name = 'debian'")
    assert record(catalog, event("1.7.1", package="jq")) == "queued"
    rows = db.execute_sql("SELECT p.name, COUNT(v.id) FROM package p LEFT JOIN version v ON v.package_id = p.id"
                          " GROUP BY p.id ORDER BY p.name")
    assert list(rows) == [("hello", 1), ("jq", 1)]


def test_lease_heartbeat_and_expiry(db):
    record(Catalog(POLICY), event("2.10-3"))
    job = queue.lease("r1", POLICY, T0)
    assert (job.state, job.leased_by, job.attempts) == ("leased", "r1", 1)
    assert queue.lease("r2", POLICY, T0) is None                   # nothing else queued
    queue.heartbeat(job.id, "r1", job.lease_token, POLICY, T0 + datetime.timedelta(seconds=50))
    with pytest.raises(queue.LeaseRefused, match="leased to another runner"):   # r2 does not hold it
        queue.heartbeat(job.id, "r2", job.lease_token, POLICY, T0)
    assert queue.expire_leases(POLICY, T0 + datetime.timedelta(seconds=100)) == []   # extended to 110 s
    expired = queue.expire_leases(POLICY, T0 + datetime.timedelta(seconds=111))
    assert [j.id for j in expired] == [job.id]
    again = Version.get_by_id(job.id)
    assert again.state == "queued" and "went silent" in again.error
    assert queue.lease("r2", POLICY, T0 + datetime.timedelta(seconds=115)) is None    # backoff
    assert queue.lease("r2", POLICY, T0 + datetime.timedelta(seconds=122)).leased_by == "r2"


def test_job_fails_after_its_last_attempt(db):
    record(Catalog(POLICY), event("2.10-3"))
    now = T0
    for _ in range(POLICY.max_attempts):
        job = queue.lease("r1", POLICY, now)
        now += datetime.timedelta(seconds=500)
        queue.expire_leases(POLICY, now)
        now += datetime.timedelta(seconds=100)      # past the backoff
    assert Version.get_by_id(job.id).state == "failed"


def test_result_is_stored_once(db):
    record(Catalog(POLICY), event("2.10-3"))
    job = queue.lease("r1", POLICY, T0)
    finding = Finding(path="src/a.c", line=3, check_id="nullPointer", severity="high", message="m",
                      fingerprint="f" * 32)
    runs = [AnalyzerRun("cppcheck", "2.10", "ok", 1.0, findings=[finding])]
    fields = {"source_url": "http://mirror/x.tar.gz", "sha256": "ab" * 32, "runner": "r1", "lease": job.lease_token}
    assert queue.complete(job.id, fields, runs, POLICY, T0) == "stored"
    assert queue.complete(job.id, fields, runs, POLICY, T0) == "duplicate"
    assert Analysis.select().count() == 1 and FindingRow.select().count() == 1
    stored = Version.get_by_id(job.id)
    assert (stored.state, stored.source_url, stored.leased_by) == ("done", "http://mirror/x.tar.gz", "r1")


def test_transient_error_requeues_and_permanent_error_fails(db):
    catalog = Catalog(POLICY)
    record(catalog, event("1", package="a"))
    record(catalog, event("1", package="b"))
    first, second = queue.lease("r1", POLICY, T0), queue.lease("r2", POLICY, T0)
    assert queue.complete(first.id, {"error": "mirror down", "transient": True, "runner": "r1",
                                     "lease": first.lease_token}, [], POLICY, T0) == "requeued"
    assert queue.complete(second.id, {"error": "checksum mismatch", "runner": "r2", "lease": second.lease_token},
                          [], POLICY, T0) == "failed"
    assert Version.get_by_id(first.id).state == "queued"
    assert (Version.get_by_id(second.id).state, Version.get_by_id(second.id).error) == ("failed", "checksum mismatch")
