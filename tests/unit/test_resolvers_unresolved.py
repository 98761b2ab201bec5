"""A version whose source cannot be located is recorded as 'unresolved' with its reason, never dropped."""

import datetime

from kiskadee.service import wire
from kiskadee.store import queue, status
from kiskadee.store.catalog import Catalog
from kiskadee.store.models import Version

T0 = datetime.datetime(2026, 11, 28, 12, 0, 0)
POLICY = queue.QueuePolicy(lease_seconds=60, max_attempts=3, backoff_seconds=10)
REASON = "zero-install 2.12: kiskadee has no resolver for Anitya backend 'Sourceforge'"


def leased_job() -> Version:
    catalog = Catalog(POLICY)
    catalog.record({"fetcher": "anitya", "package": "zero-install", "version": "2.12",
                    "meta": {"backend": "Sourceforge"}}, T0)
    catalog.flush()
    return queue.lease("r1", POLICY, T0)


def test_the_result_message_carries_the_unresolved_flag():
    frame = wire.encode("result", runner="r1", job=7, runs=[], error=REASON, unresolved=True)
    assert wire.decode(frame).fields["unresolved"] is True
    assert wire.decode(wire.encode("result", runner="r1", job=7, runs=[])).fields["unresolved"] is False


def test_an_unresolved_result_is_stored_with_its_reason_and_not_retried(db):
    job = leased_job()
    holder = {"runner": "r1", "lease": job.lease_token}
    fields = {"error": REASON, "transient": False, "unresolved": True, **holder}
    assert queue.complete(job.id, fields, [], POLICY, T0) == "unresolved"
    stored = Version.get_by_id(job.id)
    assert (stored.state, stored.error, stored.finished_at) == ("unresolved", REASON, T0)
    assert queue.lease("r2", POLICY, T0 + datetime.timedelta(hours=1)) is None
    assert queue.complete(job.id, {"error": "late", **holder}, [], POLICY, T0) == "duplicate"
    assert Version.get_by_id(job.id).error == REASON


def test_unresolved_versions_are_counted_and_listed_by_status(db):
    job = leased_job()
    queue.complete(job.id, {"error": REASON, "unresolved": True, "runner": "r1", "lease": job.lease_token}, [],
                   POLICY, T0)
    assert status.version_counts()["unresolved"] == 1
    (failure,) = status.recent_failures()
    assert (failure["package"], failure["state"], failure["error"]) == ("zero-install", "unresolved", REASON)


def test_a_plain_source_error_is_still_a_failure(db):
    job = leased_job()
    assert queue.complete(job.id, {"error": "SHA-256 mismatch", "runner": "r1", "lease": job.lease_token}, [],
                          POLICY, T0) == "failed"
    assert Version.get_by_id(job.id).state == "failed"
