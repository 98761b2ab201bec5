"""Each finding carries its source lines and GitHub's line hash from the runner to the database, so
``kiskadee export`` and ``kiskadee report`` show code after the tree is gone.

A copy of the synthetic widget 1.0 (tests/fixtures/synthetic) with two more files, one whose
flagged line holds a script element and one whose comment holds a byte that is not UTF-8, is
analyzed by the real cppcheck and flawfinder through the real ``kiskadee analyze`` into a real
SQLite file; the tree is then deleted, and the SARIF export and the HTML report are checked
against what the files held: every located finding's line hash is the one codeql-action computes
from the file, its snippet and context region are the file's lines, and the report's page shows
them as text. The same findings cross the wire intact, and a real runner's results for GNU hello
2.10 (tests/fixtures) reach the real monitor's database with their lines and hashes.
"""

import json
import re
import shutil
import sqlite3
from html.parser import HTMLParser

import pytest
from harness import FIXTURES, HELLO_TARBALL, Suite, run_kiskadee, submit, wait_until

from kiskadee.analysis.analyzers import make_analyzers
from kiskadee.analysis.pipeline import analyze_tree
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.analysis.sandbox.local import LocalSandbox
from kiskadee.config import from_mapping
from kiskadee.core.linehash import line_hashes
from kiskadee.core.runs import AnalyzerRun
from kiskadee.results.export.sarif import STORED_HASHES
from kiskadee.service import wire

HOSTILE_LINE = '    strcpy(out, "<script>window.pwned=1</script>");'
HOSTILE_SOURCE = "#include <string.h>\n\nvoid copy_hostile(char *out)\n{\n" + HOSTILE_LINE + "\n}\n"
# flawfinder skips a file that is not UTF-8; cppcheck reads it
LATIN1_SOURCE = "int latin1(void)\n{\n    int table[2] = {1, 2};  /* caf\xe9 */\n    return table[2];\n}\n"


class Text(HTMLParser):
    """The text of a page, and every start tag."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.text, self.tags = [], []
        self.feed(page)

    def handle_data(self, data):
        self.text.append(data)

    def handle_starttag(self, tag, attributes):
        self.tags.append(tag)


def widget_tree(work):
    tree = work / "widget-1.0"
    shutil.copytree(FIXTURES / "synthetic" / "widget-1.0", tree)
    (tree / "src" / "hostile.c").write_text(HOSTILE_SOURCE)
    (tree / "src" / "latin1.c").write_bytes(LATIN1_SOURCE.encode("latin-1"))
    return tree


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    """The widget analyzed into a database, the tree's files as they were (bytes by path), the tree deleted."""
    work = tmp_path_factory.mktemp("context")
    tree = widget_tree(work)
    files = {path.relative_to(tree).as_posix(): path.read_bytes() for path in tree.rglob("*") if path.is_file()}
    db = work / "kiskadee.db"
    done = run_kiskadee("analyze", tree, "--analyzers", "cppcheck,flawfinder", "--db", db)
    assert done.returncode in (0, 1), done.stderr
    shutil.rmtree(tree)
    return db, files


def lines_of(data: bytes):
    """The lines as the analyzers number them: ended by LF, CR or CRLF only (GNU's form feeds are not ends)."""
    lines = re.split(r"\r\n|\r|\n", data.decode("utf-8", errors="replace"))
    return lines[:-1] if lines[-1] == "" else lines


def test_every_located_finding_is_stored_with_its_lines_and_hash(analyzed):
    db, files = analyzed
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT path, line, context, context_line, line_hash FROM finding"
                                  " WHERE path != '' AND line > 0").fetchall()
    assert len(rows) >= 5 and {path for path, *_ in rows} >= {"src/widget.c", "src/hostile.c", "src/latin1.c"}
    for path, line, context, first, line_hash in rows:
        lines = lines_of(files[path])
        assert first == max(1, line - 3)
        assert context.split("\n") == lines[first - 1:line + 3]
        assert line_hash == line_hashes(files[path].decode("utf-8", errors="replace"))[line]


def test_sarif_has_line_hashes_and_snippets_without_the_tree(analyzed):
    db, files = analyzed
    exported = run_kiskadee("export", "widget", "1.0", "--format", "sarif", "--db", db)
    assert exported.returncode == 0, exported.stderr
    runs = json.loads(exported.stdout)["runs"]
    assert {run["tool"]["driver"]["name"] for run in runs} == {"cppcheck", "flawfinder"}
    located = [r for run in runs for r in run["results"] if r["locations"]
               and "region" in r["locations"][0]["physicalLocation"]]
    assert len(located) >= 5
    for run in runs:
        assert run["properties"]["lineHashes"] == STORED_HASHES
    for result in located:
        physical = result["locations"][0]["physicalLocation"]
        path, line = physical["artifactLocation"]["uri"], physical["region"]["startLine"]
        text = files[path].decode("utf-8", errors="replace")
        assert result["partialFingerprints"]["primaryLocationLineHash"] == line_hashes(text)[line]
        lines = lines_of(files[path])
        assert physical["region"]["snippet"]["text"] == lines[line - 1]
        around = physical["contextRegion"]
        assert around["startLine"] == max(1, line - 3) and around["endLine"] == min(len(lines), line + 3)
        assert around["snippet"]["text"] == "\n".join(lines[around["startLine"] - 1:around["endLine"]])
    strcpy = next(r for r in located if r["ruleId"] == "buffer.strcpy"
                  and r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/hostile.c")
    assert strcpy["locations"][0]["physicalLocation"]["region"]["snippet"]["text"] == HOSTILE_LINE


def test_report_shows_the_source_lines_without_the_tree(analyzed, tmp_path):
    db, files = analyzed
    out = tmp_path / "html"
    done = run_kiskadee("report", "widget", "--db", db, "-o", out)
    assert done.returncode == 0, done.stderr
    page = (out / "local" / "widget" / "1.0" / "index.html").read_text(encoding="utf-8")
    parsed = Text(page)
    shown = "".join(parsed.text)
    assert "source lines as the runner read them" in shown
    widget = lines_of(files["src/widget.c"])
    flagged = next(number for number, line in enumerate(widget, 1) if "strcpy(w->name, name);" in line)
    assert "".join(f"{n}{widget[n - 1]}\n" for n in range(flagged - 3, flagged + 4)) in shown
    assert f"5{HOSTILE_LINE}\n" in shown                   # the script element is text ...
    assert parsed.tags.count("script") == 2                 # ... not an element: report.js and the data
    assert "3    int table[2] = {1, 2};  /* caf\ufffd */\n" in shown   # a byte that is not UTF-8, replaced


def test_the_runners_findings_keep_their_lines_over_the_wire(tmp_path):
    """What a runner sends the monitor: the same findings, lines and hashes, within the default limits."""
    analyzers = make_analyzers(["cppcheck", "flawfinder"], from_mapping({}).analyzers)
    runs = analyze_tree(widget_tree(tmp_path), analyzers, LocalSandbox(),
                        Limits(timeout=300, memory_mb=4096, max_output_bytes=64 * 1024**2))
    assert all(f.line_hash for run in runs for f in run.findings if f.path and f.line)
    frame = wire.encode("result", runner="r1", job=1, runs=[run.to_wire() for run in runs])
    received = [AnalyzerRun.from_wire(run) for run in wire.decode(frame, wire.DEFAULT_LIMITS.work_message_bytes)
                .fields["runs"]]
    assert received == runs


@pytest.mark.slow          # about 3 to 5 s: a monitor and a runner started
def test_a_runner_sends_the_lines_and_hashes_the_monitor_stores(short_tmp, tmp_path):
    """The service path: a real runner analyzes hello 2.10, the real monitor stores what it sent."""
    suite = Suite(short_tmp)
    try:
        suite.start_monitor()
        suite.start_runner("r1")
        submit(suite, "hello", "2.10", HELLO_TARBALL)
        wait_until(lambda: suite.states().get("hello 2.10") == "done", 60, "hello 2.10 analyzed")
        rows = suite.rows("SELECT path, line, context, context_line, line_hash FROM finding")
    finally:
        suite.stop()
    shutil.unpack_archive(HELLO_TARBALL, tmp_path)
    assert len(rows) > 300
    for path, line, context, first, line_hash in rows:
        text = (tmp_path / "hello-2.10" / path).read_bytes().decode("utf-8", errors="replace")
        assert line_hash == line_hashes(text)[line], (path, line)
        assert (first, context.split("\n")) == (max(1, line - 3), lines_of(text.encode())[first - 1:line + 3])
