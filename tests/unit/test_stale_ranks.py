"""Ranks never go stale: a version's ranks are those of one run with all its stored analyzers,
however many runs stored them, and a version analyzed late updates the survival (and so the rank)
of the versions after it.

Each scenario is stored through kiskadee's own ``record_analysis`` (as ``kiskadee analyze``
stores it) into a real SQLite file, and compared, read back with the sqlite3 module, with the
same results stored the straightforward way: every analyzer in one run, versions oldest first.
"""

import contextlib
import sqlite3

from builders import finding, ranked_runs

from kiskadee.core.runs import AnalyzerRun
from kiskadee.store.db import open_database, write_transaction
from kiskadee.store.prune import prune
from kiskadee.store.queue import record_analysis
from kiskadee.store.models import Version
from kiskadee.store.results import VersionKey, get_version, rerank, store_runs

# (analyzer, path, line, check id, severity, CWEs): two analyzers next to cppcheck's null
# dereference in parse.c, clang agreeing with cppcheck on the leak in io.c.
WIDGET = [
    ("cppcheck", "src/parse.c", 40, "nullPointer", "high", (476,)),
    ("cppcheck", "src/parse.c", 90, "unusedFunction", "low", ()),
    ("cppcheck", "src/io.c", 12, "memleak", "medium", (401,)),
    ("flawfinder", "src/parse.c", 41, "buffer.strcpy", "high", (120,)),
    ("flawfinder", "src/io.c", 30, "buffer.char", "low", (119, 120)),
    ("flawfinder", "src/util.c", 5, "format.printf", "medium", (134,)),
    ("clang", "src/parse.c", 40, "core.NullDereference", "high", (476,)),
    ("clang", "src/io.c", 12, "unix.Malloc", "medium", (401,)),
]
NULL_DEREFERENCE = ("clang", "core.NullDereference")


def widget(leave_out=(), add=()):
    """Fresh findings of widget by analyzer (ranking sets each finding's rank in place)."""
    by_analyzer = {}
    for analyzer, path, line, check_id, severity, cwes in WIDGET + list(add):
        if check_id not in leave_out:
            by_analyzer.setdefault(analyzer, []).append(finding(analyzer, path, line, check_id, severity, cwes))
    return by_analyzer


@contextlib.contextmanager
def database(path):
    db = open_database(str(path))
    try:
        yield db
    finally:
        db.close()


def store(db, number, runs):
    return record_analysis(VersionKey("directory", "widget", number), runs, db=db)


def ranks(path):
    """(version, analyzer, check id) -> (rank, survived) of every finding in the file at ``path``."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        rows = connection.execute(
            "SELECT v.number, az.name, f.check_id, f.rank, f.survived FROM finding f"
            " JOIN analysis a ON a.id = f.analysis_id JOIN analyzer az ON az.id = a.analyzer_id"
            " JOIN version v ON v.id = a.version_id").fetchall()
    return {(number, analyzer, check_id): (rank, survived) for number, analyzer, check_id, rank, survived in rows}


def previous_versions(path):
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return dict(connection.execute(
            "SELECT v.number, pv.number FROM version v LEFT JOIN version pv ON pv.id = v.previous_id"))


def test_a_version_analyzed_in_three_runs_ranks_as_one_run_with_all_three(tmp_path):
    with database(tmp_path / "together.db") as db:
        store(db, "1.0", ranked_runs(widget()))
    with database(tmp_path / "separately.db") as db:
        for analyzer, findings in widget().items():      # analyze --analyzers cppcheck, then flawfinder, then clang
            store(db, "1.0", ranked_runs({analyzer: findings}))
    together, separately = ranks(tmp_path / "together.db"), ranks(tmp_path / "separately.db")
    assert separately == together and len(together) == len(WIDGET)
    alone = ranked_runs({"clang": widget()["clang"]})[0].findings[0]
    assert together[("1.0", *NULL_DEREFERENCE)][0] > alone.rank     # two other analyzers agree with it


def test_ranks_follow_when_one_analyzer_is_analyzed_again(tmp_path):
    """clang run again (``analyze --analyzers clang``) finds nothing: cppcheck and flawfinder
    lose its agreement, as if the three had run together with clang finding nothing."""
    with database(tmp_path / "again.db") as db:
        store(db, "1.0", ranked_runs(widget()))
        store(db, "1.0", [AnalyzerRun("clang", "1.0", "ok")])
    with database(tmp_path / "together.db") as db:
        store(db, "1.0", ranked_runs(widget(leave_out={"core.NullDereference", "unix.Malloc"}))
              + [AnalyzerRun("clang", "1.0", "ok")])
    again, together = ranks(tmp_path / "again.db"), ranks(tmp_path / "together.db")
    assert again == together and ("1.0", *NULL_DEREFERENCE) not in again


def releases():
    """widget 1.0, 1.1 (fixed its format string) and 1.2 (a new leak), each analyzed by all three."""
    new_leak = [("cppcheck", "src/net.c", 7, "memleakOnRealloc", "medium", (401,))]
    return {"1.0": widget(), "1.1": widget(leave_out={"format.printf"}),
            "1.2": widget(leave_out={"format.printf"}, add=new_leak)}


def test_a_version_analyzed_late_updates_survival_and_rank_of_the_later_ones(tmp_path):
    with database(tmp_path / "in-order.db") as db:
        for number, findings in releases().items():
            store(db, number, ranked_runs(findings))
    for order in (("1.1", "1.2", "1.0"), ("1.0", "1.2", "1.1"), ("1.2", "1.1", "1.0")):
        late = tmp_path / f"late-{'-'.join(order)}.db"
        with database(late) as db:
            findings = releases()
            for number in order:
                store(db, number, ranked_runs(findings[number]))
        assert ranks(late) == ranks(tmp_path / "in-order.db"), order
        assert previous_versions(late) == {"1.0": None, "1.1": "1.0", "1.2": "1.1"}, order
    survived = {key: value[1] for key, value in ranks(tmp_path / "in-order.db").items()}
    assert survived[("1.2", *NULL_DEREFERENCE)] == 2 and survived[("1.2", "cppcheck", "memleakOnRealloc")] == 0
    assert survived[("1.1", *NULL_DEREFERENCE)] == 1


def test_a_late_version_whose_analyzers_all_failed_changes_no_later_survival(tmp_path):
    with database(tmp_path / "failed.db") as db:
        findings = releases()
        store(db, "1.1", ranked_runs(findings["1.1"]))
        store(db, "1.2", ranked_runs(findings["1.2"]))
        before = ranks(tmp_path / "failed.db")
        store(db, "1.0", [AnalyzerRun(name, "1.0", "failed", error="exited with status 1") for name in findings["1.0"]])
    assert ranks(tmp_path / "failed.db") == before
    assert previous_versions(tmp_path / "failed.db") == {"1.0": None, "1.1": None, "1.2": "1.1"}


def test_prune_ranks_again_the_versions_whose_survival_it_recounted(tmp_path):
    with database(tmp_path / "pruned.db") as db:
        findings = releases()
        store(db, "1.0", ranked_runs(findings["1.0"]))
        latest = store(db, "1.1", ranked_runs(findings["1.1"]))
        before = ranks(tmp_path / "pruned.db")
        prune(db, 1)
        with write_transaction(db):
            unchanged = rerank(latest.id)
    with database(tmp_path / "alone.db") as db:
        store(db, "1.1", ranked_runs(releases()["1.1"]))
    assert before != ranks(tmp_path / "alone.db") == ranks(tmp_path / "pruned.db")
    assert unchanged == 0


def test_a_sites_priors_table_ranks_what_is_stored_and_reranking_applies_it_to_the_rest(tmp_path):
    with database(tmp_path / "site.db") as db:
        findings = releases()
        store(db, "1.0", ranked_runs(findings["1.0"]))
        shipped = ranks(tmp_path / "site.db")
        distrusted = {analyzer: {"real": 0, "total": 1000, "checks": {}} for analyzer in findings["1.0"]}
        with write_transaction(db):
            version = get_version(VersionKey("directory", "widget", "1.1"))
            store_runs(version, ranked_runs(findings["1.1"]), table=distrusted)
        with write_transaction(db):
            changed = rerank(Version.get(Version.number == "1.0").id, table=distrusted)
    site = ranks(tmp_path / "site.db")
    assert changed > 0
    assert all(site[key] < shipped[key] for key in shipped)     # every analyzer now counts as mostly wrong
