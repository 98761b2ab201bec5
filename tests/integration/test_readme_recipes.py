"""The README's sqlite3 recipes answer what they promise.

Every recipe (an indented block starting with SELECT) is read from the README,
so the test and the documentation cannot drift, and run as a person would run
it: with the real ``sqlite3`` command-line tool, on a real database with
several fetchers, several versions, waivers, failed analyses and coverage
gaps, stored through kiskadee's own ``record_analysis`` and ``waive``. Each
recipe's answer is checked against what was stored (the plan below), for what
its heading promises; a recipe without a check here fails the test. The same
recipes run on a copy of that database in a real PostgreSQL server
(``kiskadee db copy``'s code), as the README says they do.
"""

import contextlib
import datetime
import json
import re
import sqlite3
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from builders import finding, ranked_runs
from harness import other_connection

from kiskadee.store import waivers
from kiskadee.store.copy import copy
from kiskadee.store.db import close_database, open_database
from kiskadee.store.queue import record_analysis
from kiskadee.store.results import VersionKey

README = Path(__file__).resolve().parents[2] / "README.md"
T0 = datetime.datetime(2026, 1, 1)

# Findings by name: (analyzer, path, line, check id, severity, CWEs). A name stands for the
# same finding (fingerprint) in every version and package that has it.
FINDINGS = {
    "null": ("cppcheck", "src/hello.c", 40, "nullPointer", "high", (476,)),
    "strcpy": ("flawfinder", "src/hello.c", 41, "buffer.strcpy", "high", (120,)),
    "clang-null": ("clang", "src/hello.c", 40, "core.NullDereference", "high", (476,)),
    "char": ("flawfinder", "lib/getopt.c", 10, "buffer.char", "low", (119, 120)),
    "printf": ("flawfinder", "src/system.c", 5, "format.printf", "medium", (134,)),
    "leak": ("cppcheck", "lib/xalloc.c", 20, "memleak", "medium", (401,)),
    "overflow": ("cppcheck", "src/parse.c", 77, "integerOverflow", "medium", (190,)),
    "realloc": ("cppcheck", "src/io.c", 9, "memleakOnRealloc", "medium", (401,)),
    "fopen": ("flawfinder", "src/io.c", 30, "misc.fopen", "low", (362,)),
    "clang-leak": ("clang", "src/io.c", 9, "unix.Malloc", "medium", (401,)),
    "unused": ("cppcheck", "src/hello.c", 120, "unusedFunction", "low", ()),
    **{f"scope{i}": ("cppcheck", f"src/util{i}.c", 10 + i, "variableScope", "low", (398,)) for i in range(8)},
}
HELLO = ["null", "strcpy", "clang-null", "char", "leak"]
HELLO_2_10 = HELLO + ["printf", "unused"] + [f"scope{i}" for i in range(8)]
# (fetcher, package, version, finding names, {analyzer: (status, error), or None where it did not run},
# {analyzer: (files analyzed, files failed, failed files)}), in the order they are analyzed: the last
# version of each package is its latest analysis.
PLAN = [
    ("anitya", "hello", "2.9", HELLO, {}, {}),
    ("anitya", "hello", "2.10", HELLO_2_10, {}, {}),
    ("directory", "hello", "2.10", HELLO_2_10, {}, {}),
    ("debian", "hello", "2.10-2", HELLO, {},
     {"cppcheck": (11, 2, "src/old.c: syntax error at line 3\nsrc/w32.c: no valid preprocessor configuration")}),
    ("debian", "hello", "2.10-3", HELLO_2_10, {"clang": ("failed", "exited with status 1: clang: error")},
     {"cppcheck": (12, 1, "src/bad.c: syntax error at line 9"), "flawfinder": (13, 0, "")}),
    ("anitya", "jq", "1.7", ["null", "strcpy", "printf"], {"clang": None}, {}),
    ("anitya", "jq", "1.7.1", ["null", "strcpy", "leak", "overflow", "clang-leak"], {}, {}),
    ("anitya", "lz4", "1.9.3", ["overflow", "realloc", "fopen"], {}, {}),
    ("anitya", "lz4", "1.9.4", ["overflow", "fopen", "leak"], {"flawfinder": ("timeout", "timed out after 600 s")},
     {}),
    ("anitya", "lz4", "1.10.0", ["leak", "char", "null"], {}, {}),
    ("debian", "lz4", "1.9.4-1", ["overflow", "fopen", "leak"], {}, {}),
    ("debian", "lz4", "1.10.0-1", ["leak", "fopen", "null", "realloc"], {},
     {"cppcheck": (0, 4, "lib/lz4.c: no valid preprocessor configuration")}),
]
ANALYZERS = ("cppcheck", "flawfinder", "clang")
# (fetcher, package, finding, kind): hello's strcpy is anitya's false positive only.
WAIVERS = [("anitya", "hello", "strcpy", "false-positive"), ("anitya", "hello", "char", "intentional"),
           ("anitya", "hello", "leak", "bug"), ("anitya", "jq", "leak", "intentional"),
           ("anitya", "jq", "strcpy", "false-positive")]


def made(name):
    analyzer, path, line, check_id, severity, cwes = FINDINGS[name]
    return finding(analyzer, path, line, check_id, severity, cwes)


def fingerprint(name):
    return made(name).fingerprint


def runs(names, failures, coverage):
    by_analyzer = {analyzer: [] for analyzer in ANALYZERS}
    for name in names:
        by_analyzer[FINDINGS[name][0]].append(made(name))
    for analyzer, failure in failures.items():
        by_analyzer[analyzer] = []          # a failed run here reported nothing
        if failure is None:
            del by_analyzer[analyzer]
    ranked = ranked_runs(by_analyzer)
    for run in ranked:
        run.status, run.error = failures.get(run.analyzer, ("ok", ""))
        if run.analyzer in coverage:
            run.files_analyzed, run.files_failed, run.failed_files = coverage[run.analyzer]
    return ranked


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    path = tmp_path_factory.mktemp("recipes") / "kiskadee.db"
    db = open_database(str(path))
    try:
        for n, (fetcher, package, number, names, failures, coverage) in enumerate(PLAN):
            record_analysis(VersionKey(fetcher, package, number), runs(names, failures, coverage), db=db)
            if (fetcher, package) not in {entry[:2] for entry in PLAN[n + 1:]}:
                waive(fetcher, package)
    finally:
        db.close()
    return path


@pytest.fixture(scope="module")
def server_copy(database, postgresql):
    """The same database copied into a PostgreSQL server; its URL."""
    url = postgresql.fresh_database()
    source, target = open_database(str(database), schema="current"), open_database(url)
    copy(source, target)
    close_database(target)
    close_database(source)
    return url


def waive(fetcher, package):
    """The planned waivers of a package, with ``kiskadee waive``'s code, once its last version is stored
    and before another fetcher's package of the same name is (``waive`` names packages, not fetchers)."""
    for n, (waived_fetcher, waived_package, name, kind) in enumerate(WAIVERS):
        if (waived_fetcher, waived_package) == (fetcher, package):
            waivers.waive(fingerprint(name), kind, f"checked {name}", package=package, author="ana",
                          now=T0 + datetime.timedelta(minutes=n))


def recipes():
    """(heading, SQL) of every sqlite3 recipe in the README; the heading is the paragraph before
    the recipe, up to its first question mark or colon."""
    found, paragraph, block, ended = [], [], [], False
    for line in README.read_text(encoding="utf-8").splitlines() + [""]:
        if line.startswith("    ") and (block or line.lstrip().startswith("SELECT")):
            block.append(line[4:])
            continue
        if block:
            found.append((_heading(paragraph), "\n".join(block)))
            block = []
        if not line.strip():
            ended = True
        elif not line.startswith("    "):
            paragraph, ended = ([] if ended else paragraph) + [line.strip()], False
    return found


def _heading(paragraph):
    text = " ".join(part for part in paragraph if part)
    return re.match(r"[^?:]*[?:]", text).group(0)


def run_recipe(database, sql):
    if str(database).startswith("postgresql://"):
        return run_in_postgresql(database, sql)
    result = subprocess.run(["sqlite3", "-bail", "-json", str(database)], input=sql,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and not result.stderr, (sql, result.stderr)
    return json.loads(result.stdout) if result.stdout.strip() else []


def run_in_postgresql(url, sql):
    """The recipe's rows as sqlite3 -json gives them: dicts by column name, timestamps as text."""
    with other_connection(url) as connection:
        cursor = connection.execute(sql)
        names = [column.name for column in cursor.description]
        return [{name: value.isoformat(" ") if isinstance(value, datetime.datetime) else value
                 for name, value in zip(names, row)} for row in cursor.fetchall()]


# --- what was stored, from the plan --------------------------------------------------------

def latest_plan():
    latest = {}
    for entry in PLAN:
        latest[entry[:2]] = entry
    return latest


def waived(fetcher, package):
    return {name: kind for f, p, name, kind in WAIVERS if (f, p) == (fetcher, package)}


def ran(failures):
    """(analyzer, (status, error)) of the planned failures of analyzers that ran."""
    return [(analyzer, failure) for analyzer, failure in failures.items() if failure]


def analyzed(entry):
    """{analyzer: finding names} of the analyzers that completed on a planned version."""
    fetcher, package, number, names, failures, _ = entry
    return {analyzer: {n for n in names if FINDINGS[n][0] == analyzer} for analyzer in ANALYZERS
            if analyzer not in failures}


def stored_ranks(database):
    """(fetcher, package, version, check id, path) -> rank, read from the tables, not the views."""
    with other_connection(database) as connection:
        return {row[:5]: row[5] for row in connection.rows(
            "SELECT fe.name, p.name, v.number, f.check_id, f.path, f.rank FROM finding f"
            " JOIN analysis a ON a.id = f.analysis_id JOIN version v ON v.id = a.version_id"
            " JOIN package p ON p.id = v.package_id JOIN fetcher fe ON fe.id = p.fetcher_id")}


# --- one check per recipe: does the answer hold what the heading promises? -----------------

def latest_analyses(rows, database):
    expected = {(fetcher, package, number, analyzer, (failures.get(analyzer) or ("ok",))[0])
                for fetcher, package, number, _, failures, _ in latest_plan().values() for analyzer in ANALYZERS
                if analyzer not in failures or failures[analyzer]}
    assert {(r["fetcher"], r["package"], r["version"], r["analyzer"], r["status"]) for r in rows} == expected
    clang = [r for r in rows if (r["fetcher"], r["package"], r["analyzer"]) == ("debian", "hello", "clang")]
    assert clang[0]["error"].startswith("exited with status 1")


def most_likely_real(rows, database):
    ranks = stored_ranks(database)
    candidates = {}     # (fetcher, check id, path) -> (confirmed bug, rank) of hello 2.10's findings not waived away
    for fetcher, package, number, names, _, _ in PLAN:
        if (package, number) == ("hello", "2.10"):
            verdicts = waived(fetcher, package)
            candidates.update(((fetcher, FINDINGS[name][3], FINDINGS[name][1]), (
                verdicts.get(name) == "bug", ranks[fetcher, package, number, FINDINGS[name][3], FINDINGS[name][1]]))
                for name in names if verdicts.get(name) in (None, "bug"))
    shown = [(r["fetcher"], r["check_id"], r["path"]) for r in rows]
    assert len(rows) == 10 < len(candidates) and set(shown) <= candidates.keys()
    assert [candidates[key] for key in shown] == sorted(candidates.values(), reverse=True)[:10]  # ties in any order
    assert (rows[0]["fetcher"], rows[0]["check_id"], rows[0]["waiver"]) == ("anitya", "memleak", "bug")
    assert ("anitya", "buffer.strcpy", "src/hello.c") not in shown      # waived as a false positive
    assert ("directory", "buffer.strcpy", "src/hello.c") in shown       # a waiver holds for its own package only


def weakness_classes(rows, database):
    distinct = set()
    for fetcher, package, _, names, failures, _ in PLAN:
        verdicts = waived(fetcher, package)
        distinct |= {(package, name) for name in names if FINDINGS[name][5]
                     and FINDINGS[name][0] not in failures and verdicts.get(name) in (None, "bug")}
    findings = Counter(FINDINGS[name][5][0] for _, name in distinct)
    packages = defaultdict(set)
    for package, name in distinct:
        packages[FINDINGS[name][5][0]].add(package)
    expected = sorted(findings, key=lambda cwe: (-findings[cwe], cwe))[:10]
    assert [(r["cwe"], r["findings"], r["packages"]) for r in rows] == [
        (cwe, findings[cwe], len(packages[cwe])) for cwe in expected]
    # hello's two (cppcheck's and clang's), jq's and lz4's: once each, however many versions and fetchers have them
    assert dict((r["cwe"], r["findings"]) for r in rows)[476] == 4


def failed_analyses(rows, database):
    expected = {(fetcher, package, number, analyzer, status, error)
                for fetcher, package, number, _, failures, _ in PLAN
                for analyzer, (status, error) in ran(failures)}
    assert len(rows) == len(expected) == 2
    assert {(r["fetcher"], r["package"], r["version"], r["analyzer"], r["status"], r["error"])
            for r in rows} == expected


def coverage_gaps(rows, database):
    expected = {(fetcher, package, number, analyzer, files[2])
                for fetcher, package, number, _, _, coverage in latest_plan().values()
                for analyzer, files in coverage.items() if files[1] > 0 or files[0] == 0}
    assert {(r["fetcher"], r["package"], r["version"], r["analyzer"], r["failed_files"]) for r in rows} == expected
    assert any("src/bad.c: syntax error" in r["failed_files"] for r in rows)        # cppcheck's own parse failure
    assert not any("src/old.c" in r["failed_files"] for r in rows)                  # 2.10-2 is not the latest


def jq_introduced(rows, database):
    old, new = (analyzed(entry) for entry in PLAN if entry[1] == "jq")
    introduced = {name for analyzer in old.keys() & new.keys() for name in new[analyzer] - old[analyzer]}
    assert introduced == {"leak", "overflow"}           # clang did not run on 1.7: its leak is not new
    verdicts = waived("anitya", "jq")
    assert sorted((r["check_id"], r["path"], r["waiver"]) for r in rows) == sorted(
        (FINDINGS[name][3], FINDINGS[name][1], verdicts.get(name)) for name in introduced)
    assert [r["rank"] for r in rows] == sorted((r["rank"] for r in rows), reverse=True)


def releases_new_and_fixed(rows, database):
    expected = []
    for fetcher in ("anitya", "debian"):
        versions = [entry for entry in PLAN if entry[:2] == (fetcher, "lz4")]
        for previous, entry in zip(versions, versions[1:]):
            old, new = analyzed(previous), analyzed(entry)
            both = old.keys() & new.keys()
            expected.append((fetcher, entry[2], previous[2], sum(len(new[a] - old[a]) for a in both),
                             sum(len(old[a] - new[a]) for a in both)))
    assert [(r["fetcher"], r["version"], r["previous_version"], r["new"], r["fixed"]) for r in rows] == expected
    assert ("anitya", "1.10.0", "1.9.4", 1, 1) in expected      # flawfinder timed out on 1.9.4: char is not new


def every_waiver(rows, database):
    assert [(r["fetcher"], r["package"], r["fingerprint"], r["kind"], r["author"]) for r in rows] == [
        (fetcher, package, fingerprint(name), kind, "ana") for fetcher, package, name, kind in WAIVERS]


CHECKS = {
    "Did the latest analysis of each package succeed?": latest_analyses,
    "The most likely real findings of hello 2.10:": most_likely_real,
    "Which weakness classes are most common across everything analyzed?": weakness_classes,
    "Which analyses failed or timed out, and why?": failed_analyses,
    "Which of the latest analyses analyzed nothing, or left files out, and which files?": coverage_gaps,
    "What did jq 1.7.1 introduce, best ranked first, and which are waived?": jq_introduced,
    "How many findings did each release of a package introduce and fix?": releases_new_and_fixed,
    "Every waiver with the package it belongs to:": every_waiver,
}


def test_every_recipe_has_a_check_and_every_check_a_recipe():
    headings = [heading for heading, _ in recipes()]
    assert sorted(headings) == sorted(CHECKS), headings


@pytest.mark.parametrize("heading", sorted(CHECKS))
@pytest.mark.parametrize("client", ["sqlite3", "postgresql"])
def test_recipe_answers_what_it_promises(client, heading, request):
    database = request.getfixturevalue("database" if client == "sqlite3" else "server_copy")
    (sql,) = [sql for found, sql in recipes() if found == heading]
    rows = run_recipe(database, sql)
    assert rows, f"{heading!r} answered nothing"
    CHECKS[heading](rows, database)
