"""Normalized findings and their fingerprints.

A fingerprint identifies the same problem across releases: it is built from
the analyzer, its check id, the path relative to the source root (so without
the version-bearing top directory), the message with numbers normalized and
the source line with all whitespace removed, never the line number. Identical
findings within one file are told apart by their order of occurrence.
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

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")
        if self.cwes and self.cwe is None:
            self.cwe = self.cwes[0]
        elif self.cwe is not None and self.cwe not in self.cwes:
            self.cwes = (self.cwe,) + tuple(self.cwes)


class SourceLines:
    """Reads source lines of a tree on demand, each file once."""

    def __init__(self, root: Path):
        self.root = root
        self._files: Dict[str, List[str]] = {}

    def line(self, path: str, number: int) -> str:
        if path not in self._files:
            self._files[path] = self._read(path)
        lines = self._files[path]
        return lines[number - 1] if 0 < number <= len(lines) else ""

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

    The n-th repetition of an identical finding in a file gets the base
    fingerprint extended by n, so each stays unique and stable.
    """
    lines = SourceLines(root)
    seen: Dict[str, int] = defaultdict(int)
    for finding in sorted(findings, key=lambda f: (f.path, f.line, f.column)):
        base = fingerprint(analyzer, finding, lines.line(finding.path, finding.line))
        occurrence = seen[base]
        seen[base] += 1
        finding.fingerprint = base if occurrence == 0 else _digest(f"{base}:{occurrence}")
