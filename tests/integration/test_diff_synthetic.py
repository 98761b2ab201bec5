"""`kiskadee diff` on a small synthetic pair whose every change is known, with real analyzers.

widget 1.1 (tests/fixtures/synthetic) renames the top directory, moves every
line, swaps functions and re-indents a flagged line; it fixes the null
pointer dereference of 1.0 and adds a function that leaks memory and opens a
file. widget 1.2 is the same tree analyzed with a cppcheck that fails.

cJSON "1.8" is built here from the real cJSON 1.7.14 tree
(tests/fixtures/releases): ``fuzzing/`` moves to ``tests/fuzz/``,
``cJSON_Utils.c`` becomes ``utils/cjson_utils.cpp``, and a comment block is
inserted at the top of every moved file and of ``cJSON.c``. Nothing is new or
fixed: every finding of the moved files is moved, and keeps its waiver.

Each is analyzed into SQLite and into PostgreSQL (``new_database``), the
second time from the analysis cache the two share (``analysis_cache``).
"""

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from harness import FIXTURES, other_connection, run_kiskadee, write_config

from kiskadee.sources.unpack import unpack

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


def cached(path: Path, cache: Path, **sections: str) -> Path:
    """A configuration at ``path`` with the shared analysis cache and ``sections``."""
    return write_config(path, {"analysis.cache": f'path = "{cache}"', **sections})


@pytest.fixture(scope="module")
def widget(tmp_path_factory, new_database, analysis_cache):
    work = tmp_path_factory.mktemp("widget")
    db = new_database(work)
    config = cached(work / "kiskadee.toml", analysis_cache)
    for version in ("1.0", "1.1"):
        result = run_kiskadee("analyze", release_tarball(work, version), "--db", db, config=config)
        assert result.returncode == 0, result.stderr
    broken = cached(work / "broken.toml", analysis_cache,
                    **{"analyzers.cppcheck": 'extra_args = ["--no-such-option"]'})
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
    assert data["counts"] == {"new": 2, "fixed": 1, "unchanged": 5, "moved": 0, "not_analyzed": 0}
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


def test_the_views_answer_the_same_for_sql_users(widget):
    with other_connection(widget) as connection:
        def ask(view, version):
            return set(connection.rows(f"SELECT analyzer, check_id FROM {view} WHERE package = 'widget'"
                                       " AND version = ?", version))

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


# cJSON moved around --------------------------------------------------------------

NOTICE = "/*\n * Moved in the reorganisation.\n *\n * See the changelog.\n */\n\n"
MOVES = {"fuzzing/": "tests/fuzz/", "cJSON_Utils.c": "utils/cjson_utils.cpp"}


def moved_path(path):
    for old, new in MOVES.items():
        if path == old or (old.endswith("/") and path.startswith(old)):
            return new + path[len(old):]
    return path


def reorganised(tree, dest):
    """A copy of ``tree`` with MOVES applied and NOTICE atop cJSON.c and every moved C file."""
    shutil.copytree(tree, dest)
    shutil.move(dest / "fuzzing", dest / "tests" / "fuzz")
    (dest / "utils").mkdir()
    shutil.move(dest / "cJSON_Utils.c", dest / "utils" / "cjson_utils.cpp")
    for path in [dest / "cJSON.c", dest / "utils" / "cjson_utils.cpp", *(dest / "tests" / "fuzz").glob("*.c")]:
        path.write_text(NOTICE + path.read_text())
    return dest


@pytest.fixture(scope="module")
def cjson_moved(tmp_path_factory, new_database, analysis_cache):
    work = tmp_path_factory.mktemp("cjson-moved")
    (work / "unpacked").mkdir()
    tree = unpack(FIXTURES / "releases" / "cjson_1.7.14.orig.tar.gz", work / "unpacked")
    db = new_database(work)
    config = cached(work / "kiskadee.toml", analysis_cache)
    for version, source in (("1.7", tree), ("1.8", reorganised(tree, work / "cjson-1.8"))):
        result = run_kiskadee("analyze", source, "--name", "cjson", "--version", version, "--db", db,
                              "--analyzers", "flawfinder", config=config)
        assert result.returncode == 0, result.stderr
    return db


def test_a_moved_directory_and_a_renamed_file_leave_nothing_new_or_fixed(cjson_moved):
    result = run_kiskadee("diff", "cjson", "1.7", "1.8", "--format", "json", "--all", "--db", cjson_moved)
    data = json.loads(result.stdout)
    assert data["new_findings"] == [] and data["fixed_findings"] == []
    moved = data["moved_findings"]
    assert {f["moved_from"]["path"].split("/")[0] for f in moved} == {"fuzzing", "cJSON_Utils.c"}
    assert len(moved) == data["counts"]["moved"] >= 10
    for f in moved:
        assert f["path"] == moved_path(f["moved_from"]["path"])
        assert f["line"] == f["moved_from"]["line"] + NOTICE.count("\n")
    assert data["counts"]["unchanged"] == len(data["unchanged_findings"]) > len(moved)
    text = run_kiskadee("diff", "cjson", "1.7", "1.8", "--db", cjson_moved).stdout
    assert f"({len(moved)} of them moved)" in text and "cJSON_Utils.c:" in text and "utils/cjson_utils.cpp:" in text


def test_a_waiver_on_a_finding_of_a_moved_file_shows_in_the_new_version(cjson_moved):
    def show(version):
        result = run_kiskadee("show", "cjson", version, "--format", "json", "--db", cjson_moved)
        return json.loads(result.stdout)["findings"]

    (target,) = [f for f in show("1.7") if f["path"] == "fuzzing/afl.c" and f["check_id"] == "misc.fopen"]
    result = run_kiskadee("waive", target["fingerprint"], "--as", "intentional", "--comment", "the fuzzer's input",
                          "--db", cjson_moved)
    assert result.returncode == 0, result.stderr
    waived = [(f["path"], f["line"], f["waiver"]["comment"]) for f in show("1.8") if f["waiver"]]
    assert waived == [("tests/fuzz/afl.c", target["line"] + NOTICE.count("\n"), "the fuzzer's input")]


@pytest.mark.both_databases
def test_one_package_however_its_tarballs_spell_its_name(db, tmp_path, analysis_cache):
    """MarkupSafe-2.1.5.tar.gz and markupsafe-3.0.0.tar.gz: one package, as PyPI takes them (PEP 503)."""
    config = cached(tmp_path / "kiskadee.toml", analysis_cache)
    for version, top in (("1.0", "MarkupSafe-2.1.5"), ("1.1", "markupsafe-3.0.0")):
        tarball = release_tarball(tmp_path, version, top=top)
        result = run_kiskadee("analyze", tarball, "--db", db.database, "--analyzers", "flawfinder", config=config)
        assert result.returncode == 0, result.stderr
    packages = json.loads(run_kiskadee("packages", "--format", "json", "--db", db.database).stdout)
    assert [(p["package"], p["versions"]) for p in packages] == [("markupsafe", 2)]
    result = run_kiskadee("diff", "markupsafe", "3.0.0", "--format", "json", "--db", db.database)
    assert result.returncode == 0 and json.loads(result.stdout)["old"] == "2.1.5", result.stderr
