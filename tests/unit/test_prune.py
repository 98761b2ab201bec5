"""Retention (``kiskadee prune``) on real databases (SQLite and PostgreSQL), with results stored through
kiskadee's own ``record_analysis`` as ``kiskadee analyze`` and the monitor store them."""

import pytest
from harness import run_kiskadee

from kiskadee.core.findings import Finding
from kiskadee.core.runs import AnalyzerRun
from kiskadee.store import queue
from kiskadee.store.models import Analysis, Finding as FindingRow, Version, utcnow
from kiskadee.store.prune import prune
from kiskadee.store.queue import record_analysis
from kiskadee.store.results import VersionKey

pytestmark = pytest.mark.both_databases


def store(db, number, *fingerprints, package="widget"):
    findings = [Finding(path="a.c", line=i, check_id="nullPointer", severity="high", message="m", fingerprint=f)
                for i, f in enumerate(fingerprints)]
    return record_analysis(VersionKey("local", package, number), [AnalyzerRun("cppcheck", "2.10", "ok", findings=findings)],
                           db=db)


def survived(number, package="widget"):
    return {row.fingerprint: row.survived for row in FindingRow.select().join(Analysis).join(Version)
            .where(Version.number == number)}


def test_keeps_the_last_versions_and_keeps_lineage_and_survival_consistent(db):
    for number in ("1.0", "1.1", "1.2", "1.3"):
        store(db, number, "aa", "bb" if number != "1.2" else "cc")
    assert survived("1.3") == {"aa": 3, "bb": 2}
    report = prune(db, 2)
    assert [(v.number, v.analyses, v.findings) for v in report.pruned] == [("1.0", 1, 2), ("1.1", 1, 2)]
    assert not Analysis.select().join(Version).where(Version.number.in_(["1.0", "1.1"])).exists()
    assert Version.select().count() == 4            # the rows stay: the catalog does not queue them again
    versions = {v.number: v for v in Version.select()}
    assert versions["1.2"].previous_id is None and versions["1.3"].previous_id == versions["1.2"].id
    assert versions["1.0"].previous_id is None and versions["1.1"].previous_id is None
    assert survived("1.2") == {"aa": 0, "cc": 0} and survived("1.3") == {"aa": 1, "bb": 0}
    store(db, "1.4", "aa", "bb")                    # the next version counts from what remains
    assert survived("1.4") == {"aa": 2, "bb": 1}


def test_dry_run_changes_nothing(db):
    for number in ("1.0", "1.1"):
        store(db, number, "aa")
    assert [v.number for v in prune(db, 1, dry_run=True).pruned] == ["1.0"]
    assert Analysis.select().count() == 2 and survived("1.1") == {"aa": 1}


def test_never_prunes_the_newest_or_a_version_in_the_queue(db):
    for number in ("1.0", "1.1", "1.2"):
        store(db, number, "aa")
    queue.retry(Version.select().where(Version.number == "1.0"), utcnow())     # queued again
    report = prune(db, 1, package="widget")
    assert [v.number for v in report.pruned] == ["1.1"] and [(v.number, v.state) for v in report.held] == [("1.0", "queued")]
    assert {v.version.number for v in Analysis.select().join(Version)} == {"1.0", "1.2"}
    assert survived("1.2") == {"aa": 1}
    assert [v.number for v in prune(db, 1, package="other").pruned] == []


def test_the_command(db):
    for number in ("1.0", "1.1", "1.2"):
        store(db, number, "aa")
    path = db.database
    dry = run_kiskadee("prune", "--db", path, "--keep", "1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would prune widget 1.0 (local): 1 analyses, 1 findings" in dry.stdout
    assert Analysis.select().count() == 3
    assert run_kiskadee("prune", "--db", path, "--keep", "0").returncode == 2
    done = run_kiskadee("prune", "--db", path, "--keep", "1")
    assert done.returncode == 0, done.stderr
    assert "pruned 2 versions of 1 packages: 2 analyses, 2 findings" in done.stdout
    assert Analysis.select().count() == 1
