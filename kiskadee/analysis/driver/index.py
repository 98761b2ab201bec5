"""The index the driver leaves in the output directory: mode, coverage and each unit's reports.

It is written while the run goes on (so a run killed at its timeout still
says how far it got) and read on the host by ``kiskadee.analysis.analyzers.compiled``.
"""

import json
import os
import urllib.parse
from pathlib import Path
from typing import Dict, List, Optional

INDEX = "kiskadee-index.json"
FORMAT = 1


def write(output: Path, document: Dict) -> None:
    """Replace the index atomically."""
    partial = output / (INDEX + ".partial")
    partial.write_text(json.dumps(document, indent=1))
    os.replace(partial, output / INDEX)


def read(output: Path) -> Optional[Dict]:
    """The index in ``output``, or None when the driver never wrote one."""
    try:
        document = json.loads((output / INDEX).read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and document.get("format") == FORMAT else None


def source_path(path: str, roots: List[str], directory: str = "") -> str:
    """A path from a report made relative to the source root when it lies in one of ``roots``.

    ``roots`` are the source tree and its writable copy as the driver saw them;
    relative paths are taken from ``directory``, where the compiler ran. Paths
    elsewhere (system headers, generated files) stay absolute.
    """
    if path.startswith("file://"):
        path = urllib.parse.unquote(path[len("file://"):])
    absolute = os.path.normpath(os.path.join(directory, path)) if directory else os.path.normpath(path)
    for root in roots:
        if root and (absolute == root or absolute.startswith(root.rstrip("/") + "/")):
            return os.path.relpath(absolute, root)
    return absolute if os.path.isabs(absolute) else path
