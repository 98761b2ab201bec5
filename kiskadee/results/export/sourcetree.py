"""The source of an export's findings: the lines and line hashes stored with
them, and for findings stored without, the analyzed source where it is still
on this host and the GitHub line hashes (``kiskadee.core.linehash``) of their
lines.

kiskadee keeps no copy of the sources it analyzed: the runner stores a few
lines around each finding and its line's hash with it
(``kiskadee.analysis.context``). For findings without them (stored before
schema 12) an export reads the source its ``source_url`` names when that is a
local directory, or a local archive whose sha256 is still the one analyzed
(unpacked the way the analysis unpacked it, into a temporary directory).
Remote sources are not downloaded again: an export stays fast and reads
nothing from the network.
"""

import contextlib
import hashlib
import tempfile
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple
from urllib.parse import unquote, urlparse

from kiskadee.core.linehash import line_hashes
from kiskadee.errors import SourceError
from kiskadee.results.export.collect import Export
from kiskadee.sources.unpack import unpack

CHUNK = 1 << 20


@contextlib.contextmanager
def opened(export: Export, source: Optional[Path] = None) -> Iterator[Tuple[Optional[Path], str]]:
    """The source root of the export (``source`` if given) or None, and a note saying which or why not."""
    path = Path(source) if source else _local_path(export.source_url)
    if path is None:
        yield None, f"not computed: the source ({export.source_url or 'unknown'}) is not on this host"
    elif path.is_dir():
        yield path, f"computed from {path}"
    elif not path.is_file():
        yield None, f"not computed: {path} is gone"
    elif not source and export.sha256 != _sha256(path):
        yield None, f"not computed: {path} is no longer the archive analyzed (sha256 {export.sha256 or 'unknown'})"
    else:
        with tempfile.TemporaryDirectory(prefix="kiskadee-export-") as work:
            try:
                root = unpack(path, Path(work))
            except SourceError as error:
                yield None, f"not computed: {error}"
            else:
                yield root, f"computed from {path}"


def stored_lines(finding: Dict) -> List[Tuple[int, str]]:
    """(number, text) of the source lines stored with a finding (``kiskadee.store.findings.details``), or []."""
    first = finding.get("context_line") or 0
    if first <= 0:
        return []
    return [(first + offset, line) for offset, line in enumerate(finding["context"].split("\n"))]


def finding_line_hashes(root: Path, findings: Iterable[Dict]) -> Dict[int, str]:
    """The primaryLocationLineHash of each finding (by id) whose file and line are in the tree at ``root``."""
    wanted: Dict[str, list] = {}
    for finding in findings:
        if finding["path"] and finding["line"] > 0:
            wanted.setdefault(finding["path"], []).append(finding)
    hashes: Dict[int, str] = {}
    top = root.resolve()
    for path, located in wanted.items():
        text = _text(top, path)
        if text is None:
            continue
        by_line = line_hashes(text)
        hashes.update((f["id"], by_line[f["line"]]) for f in located if f["line"] in by_line)
    return hashes


def _text(top: Path, path: str) -> Optional[str]:
    """A file of the tree as codeql-action reads it (UTF-8, bad bytes replaced); None if not a file inside it."""
    file = (top / path).resolve()
    if top not in file.parents or not file.is_file():
        return None
    return file.read_bytes().decode("utf-8", errors="replace")


def _local_path(url: str) -> Optional[Path]:
    parsed = urlparse(url or "")
    if not url or (parsed.scheme and parsed.scheme != "file"):
        return None
    return Path(unquote(parsed.path) if parsed.scheme == "file" else url)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as archive:
        for block in iter(lambda: archive.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
