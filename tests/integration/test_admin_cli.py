"""Small admin defects, through the real command: a reader that leaves early, one package from
several fetchers (`show`/`export --fetcher`) and the README's sqlite3 queries on such a database."""

import datetime
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from harness import run_kiskadee

from kiskadee.store.db import open_database
from kiskadee.store.models import Analysis, Analyzer, Fetcher, Finding, Package, Version, Waiver

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
T0 = datetime.datetime(2024, 5, 1, 12, 0, 0)


def add_version(fetcher: str, package: str, number: str, minutes: int, findings=(), previous=None) -> Version:
    """A version analyzed ``minutes`` after T0 by flawfinder, with findings given by fingerprint."""
    source, _ = Fetcher.get_or_create(name=fetcher)
    pkg, _ = Package.get_or_create(fetcher=source, name=package)
    version = Version.create(package=pkg, number=number, state="done", previous=previous,
                             finished_at=T0 + datetime.timedelta(minutes=minutes))
    tool, _ = Analyzer.get_or_create(name="flawfinder", version="2.0.19")
    analysis = Analysis.create(version=version, analyzer=tool, status="ok", finding_count=len(findings))
    for fingerprint in findings:
        Finding.create(analysis=analysis, path="src/a.c", line=1, check_id="buffer.strcpy", severity="high",
                       message="strcpy", fingerprint=fingerprint)
    return version


@pytest.fixture(scope="module")
def two_fetchers(tmp_path_factory):
    """lz4 1.9 and 1.10 from debian (1.10 fixes one finding) and from anitya (1.10 adds one)."""
    path = tmp_path_factory.mktemp("fetchers") / "kiskadee.db"
    database = open_database(str(path))
    old = add_version("debian", "lz4", "1.9", 1, ["f1", "f2"])
    add_version("debian", "lz4", "1.10", 2, ["f1"], previous=old)
    old = add_version("anitya", "lz4", "1.9", 3, ["f1", "f2"])
    newest = add_version("anitya", "lz4", "1.10", 4, ["f1", "f2", "f3"], previous=old)
    Waiver.create(package=newest.package, fingerprint="f3", kind="bug")
    add_version("debian", "zlib", "1.3", 5)
    database.close()
    return path


def test_show_names_the_fetchers_when_the_package_is_ambiguous(two_fetchers):
    shown = run_kiskadee("show", "lz4", "--db", two_fetchers)
    assert shown.returncode == 2
    assert "lz4 comes from several fetchers (anitya, debian)" in shown.stderr
    assert "--fetcher NAME" in shown.stderr
    assert shown.stdout == ""


@pytest.mark.parametrize("fetcher, findings", [("debian", 1), ("anitya", 3)])
def test_show_and_export_choose_with_fetcher(two_fetchers, fetcher, findings):
    shown = run_kiskadee("show", "lz4", "--fetcher", fetcher, "--format", "json", "--db", two_fetchers)
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert (report["fetcher"], report["version"], len(report["findings"])) == (fetcher, "1.10", findings)
    exported = run_kiskadee("export", "lz4", "1.10", "--fetcher", fetcher, "--format", "json",
                            "--db", two_fetchers)
    assert exported.returncode == 0, exported.stderr
    assert len(json.loads(exported.stdout)["findings"]) == findings


@pytest.mark.parametrize("fetcher, new, fixed", [("debian", [], ["f2"]), ("anitya", ["f3"], [])])
def test_diff_chooses_with_fetcher_and_names_them_without(two_fetchers, fetcher, new, fixed):
    ambiguous = run_kiskadee("diff", "lz4", "1.10", "--db", two_fetchers)
    assert ambiguous.returncode == 2 and "lz4 comes from several fetchers (anitya, debian)" in ambiguous.stderr
    compared = run_kiskadee("diff", "lz4", "1.10", "--fetcher", fetcher, "--format", "json", "--db", two_fetchers)
    assert compared.returncode == 0, compared.stderr
    data = json.loads(compared.stdout)
    assert (data["fetcher"], data["old"], data["new"]) == (fetcher, "1.9", "1.10")
    assert [f["fingerprint"] for f in data["new_findings"]] == new
    assert [f["fingerprint"] for f in data["fixed_findings"]] == fixed


def test_one_fetcher_needs_no_option_and_a_wrong_one_is_not_found(two_fetchers):
    assert run_kiskadee("show", "zlib", "--db", two_fetchers).returncode == 0
    missing = run_kiskadee("show", "zlib", "--fetcher", "anitya", "--db", two_fetchers)
    assert missing.returncode == 6
    assert "no analyzed version of zlib from fetcher anitya" in missing.stderr


def readme_query(after: str) -> str:
    """The SQL of the README's indented example that follows the line ``after``."""
    block = re.search(re.escape(after) + r"\n\n((?:    .*\n)+)", README)
    assert block, f"README has no query after {after!r}"
    return "\n".join(line[4:] for line in block.group(1).splitlines())


def test_readme_release_counts_are_per_fetcher(two_fetchers):
    with sqlite3.connect(two_fetchers) as connection:
        rows = connection.execute(readme_query("How many findings did each release of a package introduce and fix?"))
        assert rows.fetchall() == [("anitya", "1.10", "1.9", 1, 0), ("debian", "1.10", "1.9", 0, 1)]


def test_readme_queries_show_the_fetcher(two_fetchers):
    with sqlite3.connect(two_fetchers) as connection:
        latest = connection.execute(readme_query("Did the latest analysis of each package succeed?")).fetchall()
        assert [row[:3] for row in latest] == [("anitya", "lz4", "1.10"), ("debian", "lz4", "1.10"),
                                               ("debian", "zlib", "1.3")]
        waivers = connection.execute(readme_query("Every waiver with the package it belongs to:")).fetchall()
        assert [row[:4] for row in waivers] == [("anitya", "lz4", "f3", "bug")]


# A reader that leaves early ------------------------------------------------------------

@pytest.fixture(scope="module")
def many_packages(tmp_path_factory):
    """Far more output than a pipe holds (64 KiB), so the writer meets the closed pipe."""
    path = tmp_path_factory.mktemp("many") / "kiskadee.db"
    database = open_database(str(path))
    source = Fetcher.create(name="debian")
    with database.atomic():
        for n in range(3000):
            Package.create(fetcher=source, name=f"package-with-a-long-name-{n:05}")
    database.close()
    return path


@pytest.mark.parametrize("command", [["packages"], ["packages", "--format", "json"]])
def test_a_reader_that_leaves_early_gets_no_traceback(many_packages, command):
    """`kiskadee packages | head -1`: a real pipe whose reader closes after one line."""
    writer = subprocess.Popen([sys.executable, "-m", "kiskadee", *command, "--db", str(many_packages)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = writer.stdout.readline()
    writer.stdout.close()
    stderr = writer.stderr.read().decode()
    assert writer.wait(timeout=60) == 141       # as a tool killed by SIGPIPE: the shell's 128 + 13
    assert first.strip()
    assert stderr == ""


def test_a_reader_that_reads_everything_sees_it_all(many_packages):
    listed = run_kiskadee("packages", "--db", many_packages)
    assert listed.returncode == 0
    assert len(listed.stdout.splitlines()) == 3001
