"""Normalized findings and their fingerprints.

A fingerprint identifies the same problem across releases: it is built from
the analyzer, its check id, the path relative to the source root (so without
the version-bearing top directory), the message with numbers normalized and
the source line with all whitespace removed, never the line number.

Identical findings within one file (the same call flagged in two functions)
are told apart by their context: the function the tool names, if any, and
the nearest non-blank lines above and below, whitespace removed. So a new
function inserted before an old one, with the same flagged line, gets a new
fingerprint and the old one keeps its own, with its waiver; only findings
identical in context too fall back to their order of occurrence.

This changes only the fingerprints of repeated findings: a finding that is
the only one of its kind in its file keeps exactly the fingerprint it always
had, so the findings and waivers of existing databases still match. (Before,
repeated findings were numbered by order alone: the second became the base
fingerprint extended by ``:1``.) A repeated finding's fingerprint is
``SHARED`` characters of a digest of its context, then the first ``SHARED``
characters of the base fingerprint its copies share (so the prefix people
type, as ``show`` prints it, still differs between them): a release diff
that finds the code around a repeated line changed (or a lone finding
repeated, or a repeated one now alone) can still tell that the findings are
on the same line text (``kiskadee.core.moves``).
"""

import dataclasses
import hashlib
import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

SEVERITIES = ("high", "medium", "low", "info")   # most severe first

_NUMBER = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")
CONTEXT_LINES = 2       # non-blank neighbours on each side that tell repeated findings apart
SHARED = 16             # characters of the base fingerprint that the repeated findings' fingerprints keep


@dataclasses.dataclass
class Finding:
    """One warning of one analyzer, normalized to kiskadee's common fields."""

    path: str               # relative to the source root, '' when the tool gives none
    line: int
    check_id: str
    severity: str           # one of SEVERITIES
    message: str
    column: int = 0
    function: str = ""
    cwe: Optional[int] = None       # the main CWE: the first of ``cwes``
    cwes: Tuple[int, ...] = ()      # every CWE the tool gives, the main one first
    fingerprint: str = ""
    rank: float = 0.0
    # The source around ``line`` as the runner read it (kiskadee.analysis.context), so reports and
    # exports show code without the tree: the lines, the number of the first (0: none), and
    # GitHub's primaryLocationLineHash of ``line`` (kiskadee.core.linehash).
    context: Tuple[str, ...] = ()
    context_line: int = 0
    line_hash: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")
        self.cwes = tuple(self.cwes)        # a list when it came over the wire
        self.context = tuple(self.context)
        if self.cwes and self.cwe is None:
            self.cwe = self.cwes[0]
        elif self.cwe is not None and self.cwe not in self.cwes:
            self.cwes = (self.cwe,) + self.cwes


class SourceLines:
    """Reads source lines of a tree on demand, each file once."""

    def __init__(self, root: Path):
        self.root = root
        self._files: Dict[str, List[str]] = {}

    def line(self, path: str, number: int) -> str:
        lines = self._lines(path)
        return lines[number - 1] if 0 < number <= len(lines) else ""

    def context(self, path: str, number: int, width: int = CONTEXT_LINES) -> Tuple[List[str], List[str]]:
        """The ``width`` nearest non-blank lines above and below line ``number``, whitespace removed."""
        lines = self._lines(path)
        above = [text for text in (_SPACE.sub("", line) for line in reversed(lines[:max(number - 1, 0)])) if text]
        below = [text for text in (_SPACE.sub("", line) for line in lines[number:]) if text]
        return above[:width], below[:width]

    def _lines(self, path: str) -> List[str]:
        if path not in self._files:
            self._files[path] = self._read(path)
        return self._files[path]

    def _read(self, path: str) -> List[str]:
        if not path:
            return []
        try:
            return (self.root / path).read_text(errors="replace").splitlines()
        except OSError:
            return []


def fingerprint(analyzer: str, finding: Finding, source_line: str) -> str:
    """The release-stable identity of a finding (hex, 32 characters)."""
    parts = (
        analyzer,
        finding.check_id,
        finding.path,
        _NUMBER.sub("N", finding.message),
        _SPACE.sub("", source_line),
    )
    return _digest("\0".join(parts))


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def assign_fingerprints(analyzer: str, findings: Iterable[Finding], root: Path) -> None:
    """Set the fingerprint of each finding, reading source lines from ``root``.

    A finding alone of its kind in its file gets ``fingerprint``; identical
    ones are told apart by ``_in_context`` (see the module's docstring).
    """
    lines = SourceLines(root)
    groups: Dict[str, List[Finding]] = defaultdict(list)
    for finding in sorted(findings, key=lambda f: (f.path, f.line, f.column)):
        groups[fingerprint(analyzer, finding, lines.line(finding.path, finding.line))].append(finding)
    for base, group in groups.items():
        if len(group) == 1:
            group[0].fingerprint = base
        else:
            _in_context(base, group, lines)


def _in_context(base: str, group: List[Finding], lines: SourceLines) -> None:
    """Fingerprints for identical findings: from their function and neighbouring lines, then their order."""
    seen: Dict[str, int] = defaultdict(int)
    for finding in group:        # in order of occurrence
        above, below = lines.context(finding.path, finding.line)
        in_context = _digest("\0".join([base, finding.function, "\n".join(above), "\n".join(below)]))
        occurrence = seen[in_context]
        seen[in_context] += 1
        distinct = in_context if occurrence == 0 else _digest(f"{in_context}:{occurrence}")
        finding.fingerprint = distinct[:SHARED] + base[:SHARED]
