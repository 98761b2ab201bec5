"""`kiskadee diff` on a small synthetic pair whose every change is known, with real analyzers.

widget 1.1 (tests/fixtures/synthetic) renames the top directory, moves every
line, swaps functions and re-indents a flagged line; it fixes the null
pointer dereference of 1.0 and adds a function that leaks memory and opens a
file. widget 1.2 is the same tree analyzed with a cppcheck that fails.
"""

import json
import sqlite3
import tarfile

import pytest
from harness import FIXTURES, run_kiskadee

SYNTHETIC = FIXTURES / "synthetic"
MOVED = {("cppcheck", "arrayIndexOutOfBounds"), ("cppcheck", "constVariable"), ("flawfinder", "buffer.strcpy"),
         ("flawfinder", "format.printf"), ("flawfinder", "buffer.char")}


def release_tarball(work, version, top=None):
    """widget VERSION as a tarball whose top directory is ``top`` (default widget-VERSION)."""
    top = top or f"widget-{version}"
    tarball = work / f"{top}.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(SYNTHETIC / f"widget-{version}", arcname=top)
    return tarball


@pytest.fixture(scope="module")
def widget(tmp_path_factory):
    work = tmp_path_factory.mktemp("widget")
    db = work / "kiskadee.db"
    for version in ("1.0", "1.1"):
        result = run_kiskadee("analyze", release_tarball(work, version), "--db", db)
        assert result.returncode == 0, result.stderr
    broken = work / "broken.toml"
    broken.write_text('[analyzers.cppcheck]\nextra_args = ["--no-such-option"]\n')
    tarball = release_tarball(work, "1.1", top="widget-1.2")
    result = run_kiskadee("analyze", tarball, "--db", db, config=broken)
    assert result.returncode == 1 and "failed" in result.stdout, result.stderr
    return db


def diff(db, *args, fmt="json"):
    result = run_kiskadee("diff", "widget", *args, "--format", fmt, "--all", "--db", db)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if fmt == "json" else result.stdout


def kinds(findings):
    return {(f["analyzer"], f["check_id"]) for f in findings}


def test_moved_code_is_unchanged_the_fix_is_fixed_and_the_new_bug_is_new(widget):
    data = diff(widget, "1.0", "1.1")
    assert kinds(data["new_findings"]) == {("cppcheck", "memleak"), ("flawfinder", "misc.fopen")}
    assert kinds(data["fixed_findings"]) == {("cppcheck", "nullPointerRedundantCheck")}
    assert kinds(data["unchanged_findings"]) == MOVED
    assert data["counts"] == {"new": 2, "fixed": 1, "unchanged": 5, "not_analyzed": 0}
    strcpy = [f for f in data["unchanged_findings"] if f["check_id"] == "buffer.strcpy"]
    assert [f["line"] for f in strcpy] == [36]          # line 18 in 1.0, re-indented in 1.1
    (leak,) = [f for f in data["new_findings"] if f["check_id"] == "memleak"]
    assert (leak["path"], leak["version"], leak["survived"]) == ("src/widget.c", "1.1", 0)


def test_old_defaults_to_the_previous_analyzed_version(widget):
    assert diff(widget, "1.1")["old"] == "1.0"
    assert diff(widget, "1.2")["old"] == "1.1"


def test_findings_of_an_analyzer_that_failed_in_the_newer_run_are_not_analyzed_not_fixed(widget):
    data = diff(widget, "1.1", "1.2")
    assert data["new_findings"] == [] and data["fixed_findings"] == []
    assert kinds(data["not_analyzed_findings"]) == {("cppcheck", "memleak"), ("cppcheck", "arrayIndexOutOfBounds"),
                                                    ("cppcheck", "constVariable")}
    assert {f["version"] for f in data["not_analyzed_findings"]} == {"1.1"}
    analyzers = {a["analyzer"]: a for a in data["analyzers"]}
    assert not analyzers["cppcheck"]["compared"] and analyzers["cppcheck"]["new"]["status"] == "failed"
    assert "--no-such-option" in analyzers["cppcheck"]["new"]["error"]
    assert analyzers["flawfinder"]["compared"]
    text = diff(widget, "1.2", fmt="table")
    assert "not compared: failed on 1.2" in text
    assert "new 0, fixed 0, unchanged 4, not analyzed 3" in text


def test_the_views_answer_the_same_for_sqlite3_users(widget):
    with sqlite3.connect(widget) as connection:
        def ask(view, version):
            return set(connection.execute(f"SELECT analyzer, check_id FROM {view} WHERE package = 'widget'"
                                          " AND version = ?", (version,)))

        assert ask("new_finding", "1.1") == {("cppcheck", "memleak"), ("flawfinder", "misc.fopen")}
        assert ask("fixed_finding", "1.1") == {("cppcheck", "nullPointerRedundantCheck")}
        assert ask("new_finding", "1.2") == set() and ask("fixed_finding", "1.2") == set()


def test_text_report_lists_new_and_fixed_with_fingerprints(widget):
    text = diff(widget, "1.0", "1.1", fmt="table")
    assert text.startswith("widget 1.0 -> 1.1 (local)")
    assert "new 2, fixed 1, unchanged 5, not analyzed 0" in text
    assert "new in 1.1:" in text and "fixed in 1.1:" in text
    assert "Memory leak: buffer" in text and "src/widget.c:44" in text


def test_unknown_versions_exit_6(widget):
    result = run_kiskadee("diff", "widget", "0.9", "1.1", "--db", widget)
    assert result.returncode == 6 and "0.9" in result.stderr
    result = run_kiskadee("diff", "widget", "1.0", "--db", widget)
    assert result.returncode == 6 and "before 1.0" in result.stderr
