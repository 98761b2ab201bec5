"""clang, gcc -fanalyzer and Frama-C through `kiskadee analyze` on a tree with planted bugs.

tests/fixtures/planted has one known bug per file, a file that does not
compile and a `#include <config.h>` the tree lacks: per-file mode must guess
the include path, generate config.h outside the (read-only) tree, count the
broken file and flag every bug by checker and line.
"""

import csv
import json
import os
import shutil
import sqlite3
import subprocess

import pytest
from builders import PLANTED, snapshot
from harness import FIXTURES, run_kiskadee

from kiskadee.analysis.analyzers.framac import ALARMS
from kiskadee.config import ClangConfig, GccConfig

pytestmark = pytest.mark.slow     # the planted tree is analyzed by clang, gcc and Frama-C first

ANALYZERS = ("clang", "gcc", "framac")
SOURCES = ["src/double_free.c", "src/leak.c", "src/main.c", "src/null_deref.c", "src/overflow.c",
           "src/use_after_free.c"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The planted tree, read-only, analyzed once; the database, the run and the tree."""
    tree = tmp_path_factory.mktemp("src") / "planted-1.0"
    shutil.copytree(FIXTURES / "planted", tree)
    subprocess.run(["chmod", "-R", "a-w", str(tree)], check=True)
    before = snapshot(tree)
    db = tmp_path_factory.mktemp("db") / "kiskadee.db"
    result = run_kiskadee("analyze", tree, "--analyzers", ",".join(ANALYZERS), "--db", db)
    return db, result, tree, before


def rows(db, sql, *params):
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).fetchall()


def test_analysis_succeeds_and_leaves_the_source_untouched(planted):
    db, result, tree, before = planted
    assert result.returncode == 0, result.stderr
    assert snapshot(tree) == before
    assert rows(db, "SELECT analyzer, status, error FROM analysis_detail ORDER BY analyzer") == [
        ("clang", "ok", ""), ("framac", "ok", ""), ("gcc", "ok", "")]


@pytest.mark.parametrize("analyzer", ANALYZERS)
def test_every_planted_bug_is_flagged_by_checker_and_line(planted, analyzer):
    db = planted[0]
    found = set(rows(db, "SELECT path, line, check_id, cwe FROM finding_detail WHERE analyzer = ?", analyzer))
    assert PLANTED[analyzer] <= found


def test_certain_bugs_rank_high(planted):
    db = planted[0]
    severities = dict(rows(db, "SELECT analyzer || ' ' || path, severity FROM finding_detail "
                               "WHERE line = 13 AND path = 'src/use_after_free.c'"))
    assert set(severities.values()) == {"high"} and len(severities) == 3


def test_the_file_that_does_not_compile_is_counted_not_fatal(planted):
    db = planted[0]
    coverage = rows(db, "SELECT analyzer, mode, files_analyzed, files_failed, fallback FROM analysis_detail "
                        "ORDER BY analyzer")
    assert coverage == [(name, "per-file", 6, 1, "") for name in ("clang", "framac", "gcc")]
    for (failed,) in rows(db, "SELECT failed_files FROM analysis"):
        assert failed.startswith("src/broken.c: ") and "error" in failed


def test_tool_versions_are_the_real_ones(planted):
    db = planted[0]
    gcc = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    clang = subprocess.run(["clang", "--version"], capture_output=True, text=True).stdout
    framac = subprocess.run(["frama-c", "-version"], capture_output=True, text=True).stdout
    versions = dict(rows(db, "SELECT name, version FROM analyzer"))
    assert versions["gcc"] == gcc
    assert f"clang version {versions['clang']}" in clang
    assert framac.startswith(versions["framac"])


def test_show_reports_coverage(planted):
    db = planted[0]
    shown = run_kiskadee("show", "planted", "1.0", "--db", db)
    assert shown.returncode == 0, shown.stderr
    assert "gcc: per-file mode, 6 of 7 files analyzed" in shown.stdout
    assert "    not analyzed: src/broken.c: " in shown.stdout
    data = json.loads(run_kiskadee("show", "planted", "1.0", "--format", "json", "--db", db).stdout)
    clang = next(a for a in data["analyses"] if a["analyzer"] == "clang")
    assert clang["coverage"]["files_analyzed"] == 6 and clang["coverage"]["mode"] == "per-file"


# Nothing lost: the stored findings equal those of each tool's own output, run here by hand
# with the flags per-file mode documents (-DHAVE_CONFIG_H, -I. -Iinclude, an empty config.h).

@pytest.fixture(scope="module")
def flags(tmp_path_factory):
    generated = tmp_path_factory.mktemp("generated")
    (generated / "config.h").write_text("")
    return ["-DHAVE_CONFIG_H", "-I.", "-Iinclude", f"-I{generated}"]


def stored(db, analyzer):
    return rows(db, "SELECT COUNT(*) FROM finding_detail WHERE analyzer = ?", analyzer)[0][0]


def test_nothing_lost_clang(planted, flags, tmp_path):
    db, _, tree, _ = planted
    checkers = ",".join(ClangConfig().checkers)
    raw = set()
    for source in SOURCES:
        report = tmp_path / "out.sarif"
        subprocess.run(["clang", "--analyze", "--analyzer-output", "sarif", "-o", str(report), "-Xanalyzer",
                        f"-analyzer-checker={checkers}", *flags, source], cwd=tree, check=True)
        for result in json.loads(report.read_text())["runs"][0]["results"]:
            place = result["locations"][0]["physicalLocation"]
            raw.add((place["artifactLocation"]["uri"], place["region"]["startLine"],
                     place["region"].get("startColumn"), result["ruleId"], result["message"]["text"]))
    assert stored(db, "clang") == len(raw) >= 5


def test_nothing_lost_gcc(planted, flags):
    db, _, tree, _ = planted
    warnings = GccConfig().warnings
    raw = set()
    for source in SOURCES:
        done = subprocess.run(["gcc", "-fanalyzer", "-fdiagnostics-format=json", *flags,
                               *(f"-W{w}" for w in warnings), "-c", source, "-o", "/dev/null"],
                              cwd=tree, capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
        for diagnostic in json.loads(done.stderr):
            option = diagnostic.get("option", "")[2:].rstrip("=")
            if diagnostic["kind"] == "warning" and (option.startswith("analyzer-") or option in warnings):
                caret = diagnostic["locations"][0]["caret"]
                raw.add((caret["file"], caret["line"], caret["column"], option, diagnostic["message"]))
    assert stored(db, "gcc") == len(raw) >= 5


FRAMAC_ENTRIES = {"src/double_free.c": "release_twice", "src/leak.c": "count_words", "src/main.c": "main",
                  "src/null_deref.c": "first_score", "src/overflow.c": "greet", "src/use_after_free.c": "last_value"}


def test_nothing_lost_framac(planted, flags, tmp_path):
    db, _, tree, _ = planted
    raw = set()
    for source, entry in FRAMAC_ENTRIES.items():
        report = tmp_path / f"{entry}.csv"
        subprocess.run(["frama-c", f"-cpp-extra-args={','.join(flags)}", source, "-eva", "-lib-entry",
                        "-main", entry, "-report-csv", str(report)], cwd=tree, check=True, capture_output=True,
                       env=dict(os.environ, PWD=str(tree)))     # Frama-C resolves paths against $PWD
        with open(report, newline="", encoding="utf-8") as stream:
            for row in csv.DictReader(stream, delimiter="\t"):
                kind = row["property kind"]
                if (not row["directory"].startswith("FRAMAC_SHARE")
                        and (kind in ALARMS or kind.startswith("precondition of "))
                        and (row["status"].startswith("Invalid") or row["status"] == "Unknown")):
                    raw.add((row["directory"], row["file"], row["line"], kind, row["property"]))
    assert stored(db, "framac") == len(raw) >= 4
