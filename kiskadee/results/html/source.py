"""The source lines around each finding: those the runner stored with it, else read from the analyzed
source where it is still on this host.

kiskadee keeps no copy of the trees it analyzed: the runner sends a few lines
around each finding with it (``kiskadee.analysis.context``), and the report
shows those. Findings stored without them (by a kiskadee before schema 12, or
beyond the runner's bounds) get them from the tree where a version's
``source_url`` is a local directory, or a local archive still holding the
analyzed bytes (``kiskadee.results.export.sourcetree.opened`` finds or unpacks
it); otherwise the report shows the line number only. Everything read is
bounded: the lines per finding, the findings given context, the size of a file
read, and a path must stay inside the tree.
"""

from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from kiskadee.analysis.context import split_lines
from kiskadee.results.export.collect import Export
from kiskadee.results.export.sourcetree import opened, stored_lines

AROUND = 3                  # lines shown before and after the flagged one
MOST_FINDINGS = 2000        # findings given context per page, best ranked first: a bound on the page's size
LARGEST_FILE = 4 << 20      # bytes; larger files (generated code, amalgamations) are not read

Lines = List[Tuple[int, str]]


def context(export: Export, findings: Sequence[Dict]) -> Tuple[Dict[int, Lines], str]:
    """The lines around each of the first MOST_FINDINGS findings (by id), and a note saying where they came from.

    The lines stored with a finding are shown; the analyzed source is looked
    for only when some located finding has none.
    """
    shown = findings[:MOST_FINDINGS]
    found = stored(shown)
    missing = [f for f in shown if f["id"] not in found and f["path"] and f["line"] > 0]
    kept = "source lines as the runner read them" if found else ""
    if not missing:
        return found, kept
    with opened(export) as (root, note):
        if root is None:
            note = note.replace("not computed", "source lines not shown", 1)
        else:
            found.update(lines_around(root, missing))
            note = f"source lines {note.replace('computed ', '', 1)}"
    return found, f"{kept}; for {len(missing)} others, {note}" if kept else note


def stored(findings: Iterable[Dict]) -> Dict[int, Lines]:
    """(number, text) of the lines stored with each of ``findings`` that has them, by id."""
    found = {}
    for finding in findings:
        lines = stored_lines(finding)
        if lines:
            found[finding["id"]] = lines
    return found


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
        return split_lines(file.read_bytes().decode("utf-8", errors="replace"))
    except (OSError, ValueError):       # a path with NUL, a file that went away: no context, not a failed report
        return None
