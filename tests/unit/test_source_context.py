"""kiskadee.analysis.context: the lines around each finding and its line hash, read from real files
of a temporary tree within the module's bounds."""

import json
import os
from pathlib import Path

import pytest

from kiskadee.analysis import context
from kiskadee.core.findings import Finding
from kiskadee.core.linehash import line_hashes

SOURCE = "".join(f"line {n};\n" for n in range(1, 21))


class Analysis:
    """Stands for what lives as long as one analysis (the pipeline's FunctionIndex)."""


def found(path: str, line: int, severity: str = "low") -> Finding:
    return Finding(path, line, "check", severity, "message")


@pytest.fixture
def tree(tmp_path) -> Path:
    (tmp_path / "tree" / "src").mkdir(parents=True)
    (tmp_path / "tree" / "src" / "a.c").write_text(SOURCE)
    (tmp_path / "secret.c").write_text("secret;\n")
    return tmp_path / "tree"


def test_three_lines_either_side_and_the_line_hash(tree):
    middle, first, last = found("src/a.c", 10), found("src/a.c", 1), found("src/a.c", 20)
    context.attach([middle, first, last], tree)
    assert (middle.context_line, middle.context) == (7, tuple(f"line {n};" for n in range(7, 14)))
    assert (first.context_line, first.context) == (1, tuple(f"line {n};" for n in range(1, 5)))
    assert (last.context_line, last.context) == (17, tuple(f"line {n};" for n in range(17, 21)))
    assert middle.line_hash == line_hashes(SOURCE)[10] and first.line_hash == line_hashes(SOURCE)[1]


def test_repeated_lines_get_githubs_occurrence_numbers(tree):
    (tree / "src" / "b.c").write_text("x = 1;\n" * 40)     # a hash covers 100 characters from its line on
    findings = [found("src/b.c", 1), found("src/b.c", 2)]
    context.attach(findings, tree)
    hashes = [f.line_hash.split(":") for f in findings]
    assert hashes[0][0] == hashes[1][0] and (hashes[0][1], hashes[1][1]) == ("1", "2")


@pytest.mark.parametrize("path", ["../secret.c", "src/../../secret.c", "/etc/passwd", "", "src/none.c",
                                  "src", "src/a.c\0x"])
def test_nothing_outside_the_tree_or_not_a_file_is_read(tree, path):
    finding = found(path, 1)
    context.attach([finding], tree)
    assert (finding.context, finding.context_line, finding.line_hash) == ((), 0, "")


def test_a_link_out_of_the_tree_is_not_followed(tree):
    os.symlink(tree.parent / "secret.c", tree / "src" / "link.c")
    finding = found("src/link.c", 1)
    context.attach([finding], tree)
    assert (finding.context, finding.line_hash) == ((), "")


def test_no_context_for_a_line_the_file_does_not_have(tree):
    beyond, none = found("src/a.c", 21), found("src/a.c", 0)
    context.attach([beyond, none], tree)
    assert (beyond.context, beyond.line_hash, none.context, none.line_hash) == ((), "", (), "")


def test_undecodable_bytes_control_characters_and_long_lines_are_made_readable(tree):
    """Form feeds (GNU's page breaks) stay, and end no line: the analyzers count LF, CR and CRLF only."""
    long_line = "x" * 300
    (tree / "src" / "odd.c").write_bytes(b"caf\xe9\x00\x1b[31m\tend\r\n" + long_line.encode() + b"\r\x0clast")
    findings = [found("src/odd.c", 1), found("src/odd.c", 2), found("src/odd.c", 3)]
    context.attach(findings, tree)
    assert findings[0].context == ("caf\ufffd\ufffd\ufffd[31m\tend", "x" * 239 + "\u2026", "\x0clast")
    assert all(len(line) <= context.WIDTH for line in findings[0].context)
    assert findings[2].line_hash == line_hashes(f"caf\ufffd\x00\x1b[31m\tend\r\n{long_line}\r\x0clast")[3]


def test_the_context_budget_goes_to_the_most_severe_findings_first(tree):
    low, high = found("src/a.c", 4, "low"), found("src/a.c", 10, "high")
    context.attach([low, high], tree, most_bytes=90)      # 7 lines of "line N;" take 81 bytes of JSON
    assert len(high.context) == 7 and low.context == () and low.context_line == 0
    assert low.line_hash == line_hashes(SOURCE)[4]      # a line hash costs little: every finding has one


def test_files_are_read_within_the_bounds(tree):
    (tree / "src" / "b.c").write_text(SOURCE)
    assert context.SourceFiles(tree, largest_file=len(SOURCE) - 1).get("src/a.c") is None
    files = context.SourceFiles(tree, most_bytes=len(SOURCE) + 1)
    assert files.get("src/a.c").lines[0] == "line 1;" and files.get("src/b.c") is None


def test_runs_of_one_analysis_share_the_files_read(tree):
    analysis = Analysis()
    context.attach([found("src/a.c", 2)], tree, shared_with=analysis)
    (tree / "src" / "a.c").write_text("changed\n" * 20)     # read once: the second run sees the first reading
    again = found("src/a.c", 2)
    context.attach([again], tree, shared_with=analysis)
    assert again.context[1] == "line 2;"
    fresh = found("src/a.c", 2)
    context.attach([fresh], tree)
    assert fresh.context[1] == "changed"


def test_the_context_of_a_run_stays_within_its_wire_budget_whatever_the_characters(tree):
    """An emoji takes 12 bytes of JSON (a surrogate pair, escaped): the budget counts bytes on the wire."""
    (tree / "src" / "wide.c").write_text(("\U0001F600" * 240 + "\n") * 1500)
    findings = [found("src/wide.c", line) for line in range(1, 1501)]
    context.attach(findings, tree)
    sent = sum(len(json.dumps(list(f.context))) for f in findings if f.context)
    assert context.MOST_WIRE_BYTES - 30000 < sent <= context.MOST_WIRE_BYTES
    assert all(f.line_hash for f in findings)
