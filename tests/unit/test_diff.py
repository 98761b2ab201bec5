"""Release diffs, the package's history and waivers, on real SQLite files.

The analyzer runs are written by hand (what a runner would report) and stored
through kiskadee's own ``record_analysis``, as ``kiskadee analyze`` and the
monitor store them.
"""

import random

import pytest
from harness import other_connection

from kiskadee.core import ranking
from kiskadee.core.findings import Finding
from kiskadee.core.runs import AnalyzerRun
from kiskadee.errors import NotFoundError, UsageError
from kiskadee.results import diff
from kiskadee.store import lineage, queries, waivers
from kiskadee.store.models import Version
from kiskadee.store.queue import record_analysis
from kiskadee.store.results import VersionKey

pytestmark = pytest.mark.both_databases


def finding(fingerprint, line=10, check="nullPointer", path="src/a.c", rank=3.0):
    return Finding(path=path, line=line, check_id=check, severity="high", message=f"{check} here",
                   fingerprint=fingerprint, rank=rank)


def run(analyzer, *findings, status="ok", tool_version="2.10", error=""):
    return AnalyzerRun(analyzer, tool_version, status, error=error, findings=list(findings))


def store(db, number, *runs, package="widget", fetcher="local"):
    return record_analysis(VersionKey(fetcher, package, number), list(runs), db=db)


def fingerprints(ids):
    return sorted(f["fingerprint"] for f in diff.findings(ids, {}))


def test_moved_findings_are_unchanged_and_changes_are_new_or_fixed(db):
    old = store(db, "1.0", run("cppcheck", finding("aa", 10), finding("bb", 20), finding("cc", 30)))
    new = store(db, "1.1", run("cppcheck", finding("aa", 15), finding("bb", 27), finding("dd", 40)))
    result = diff.compare(old, new)
    assert fingerprints(result.new_ids) == ["dd"]
    assert fingerprints(result.fixed_ids) == ["cc"]
    assert fingerprints(result.unchanged_ids()) == ["aa", "bb"]
    assert result.not_analyzed_ids == []
    assert [c.note("1.0", "1.1") for c in result.comparisons] == [""]


def test_analyzer_that_failed_in_the_newer_run_fixes_nothing(db):
    old = store(db, "1.0", run("cppcheck", finding("aa"), finding("bb", 20)), run("flawfinder", finding("ff")))
    new = store(db, "1.1", run("cppcheck", status="failed", error="exited with status 1: oops"),
                run("flawfinder", finding("ff", 12)))
    result = diff.compare(old, new)
    assert result.fixed_ids == [] and result.new_ids == []
    assert fingerprints(result.not_analyzed_ids) == ["aa", "bb"]
    assert fingerprints(result.unchanged_ids()) == ["ff"]
    cppcheck, flawfinder = result.comparisons
    assert not cppcheck.compared and flawfinder.compared
    assert cppcheck.note("1.0", "1.1") == "not compared: failed on 1.1"
    data = diff.as_data(result)
    assert data["counts"] == {"new": 0, "fixed": 0, "unchanged": 1, "moved": 0, "not_analyzed": 2}
    assert {f["version"] for f in data["not_analyzed_findings"]} == {"1.0"}


def test_analyzer_that_timed_out_or_did_not_run_in_the_older_run_makes_nothing_new(db):
    old = store(db, "1.0", run("cppcheck", status="timeout", error="exceeded its timeout of 1 s"))
    new = store(db, "1.1", run("cppcheck", finding("aa")), run("flawfinder", finding("ff")))
    result = diff.compare(old, new)
    assert result.new_ids == []
    assert fingerprints(result.not_analyzed_ids) == ["aa", "ff"]
    notes = {c.analyzer: c.note("1.0", "1.1") for c in result.comparisons}
    assert notes == {"cppcheck": "not compared: timeout on 1.0", "flawfinder": "not compared: did not run on 1.0"}


def test_a_changed_tool_version_is_compared_but_flagged(db):
    old = store(db, "1.0", run("cppcheck", finding("aa"), tool_version="2.10"))
    new = store(db, "1.1", run("cppcheck", finding("aa"), finding("bb"), tool_version="2.11"))
    result = diff.compare(old, new)
    assert fingerprints(result.new_ids) == ["bb"]
    (comparison,) = result.comparisons
    assert comparison.compared and comparison.version_changed
    assert "2.10 -> 2.11" in comparison.note("1.0", "1.1")


def test_old_defaults_to_the_previous_analyzed_version_by_the_fetchers_rules(db):
    for number in ("1.10-1", "1.9-2", "1.10~rc1-1"):          # stored out of order
        store(db, number, run("cppcheck", finding("aa")), fetcher="debian")
    store(db, "1.10~rc2-1", run("cppcheck", status="failed", error="crashed"), fetcher="debian")
    old, new = diff.resolve("widget", ["1.10-1"])
    assert (old.number, new.number) == ("1.10~rc1-1", "1.10-1")    # 1.10~rc2-1 was never analyzed
    previous = {v.number: v.previous.number if v.previous else None for v in Version.select()}
    assert previous == {"1.9-2": None, "1.10~rc1-1": "1.9-2", "1.10~rc2-1": "1.10~rc1-1",
                        "1.10-1": "1.10~rc1-1"}
    with pytest.raises(NotFoundError, match="before 1.9-2"):
        diff.resolve("widget", ["1.9-2"])
    old, new = diff.resolve("widget", ["1.9-2", "1.10-1"])
    assert (old.number, new.number) == ("1.9-2", "1.10-1")


def test_a_version_its_fetchers_rules_reject_is_still_stored(db):
    store(db, "1.0-1", run("cppcheck", finding("aa")), fetcher="debian")
    odd = store(db, "2.0 beta", run("cppcheck", finding("aa")), fetcher="debian")   # no spaces in Debian versions
    assert odd.previous.number == "1.0-1"
    assert queries.version_report(odd)["findings"][0]["survived"] == 1


def test_upstream_versions_follow_pep440(db):
    for number in ("2.0", "2.0rc1", "1.10"):
        store(db, number, run("cppcheck", finding("aa")))
    assert diff.resolve("widget", ["2.0"])[0].number == "2.0rc1"
    assert diff.resolve("widget", ["2.0rc1"])[0].number == "1.10"


def test_survival_counts_earlier_releases_and_lowers_the_rank(db):
    store(db, "1", run("cppcheck", finding("aa"), finding("bb")))
    store(db, "2", run("cppcheck", finding("aa"), finding("bb")))
    store(db, "3", run("cppcheck", finding("aa"), finding("cc")))
    latest = store(db, "4", run("cppcheck", finding("aa"), finding("bb"), finding("cc")))
    rows = {f["fingerprint"]: f for f in queries.version_report(latest)["findings"]}
    assert {fp: f["survived"] for fp, f in rows.items()} == {"aa": 3, "bb": 2, "cc": 1}
    first = queries.version_report(Version.get(Version.number == "1"))["findings"]
    assert {f["survived"] for f in first} == {0} and len({f["rank"] for f in first}) == 1
    fresh = first[0]["rank"]        # the same check, severity and file: the same rank but for survival
    assert rows["aa"]["rank"] < rows["bb"]["rank"] < rows["cc"]["rank"] < fresh
    assert rows["aa"]["rank"] == ranking.with_survival(fresh, 3)


def test_survival_of_a_version_analyzed_between_two_others(db):
    store(db, "1", run("cppcheck", finding("aa")))
    store(db, "3", run("cppcheck", finding("aa")))
    middle = store(db, "2", run("cppcheck", finding("aa")))
    assert lineage.previous_analyzed(Version.get(Version.number == "3")).number == "2"
    assert [f["survived"] for f in queries.version_report(middle)["findings"]] == [1]


def view(location, name, version):
    with other_connection(location) as connection:
        return sorted(r[0] for r in connection.rows(
            f"SELECT fingerprint FROM {name} WHERE package = 'widget' AND version = ?", version))


def test_new_and_fixed_views_agree_with_diff_and_ignore_failed_runs(db, tmp_path):
    store(db, "1.0", run("cppcheck", finding("aa"), finding("cc")), run("flawfinder", finding("ff")))
    store(db, "1.1", run("cppcheck", finding("aa"), finding("dd")), run("flawfinder", status="failed"))
    store(db, "1.2", run("cppcheck", finding("dd")), run("flawfinder", finding("ff"), finding("gg")))
    path = db.database
    assert view(path, "new_finding", "1.1") == ["dd"]
    assert view(path, "fixed_finding", "1.1") == ["cc"]
    assert view(path, "new_finding", "1.2") == []       # flawfinder failed on 1.1: nothing to compare
    assert view(path, "fixed_finding", "1.2") == ["aa"]
    assert view(path, "new_finding", "1.0") == []       # nothing before 1.0
    result = diff.compare(*diff.resolve("widget", ["1.1"]))
    assert fingerprints(result.new_ids) == ["dd"] and fingerprints(result.fixed_ids) == ["cc"]


def test_a_waiver_holds_for_every_version_with_the_fingerprint(db):
    full = "0123456789abcdef0123456789abcdef"
    store(db, "1.0", run("cppcheck", finding(full), finding("0123ffff" + "0" * 24, 20)))
    later = store(db, "1.1", run("cppcheck", finding(full, 30)))
    target, replaced = waivers.waive("0123456789", "false-positive", "checked by hand", author="ana")
    assert (target.package, target.fingerprint, replaced) == ("widget", full, False)
    shown = queries.version_report(later)["findings"][0]
    assert shown["waiver"]["kind"] == "false-positive" and shown["waiver"]["comment"] == "checked by hand"
    assert shown["waiver"]["author"] == "ana"
    data = diff.as_data(diff.compare(*diff.resolve("widget", ["1.1"])), unchanged=True)
    assert data["unchanged_findings"][0]["waiver"]["kind"] == "false-positive"
    assert waivers.waive(full, "bug", "")[1] is True             # a new verdict replaces the old one
    assert queries.version_report(later)["findings"][0]["waiver"]["kind"] == "bug"
    waivers.remove(full[:8])
    assert queries.version_report(later)["findings"][0]["waiver"] is None
    with pytest.raises(NotFoundError):
        waivers.remove(full)


def test_waive_refuses_what_it_cannot_pin_down(db):
    store(db, "1.0", run("cppcheck", finding("abcdef01" + "0" * 24), finding("abcdef02" + "0" * 24, 20)))
    store(db, "1.0", run("cppcheck", finding("feedbeef" + "0" * 24)), package="gadget")
    store(db, "2.0", run("cppcheck", finding("feedbeef" + "0" * 24)), package="gizmo")
    with pytest.raises(UsageError, match="ambiguous"):
        waivers.waive("abcdef0", "intentional")
    with pytest.raises(UsageError, match="several packages"):
        waivers.waive("feedbeef", "intentional")
    assert waivers.waive("feedbeef", "intentional", package="gizmo")[0].package == "gizmo"
    with pytest.raises(NotFoundError):
        waivers.waive("99999999", "bug")
    with pytest.raises(UsageError, match="not a fingerprint"):
        waivers.waive("abc", "bug")
    with pytest.raises(UsageError, match="unknown waiver kind"):
        waivers.waive("abcdef01", "wontfix")


def test_show_top_n_is_the_head_of_the_full_ranking(db):
    """'show --top N' merges the best of each analysis and severity; it must equal sorting them all."""
    rng = random.Random(3)
    runs = [run(name, *[Finding(path=f"src/{n % 7}.c", line=n, check_id="c", message="m",
                                severity=rng.choice(("high", "medium", "low", "info")),
                                fingerprint=f"{name}{n}", rank=round(rng.uniform(-2, 8), 1))
                        for n in range(300)]) for name in ("cppcheck", "flawfinder")]
    version = store(db, "1.0", *runs)
    everything = [(f["rank"], f["path"], f["line"], f["fingerprint"]) for f in queries.version_report(version)["findings"]]
    assert everything == sorted(everything, key=lambda f: (-f[0], f[1], f[2])) and len(everything) == 600
    for top in (1, 20, 599, 1000):
        best = [(f["rank"], f["path"], f["line"], f["fingerprint"])
                for f in queries.version_report(version, top=top)["findings"]]
        assert [b[:3] for b in best] == [e[:3] for e in everything[:top]]


def test_diff_needs_analyzed_versions(db):
    store(db, "1.0", run("cppcheck", finding("aa")))
    Version.create(package=Version.get().package, number="1.1", state="queued")
    with pytest.raises(NotFoundError, match="not been analyzed"):
        diff.compare(*diff.resolve("widget", ["1.0", "1.1"]))
    with pytest.raises(NotFoundError):
        diff.resolve("widget", ["0.9", "1.0"])
    with pytest.raises(UsageError):
        diff.resolve("widget", ["1.0", "1.1", "1.2"])


def renamed(path, *fingerprints, lines=(10, 20)):
    """A version whose flawfinder findings sit in ``path``, and an unchanged one in src/main.c."""
    return run("flawfinder", finding("c0ffee00", 5, check="buffer.strcpy", path="src/main.c"),
               *(finding(fp, line, check="buffer.memcpy", path=path) for fp, line in zip(fingerprints, lines)))


def test_findings_of_a_renamed_file_are_moved_not_new_and_fixed(db):
    old = store(db, "1.0", renamed("src/lib.cpp", "aaaaaa01", "aaaaaa02"))
    new = store(db, "1.1", renamed("src/lib.c", "bbbbbb01", "bbbbbb02", lines=(12, 25)))
    result = diff.compare(old, new)
    assert result.new_ids == [] and result.fixed_ids == []
    assert result.counts() == {"new": 0, "fixed": 0, "unchanged": 3, "moved": 2, "not_analyzed": 0}
    assert fingerprints(result.unchanged_ids()) == ["bbbbbb01", "bbbbbb02", "c0ffee00"]
    moved = diff.as_data(result)["moved_findings"]
    assert [(f["moved_from"]["path"], f["moved_from"]["line"], f["path"], f["line"]) for f in moved] == [
        ("src/lib.cpp", 10, "src/lib.c", 12), ("src/lib.cpp", 20, "src/lib.c", 25)]
    assert [f["moved_from"]["fingerprint"] for f in moved] == ["aaaaaa01", "aaaaaa02"]


def test_a_waiver_given_after_both_versions_follows_the_finding_where_it_moved(db):
    store(db, "1.0", renamed("src/lib.cpp", "aaaaaa01", "aaaaaa02"))
    later = store(db, "1.1", renamed("src/lib.c", "bbbbbb01", "bbbbbb02", lines=(12, 25)))
    store(db, "1.2", renamed("lib/lib.c", "cccccc01", "cccccc02", lines=(12, 25)))
    waivers.waive("aaaaaa02", "false-positive", "len checked above", author="ana")
    shown = {f["fingerprint"]: f["waiver"] for f in queries.version_report(later)["findings"]}
    assert shown["bbbbbb02"]["comment"] == "len checked above" and shown["bbbbbb01"] is None
    assert set(waivers.for_package(later.package_id)) == {"aaaaaa02", "bbbbbb02", "cccccc02"}
    waivers.waive("aaaaaa02", "bug", "it is not checked")        # a new verdict replaces the copies of the old
    assert {w["kind"] for w in waivers.for_package(later.package_id).values()} == {"bug"}


def test_a_waiver_given_before_the_new_version_shows_in_diff_and_is_carried_when_stored(db):
    old = store(db, "1.0", renamed("src/lib.cpp", "aaaaaa01", "aaaaaa02"))
    waivers.waive("aaaaaa01", "intentional", "a fixed-size copy")
    new = store(db, "1.1", renamed("src/lib.c", "bbbbbb01", "bbbbbb02", lines=(12, 25)))
    data = diff.as_data(diff.compare(old, new), unchanged=True)
    assert [f["waiver"] and f["waiver"]["kind"] for f in data["moved_findings"]] == ["intentional", None]
    assert {f["fingerprint"]: bool(f["waiver"]) for f in data["unchanged_findings"]} == {
        "bbbbbb01": True, "bbbbbb02": False, "c0ffee00": False}
    assert waivers.carry(new) == 0          # storing the version carried it already (kiskadee.store.results)
    assert waivers.for_package(new.package_id)["bbbbbb01"]["comment"] == "a fixed-size copy"
