"""A polling fetcher's memory of its last pass: a small JSON file written atomically."""

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Dict

log = logging.getLogger(__name__)


def read_state(path: Path) -> Dict[str, object]:
    """Load a fetcher's JSON state; an absent or unreadable file is an empty state."""
    try:
        with open(path, encoding="utf-8") as stream:
            state = json.load(stream)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable state file %s (%s): this pass starts afresh", path, exc)
        return {}
    if not isinstance(state, dict):
        log.warning("ignoring state file %s: not a JSON object", path)
        return {}
    return state


def write_state(path: Path, state: Dict[str, object]) -> None:
    """Write a fetcher's JSON state atomically: a temporary file, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(state, stream, indent=1, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
