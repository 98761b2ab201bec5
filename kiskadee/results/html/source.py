"""The source lines around each finding, read from the analyzed source where it is still on this host.

kiskadee keeps no copy of the trees it analyzed. Where a version's
``source_url`` is a local directory, or a local archive still holding the
analyzed bytes, ``kiskadee.results.export.sourcetree.opened`` finds (or
unpacks) it and the report shows a few lines around each finding; otherwise
it shows the line number only. Everything read is bounded: the lines per
finding, the findings given context, the size of a file read, and a path must
stay inside the tree.
"""

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from kiskadee.results.export.collect import Export
from kiskadee.results.export.sourcetree import opened

AROUND = 3                  # lines shown before and after the flagged one
MOST_FINDINGS = 2000        # findings given context per page, best ranked first: a bound on the page's size
LARGEST_FILE = 4 << 20      # bytes; larger files (generated code, amalgamations) are not read

Lines = List[Tuple[int, str]]


def context(export: Export, findings: Sequence[Dict]) -> Tuple[Dict[int, Lines], str]:
    """The lines around each of the first MOST_FINDINGS findings (by id), and a note saying where they came from."""
    with opened(export) as (root, note):
        if root is None:
            return {}, note.replace("not computed", "source lines not shown", 1)
        return lines_around(root, findings[:MOST_FINDINGS]), f"source lines {note.replace('computed ', '', 1)}"


def lines_around(root: Path, findings: Sequence[Dict], around: int = AROUND) -> Dict[int, Lines]:
    """(number, text) of the lines around each finding that has a file and a line in the tree at ``root``."""
    wanted: Dict[str, List[Dict]] = {}
    for finding in findings:
        if finding["path"] and finding["line"] > 0:
            wanted.setdefault(finding["path"], []).append(finding)
    found: Dict[int, Lines] = {}
    top = root.resolve()
    for path, located in wanted.items():
        lines = _lines(top, path)
        if not lines:
            continue
        for finding in located:
            first, last = max(1, finding["line"] - around), min(len(lines), finding["line"] + around)
            if first <= last:
                found[finding["id"]] = [(number, lines[number - 1]) for number in range(first, last + 1)]
    return found


def _lines(top: Path, path: str) -> Optional[List[str]]:
    """The lines of a file of the tree (UTF-8, bad bytes replaced); None if it is not a regular file inside it."""
    try:
        file = (top / path).resolve()
        if top not in file.parents or not file.is_file() or file.stat().st_size > LARGEST_FILE:
            return None
        return file.read_bytes().decode("utf-8", errors="replace").splitlines()
    except (OSError, ValueError):       # a path with NUL, a file that went away: no context, not a failed report
        return None
