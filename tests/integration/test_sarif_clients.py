"""kiskadee's SARIF read by the tools people use: CodeChecker (from PyPI, in the environment
'make test-setup' gives it) and GitHub code scanning's codeql-action, whose line hash
kiskadee computes.

The export is GNU hello 2.10 (tests/fixtures/hello_2.10.orig.tar.gz) analyzed by the real
cppcheck and flawfinder: a few hundred findings.
"""

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from harness import FIXTURES, run_kiskadee

from kiskadee.core.linehash import line_hashes
from kiskadee.results.export.sarif import STORED_HASHES

CODECHECKER = Path(os.environ.get("KISKADEE_CODECHECKER")
                   or Path.home() / ".cache" / "kiskadee" / "codechecker" / "bin" / "CodeChecker")
HELLO = FIXTURES / "hello_2.10.orig.tar.gz"


@pytest.fixture(scope="module")
def hello_sarif(tmp_path_factory):
    work = tmp_path_factory.mktemp("clients")
    db = work / "kiskadee.db"
    assert run_kiskadee("analyze", HELLO, "--db", db).returncode in (0, 1)
    exported = run_kiskadee("export", "hello", "2.10", "--format", "sarif", "--db", db)
    assert exported.returncode == 0, exported.stderr
    log = json.loads(exported.stdout)
    with sqlite3.connect(db) as connection:
        (stored,), = connection.execute("SELECT count(*) FROM finding_detail WHERE package = 'hello'").fetchall()
    assert sum(len(run["results"]) for run in log["runs"]) == stored
    return log


def codechecker_reports(log, directory):
    """The reports `CodeChecker parse` reads from the SARIF log ``log``."""
    if not CODECHECKER.exists():
        pytest.fail(f"no CodeChecker at {CODECHECKER}: 'make test-setup' installs it (or set KISKADEE_CODECHECKER)")
    directory.mkdir()
    (directory / "kiskadee.sarif").write_text(json.dumps(log))
    output = directory.parent / f"{directory.name}.json"
    parsed = subprocess.run([str(CODECHECKER), "parse", str(directory), "-e", "json", "-o", str(output)],
                            capture_output=True, text=True, timeout=300)
    assert output.exists(), parsed.stdout + parsed.stderr
    return json.loads(output.read_text())["reports"]


def located(log):
    """The results with a file and a line: those a tool can show in the source."""
    return [r for run in log["runs"] for r in run["results"]
            if r["locations"] and "region" in r["locations"][0]["physicalLocation"]]


@pytest.mark.slow
def test_codechecker_reads_every_finding_with_a_location(hello_sarif, tmp_path):
    reports = codechecker_reports(hello_sarif, tmp_path / "export")
    results = [r for run in hello_sarif["runs"] for r in run["results"]]
    assert len(reports) == len(located(hello_sarif)) > 300
    # The only results CodeChecker does not read are cppcheck's notes about no file at all.
    assert {r["ruleId"] for r in results if not r["locations"]} <= {"toomanyconfigs", "missingInclude"}
    read = sorted((r["file"]["path"], r["line"], r["checker_name"]) for r in reports)
    exported = sorted(("/hello-2.10/" + r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                       r["locations"][0]["physicalLocation"]["region"]["startLine"], r["ruleId"])
                      for r in located(hello_sarif))
    assert read == exported
    assert {r["analyzer_name"] for r in reports} == {"cppcheck", "flawfinder"}


@pytest.mark.slow
def test_codechecker_reads_nothing_without_the_source_roots_uri(hello_sarif, tmp_path):
    """Why SRCROOT has a uri: without one CodeChecker cannot place a single result."""
    stripped = json.loads(json.dumps(hello_sarif))
    for run in stripped["runs"]:
        del run["originalUriBaseIds"]["SRCROOT"]["uri"]
    assert codechecker_reports(stripped, tmp_path / "stripped") == []


@pytest.mark.slow
def test_every_located_finding_has_a_line_hash_from_the_analyzed_file(hello_sarif, tmp_path):
    assert all(run["properties"]["lineHashes"] == STORED_HASHES for run in hello_sarif["runs"])
    results = located(hello_sarif)
    assert all("primaryLocationLineHash" in r["partialFingerprints"] for r in results)
    subprocess.run(["tar", "-xzf", str(HELLO), "-C", str(tmp_path)], check=True)
    result = next(r for r in results if r["ruleId"] == "buffer.strcpy")
    location = result["locations"][0]["physicalLocation"]
    text = (tmp_path / "hello-2.10" / location["artifactLocation"]["uri"]).read_text()
    assert result["partialFingerprints"]["primaryLocationLineHash"] == \
        line_hashes(text)[location["region"]["startLine"]]


CODEQL_ACTION_CASES = [
    # github/codeql-action, src/fingerprints.test.ts: the hashes its upload step computes.
    ("", ["c129715d7a2bc9a3:1"]),
    (" a\nb\n  \t\tc\n d", ["271789c17abda88f:1", "54703d4cd895b18:1", "180aee12dab6264:1", "a23a3dc5e078b07b:1"]),
    (" hello; \t\nworld!!!\n\n\n  \t\tGreetings\n End",
     ["8b7cf3e952e7aeb2:1", "b1ae1287ec4718d9:1", "bff680108adb0fcc:1", "c6805c5e1288b612:1",
      "b86d3392aea1be30:1", "e6ceba753e1a442:1"]),
    (" hello; \t\nworld!!!\n\n\n  \t\tGreetings\n End\n",
     ["e9496ae3ebfced30:1", "fb7c023a8b9ccb3f:1", "ce8ba1a563dcdaca:1", "e20e36e16fcb0cc8:1",
      "b3edc88f2938467e:1", "c8e28b0b4002a3a0:1", "c129715d7a2bc9a3:1"]),
    (" hello; \t\nworld!!!\r\r\r  \t\tGreetings\r End\r",
     ["e9496ae3ebfced30:1", "fb7c023a8b9ccb3f:1", "ce8ba1a563dcdaca:1", "e20e36e16fcb0cc8:1",
      "b3edc88f2938467e:1", "c8e28b0b4002a3a0:1", "c129715d7a2bc9a3:1"]),
    (" hello; \t\r\nworld!!!\r\n\r\n\r\n  \t\tGreetings\r\n End\r\n",
     ["e9496ae3ebfced30:1", "fb7c023a8b9ccb3f:1", "ce8ba1a563dcdaca:1", "e20e36e16fcb0cc8:1",
      "b3edc88f2938467e:1", "c8e28b0b4002a3a0:1", "c129715d7a2bc9a3:1"]),
    ("Lorem ipsum dolor sit amet.\n" * 10,
     ["a7f2ff13bc495cf2:1", "a7f2ff13bc495cf2:2", "a7f2ff13bc495cf2:3", "a7f2ff13bc495cf2:4",
      "a7f2ff13bc495cf2:5", "a7f2ff13bc495cf2:6", "a7f2ff1481e87703:1", "a9cf91f7bbf1862b:1",
      "55ec222b86bcae53:1", "cc97dc7b1d7d8f7b:1", "c129715d7a2bc9a3:1"]),
]


@pytest.mark.parametrize("text, expected", CODEQL_ACTION_CASES)
def test_line_hashes_are_those_codeql_action_computes(text, expected):
    hashes = line_hashes(text)
    assert [hashes[line] for line in sorted(hashes)] == expected
    assert sorted(hashes) == list(range(1, len(expected) + 1))
