"""The version state machine: every move the table allows, through kiskadee.store.queue on a real
SQLite file; moves it forbids raise; 'kiskadee retry' and the release history follow the same enums."""

import datetime
import itertools

import pytest

from kiskadee.core.findings import Finding
from kiskadee.core.runs import AnalyzerRun
from kiskadee.core.states import (COMPLETED, RETRYABLE, TRANSITIONS, AnalysisStatus, ForbiddenTransition, VersionState,
                                  check_transition)
from kiskadee.errors import UsageError
from kiskadee.results import diff
from kiskadee.store import lineage, queue, retry, sql
from kiskadee.store.catalog import Catalog
from kiskadee.store.models import Version
from kiskadee.store.results import VersionKey

pytestmark = pytest.mark.both_databases

S = VersionState
T0 = datetime.datetime(2026, 11, 28, 12, 0, 0)
POLICY = queue.QueuePolicy(lease_seconds=60, max_attempts=3, backoff_seconds=10)
KEY = VersionKey("debian", "hello", "2.10-3")
TOKEN = "0f" * 16                   # the lease token of a version left leased by r1
HOLDER = {"runner": "r1", "lease": TOKEN}
ALLOWED = sorted((old, new) for old, targets in TRANSITIONS.items() for new in targets)
FORBIDDEN = sorted(set(itertools.product(S, S)) - set(ALLOWED))


def version_in(db, state: VersionState) -> int:
    """A version recorded by the monitor's catalog, then left in ``state`` as an earlier run would leave it."""
    catalog = Catalog(POLICY)
    catalog.record({"fetcher": KEY.fetcher, "package": KEY.package, "version": KEY.version}, T0)
    catalog.flush()
    leased = state == S.LEASED
    sql.execute("UPDATE version SET state = ?, attempts = ?, leased_by = ?, lease_token = ?",
                state.value, int(leased), "r1" if leased else "", TOKEN if leased else "")
    return Version.get().id


def ok_run():
    finding = Finding(path="src/a.c", line=3, check_id="nullPointer", severity="high", message="m",
                      fingerprint="f" * 32)
    return AnalyzerRun("cppcheck", "2.10", AnalysisStatus.OK.value, 1.0, findings=[finding])


# How each allowed move happens: the runner's protocol, 'kiskadee analyze' and 'kiskadee retry'.
def _lease(db, job_id):
    assert queue.lease("r1", POLICY, T0).id == job_id


def _release(db, job_id):
    queue.release(Version.get_by_id(job_id))


def _result(db, job_id):
    assert queue.complete(job_id, {"source_url": "http://mirror/x.tar.gz", **HOLDER}, [ok_run()], POLICY, T0) == "stored"


def _error(db, job_id):
    assert queue.complete(job_id, {"error": "checksum mismatch", **HOLDER}, [], POLICY, T0) == "failed"


def _unresolved(db, job_id):
    assert queue.complete(job_id, {"error": "no resolver", "unresolved": True, **HOLDER}, [], POLICY, T0) == "unresolved"


def _analyze_ok(db, job_id):
    assert queue.record_analysis(KEY, [ok_run()], db=db).id == job_id


def _analyze_failed(db, job_id):
    run = AnalyzerRun("cppcheck", "2.10", AnalysisStatus.TIMEOUT.value, error="exceeded its timeout of 1 s")
    assert queue.record_analysis(KEY, [run], db=db).id == job_id


def _retry(db, job_id):
    state = Version.get_by_id(job_id).state
    assert [r.version for r in retry.requeue(KEY.package, states=[state], now=T0)] == [KEY.version]


MOVES = {
    (S.QUEUED, S.LEASED): _lease, (S.LEASED, S.QUEUED): _release,
    **{(old, S.QUEUED): _retry for old in RETRYABLE},
    (S.LEASED, S.DONE): _result, (S.LEASED, S.FAILED): _error, (S.LEASED, S.UNRESOLVED): _unresolved,
    **{(old, S.DONE): _analyze_ok for old in (S.SEEN, S.QUEUED, S.DONE, S.FAILED, S.UNRESOLVED)},
    **{(old, S.FAILED): _analyze_failed for old in (S.SEEN, S.QUEUED, S.DONE, S.FAILED, S.UNRESOLVED)},
}


def test_each_allowed_move_has_a_way_here_and_nothing_else_does():
    assert sorted(MOVES) == ALLOWED


@pytest.mark.parametrize("old, new", ALLOWED, ids=[f"{old}-{new}" for old, new in ALLOWED])
def test_every_allowed_move_is_made_by_the_queue(db, old, new):
    job_id = version_in(db, old)
    MOVES[(old, new)](db, job_id)
    assert Version.get_by_id(job_id).state == new.value


@pytest.mark.parametrize("old, new", FORBIDDEN, ids=[f"{old}-{new}" for old, new in FORBIDDEN])
def test_a_forbidden_move_raises(old, new):
    with pytest.raises(ForbiddenTransition, match=f"from {old} to {new}"):
        check_transition(old, new)


def test_nothing_goes_back_to_seen_and_only_a_queued_job_is_leased():
    assert all(S.SEEN not in targets for targets in TRANSITIONS.values())
    assert [old for old, targets in TRANSITIONS.items() if S.LEASED in targets] == [S.QUEUED]


@pytest.mark.parametrize("state", [S.QUEUED, S.LEASED])
def test_a_job_in_the_queue_is_not_re_queued_as_new_and_keeps_its_lease(db, state):
    job_id = version_in(db, state)
    with pytest.raises(ForbiddenTransition, match=f"a {state} version cannot be re-queued"):
        queue.retry(Version.select(), T0)
    stored = Version.get_by_id(job_id)
    assert (stored.state, stored.leased_by) == (state.value, "r1" if state == S.LEASED else "")
    with pytest.raises(UsageError, match=f"cannot re-queue versions in state {state}"):
        retry.requeue(states=[state.value])


def test_retry_states_are_the_enums():
    assert retry.DEFAULT_STATES == ("failed", "unresolved")
    assert sorted(retry.STATES) == sorted(state.value for state in RETRYABLE)
    assert {S(state) for state in retry.STATES} == set(S) - {S.QUEUED, S.LEASED}


def test_members_behave_as_the_strings_the_database_holds(db):
    job_id = version_in(db, S.FAILED)
    stored = Version.get_by_id(job_id).state                  # a plain str, read back from SQLite
    assert stored == S.FAILED and stored in {S.FAILED} and {S.FAILED: 1}[stored] == 1
    assert f"{S.FAILED} {AnalysisStatus.SKIPPED}" == "failed skipped"
    assert Version.select().where(Version.state == S.FAILED).count() == 1


def store(db, number, status, *fingerprints):
    findings = [Finding(path="src/a.c", line=n, check_id="nullPointer", severity="high", message="m",
                        fingerprint=fingerprint) for n, fingerprint in enumerate(fingerprints)]
    run = AnalyzerRun("cppcheck", "2.10", status.value, findings=findings)
    return queue.record_analysis(VersionKey("local", "widget", number), [run], db=db)


def test_a_skipped_analysis_is_not_completed_for_the_history_nor_the_release_views(db):
    """1.1 shipped no C file (a documentation tarball): cppcheck skipped it. 1.2 is compared with 1.0,
    so a finding 1.0 had is neither fixed in 1.1 nor new again in 1.2."""
    assert COMPLETED == (AnalysisStatus.OK,)
    old = store(db, "1.0", AnalysisStatus.OK, "aa")
    skipped = store(db, "1.1", AnalysisStatus.SKIPPED)
    new = store(db, "1.2", AnalysisStatus.OK, "aa", "bb")
    assert skipped.state == "done"                             # analyzed as far as the queue goes
    assert [number for _, number in lineage.analyzed_versions(new.package)] == ["1.0", "1.2"]
    assert lineage.previous_analyzed(new).id == old.id
    assert Version.get_by_id(new.id).previous_id == old.id
    assert list(db.execute_sql("SELECT version, previous_version, fingerprint, survived FROM new_finding")) == [
        ("1.2", "1.0", "bb", 0)]
    assert list(db.execute_sql("SELECT version FROM fixed_finding")) == []
    assert list(db.execute_sql("SELECT survived FROM finding_detail d JOIN finding f ON f.id = d.id"
                               " WHERE d.version = '1.2' AND d.fingerprint = 'aa'")) == [(1,)]


def test_kiskadee_diff_does_not_compare_an_analyzer_that_skipped_either(db):
    """Asked for 1.1 (cppcheck skipped) against 1.0, the diff lists 1.0's finding as not analyzed, not fixed."""
    old = store(db, "1.0", AnalysisStatus.OK, "aa")
    skipped = store(db, "1.1", AnalysisStatus.SKIPPED)
    result = diff.compare(old, skipped)
    assert (result.new_ids, result.fixed_ids, len(result.not_analyzed_ids)) == ([], [], 1)
