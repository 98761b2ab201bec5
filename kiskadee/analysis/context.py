"""The source around each finding, taken while the runner still has the tree.

kiskadee keeps no copy of the trees it analyzes, so each finding carries
what the report and the exports show of its code: up to AROUND lines before
and after its line, each cut to WIDTH characters, the number of the first,
and GitHub's ``primaryLocationLineHash`` of its line as codeql-action would
compute it from the same file (``kiskadee.core.linehash``).

Files are read as codeql-action reads them: bytes decoded as UTF-8, bad
bytes replaced; the lines shown have control characters replaced too, as
they are meant for a person. Paths are relative to the tree: an absolute
path, one with '..' or one that leads out of the tree through a link is
never read, nor anything but a regular file. The cost is bounded: a file
over LARGEST_FILE bytes is not read, a tree's files are read up to
MOST_BYTES in all, each at most once for every analyzer of one analysis
(``attach``'s ``shared_with``), and one run's findings get context of at
most MOST_WIRE_BYTES as the wire writes it (JSON, non-ASCII escaped), the
most severe first, so a result of every analyzer stays far below the wire's
message limit (``limits.work_message_bytes``, 64 MiB by default).
"""

import json
import logging
import os
import re
import weakref
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from kiskadee.core.findings import SEVERITIES, Finding
from kiskadee.core.linehash import line_hashes

log = logging.getLogger(__name__)

AROUND = 3                      # lines shown before and after the flagged one
WIDTH = 240                     # characters of a line kept; a longer one ends with an ellipsis
MOST_LINES = 2 * AROUND + 1
LARGEST_FILE = 4 << 20          # bytes; larger files (generated code, amalgamations) are not read
MOST_BYTES = 32 << 20           # bytes read (and hashed, some 4 MB a second) from one tree in all
MOST_WIRE_BYTES = 4 << 20       # bytes of JSON the context of one run's findings takes on the wire

_LINE_END = re.compile(r"\r\n|\r|\n")       # as linehash reads them, so a line number means one line
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")   # all but tab and form feed (and line ends)
# The files read for one analysis, by an object that lives as long as it (see ``attach``).
_SHARED: "weakref.WeakKeyDictionary[object, SourceFiles]" = weakref.WeakKeyDictionary()


class SourceFile:
    """One file of the tree: its lines, and the line hash of each line by number."""

    def __init__(self, text: str):
        self.lines = split_lines(text)
        self.hashes = line_hashes(text)

    def around(self, number: int) -> List[str]:
        """The lines from AROUND before ``number`` to AROUND after it, for a person to read."""
        first = max(1, number - AROUND)
        return [shown(line) for line in self.lines[first - 1:number + AROUND]]


class SourceFiles:
    """The files of one tree, each read once, on demand, within the bounds above."""

    def __init__(self, root: Path, largest_file: int = LARGEST_FILE, most_bytes: int = MOST_BYTES):
        self.root = root.resolve()
        self.largest_file, self.budget = largest_file, most_bytes
        self._files: Dict[str, Optional[SourceFile]] = {}

    def get(self, path: str) -> Optional[SourceFile]:
        """The file at ``path`` (relative to the tree), or None if it is not one kiskadee reads."""
        if path not in self._files:
            self._files[path] = self._read(path)
        return self._files[path]

    def _read(self, path: str) -> Optional[SourceFile]:
        if not path or os.path.isabs(path) or ".." in Path(path).parts:
            return None                 # a system header, or a path the tool made up
        try:
            file = (self.root / path).resolve()
            if not file.is_relative_to(self.root) or not file.is_file():
                return None
            size = file.stat().st_size
            if size > self.largest_file or size > self.budget:
                return None
            self.budget -= size
            data = file.read_bytes()
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s for its findings' context: %s", path, exc)
            return None
        return SourceFile(data.decode("utf-8", errors="replace"))


def attach(findings: Sequence[Finding], tree: Path, shared_with: object = None,
           most_bytes: int = MOST_WIRE_BYTES) -> None:
    """Set the context, context_line and line_hash of each finding of one run over ``tree``.

    ``shared_with`` is any object that lives as long as the analysis (the
    pipeline gives its FunctionIndex): the runs given the same one share the
    files read, so each file is read and hashed once per analysis.
    """
    files = _files_for(tree, shared_with)
    budget = most_bytes
    for finding in sorted(findings, key=_most_severe_first):
        source = files.get(finding.path) if finding.path and finding.line > 0 else None
        if source is None or finding.line > len(source.lines):
            continue
        finding.line_hash = source.hashes.get(finding.line, "")
        lines = source.around(finding.line)
        size = len(json.dumps(lines))
        if size <= budget:
            budget -= size
            finding.context, finding.context_line = tuple(lines), max(1, finding.line - AROUND)


def split_lines(text: str) -> List[str]:
    """The lines of ``text`` as the analyzers number them: ended by LF, CR or CRLF, not by form feeds."""
    lines = _LINE_END.split(text)
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()                     # the end of the last line, not a line of its own
    return lines


def shown(line: str) -> str:
    """A source line as a report shows it: control characters replaced, cut to WIDTH characters."""
    line = _CONTROL.sub("\ufffd", line)
    return line if len(line) <= WIDTH else line[:WIDTH - 1] + "\u2026"


def _files_for(tree: Path, shared_with: object) -> SourceFiles:
    if shared_with is None:
        return SourceFiles(tree)
    files = _SHARED.get(shared_with)
    if files is None or files.root != tree.resolve():
        files = _SHARED[shared_with] = SourceFiles(tree)
    return files


def _most_severe_first(finding: Finding) -> tuple:
    return (SEVERITIES.index(finding.severity), finding.path, finding.line)
