"""`kiskadee analyze` end to end: real cppcheck and flawfinder on GNU hello, real SQLite."""

import csv
import json
import sqlite3
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from harness import HELLO_TARBALL, run_kiskadee


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory, ):
    """hello 2.10 analyzed once for the module; returns the database path and the run."""
    db = tmp_path_factory.mktemp("db") / "kiskadee.db"
    result = run_kiskadee("analyze", HELLO_TARBALL, "--db", db)
    return db, result


def rows(db, sql, *params):
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).fetchall()


def test_analyze_succeeds_and_prints_a_summary(analyzed):
    db, result = analyzed
    assert result.returncode == 0, result.stderr
    assert "hello 2.10 (local): done" in result.stdout
    assert "cppcheck    2.10" in result.stdout
    assert "nullPointer" in result.stdout
    assert "analyzing hello 2.10 with cppcheck" in result.stderr


def test_specific_findings_are_stored(analyzed):
    db, _ = analyzed
    nulls = rows(db, "SELECT path, line, cwe, severity FROM finding_detail "
                     "WHERE package='hello' AND version='2.10' AND analyzer='cppcheck' "
                     "AND check_id='nullPointer' ORDER BY line")
    assert nulls == [("src/hello.c", 98, 476, "high"), ("src/hello.c", 102, 476, "high")]
    getopt = rows(db, "SELECT check_id, cwe FROM finding_detail WHERE analyzer='flawfinder' "
                      "AND path='src/hello.c' AND line=68")
    assert getopt == [("buffer.getopt_long", 120)]


def test_tool_versions_and_source_are_recorded(analyzed, hello_tarball):
    db, _ = analyzed
    assert rows(db, "SELECT name, version FROM analyzer ORDER BY name") == [
        ("cppcheck", "2.10"), ("flawfinder", "2.0.20")]
    (version,) = rows(db, "SELECT state, sha256, source_url FROM version")
    assert version[0] == "done"
    assert version[1] == "31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b"
    assert version[2].endswith("hello_2.10.orig.tar.gz")


def test_nothing_lost_against_the_tools_own_output(analyzed, hello_tarball, tmp_path):
    """Findings stored per analyzer equal the entries of the tool's raw report on the same tree."""
    db, _ = analyzed
    with tarfile.open(hello_tarball) as archive:
        archive.extractall(tmp_path)
    tree = tmp_path / "hello-2.10"
    report = tmp_path / "cppcheck.xml"
    subprocess.run(["cppcheck", "--xml-version=2", "--quiet", "--enable=warning,style,performance,portability",
                    f"--output-file={report}", "."], cwd=tree, check=True)
    flawfinder = Path(sys.executable).with_name("flawfinder")
    out = subprocess.run([str(flawfinder), "--csv", "--minlevel=1", "."], cwd=tree, check=True,
                         capture_output=True, text=True).stdout
    raw = {
        "cppcheck": len(ElementTree.parse(report).getroot().findall("./errors/error")),
        "flawfinder": len(list(csv.DictReader(out.splitlines()))),
    }
    stored = dict(rows(db, "SELECT analyzer, COUNT(*) FROM finding_detail GROUP BY analyzer"))
    counted = dict(rows(db, "SELECT analyzer, finding_count FROM analysis_detail"))
    assert stored == counted == raw
    assert raw["flawfinder"] > 300 and raw["cppcheck"] > 10


def test_fingerprints_are_unique_within_an_analysis(analyzed):
    db, _ = analyzed
    assert rows(db, "SELECT analysis_id, fingerprint, COUNT(*) FROM finding "
                    "GROUP BY analysis_id, fingerprint HAVING COUNT(*) > 1") == []


def test_show_and_packages(analyzed):
    db, _ = analyzed
    shown = run_kiskadee("show", "hello", "2.10", "--format", "json", "--top", "5", "--db", db)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert [a["analyzer"] for a in data["analyses"]] == ["cppcheck", "flawfinder"]
    assert len(data["findings"]) == 5
    assert data["findings"][0]["rank"] >= data["findings"][-1]["rank"]
    latest = run_kiskadee("show", "hello", "--db", db)
    assert latest.returncode == 0 and "hello 2.10" in latest.stdout
    listed = run_kiskadee("packages", "--format", "json", "--db", db)
    assert json.loads(listed.stdout) == [{
        "package": "hello", "fetcher": "local", "versions": 1, "latest": "2.10",
        "state": "done", "findings": data["analyses"][0]["finding_count"] + data["analyses"][1]["finding_count"],
    }]


def test_show_unknown_package_exits_6(analyzed):
    db, _ = analyzed
    result = run_kiskadee("show", "nosuch", "--db", db)
    assert result.returncode == 6
    assert "no an analyzed version" not in result.stderr and "nosuch" in result.stderr


@pytest.mark.slow
def test_reanalysis_replaces_instead_of_duplicating(hello_tarball, tmp_path):
    db = tmp_path / "k.db"
    for _ in range(2):
        assert run_kiskadee("analyze", hello_tarball, "--db", db, "--analyzers", "cppcheck").returncode == 0
    assert rows(db, "SELECT COUNT(*) FROM analysis") == [(1,)]
    assert rows(db, "SELECT COUNT(*) FROM finding") == rows(db, "SELECT finding_count FROM analysis")


def test_tree_without_c_is_skipped_not_failed(tmp_path):
    source = tmp_path / "pytool-1.0"
    source.mkdir()
    (source / "tool.py").write_text("print('hi')\n")
    result = run_kiskadee("analyze", source, "--db", tmp_path / "k.db")
    assert result.returncode == 0, result.stderr
    assert rows(tmp_path / "k.db", "SELECT analyzer, status FROM analysis_detail ORDER BY analyzer") == [
        ("cppcheck", "skipped"), ("flawfinder", "skipped")]


def test_hostile_archive_is_refused_with_exit_4_and_nothing_stored(tmp_path):
    archive = tmp_path / "evil-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.c")
        info.size = 0
        tar.addfile(info)
    result = run_kiskadee("analyze", archive, "--db", tmp_path / "k.db")
    assert result.returncode == 4
    assert "../escaped.c" in result.stderr
    assert not (tmp_path.parent / "escaped.c").exists()
    assert rows(tmp_path / "k.db", "SELECT COUNT(*) FROM version") == [(0,)]


def test_unknown_configuration_key_exits_3(tmp_path, hello_tarball):
    config = tmp_path / "kiskadee.toml"
    config.write_text("[analysis]\nanalyzer = ['cppcheck']\n")
    result = run_kiskadee("analyze", hello_tarball, config=config)
    assert result.returncode == 3
    assert f"{config}: unknown key 'analysis.analyzer'" in result.stderr


def test_missing_source_exits_4(tmp_path):
    result = run_kiskadee("analyze", tmp_path / "nope-1.0.tar.gz", "--db", tmp_path / "k.db")
    assert result.returncode == 4 and "no such file" in result.stderr


def test_unknown_analyzer_is_a_usage_error(tmp_path, hello_tarball):
    result = run_kiskadee("analyze", hello_tarball, "--analyzers", "lint9000", "--db", tmp_path / "k.db")
    assert result.returncode == 2 and "lint9000" in result.stderr and "cppcheck" in result.stderr
