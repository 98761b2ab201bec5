"""A polling fetcher's memory of its last delivered pass: a small JSON file written atomically.

A pass reads the memory, works out what it would remember, and stages it
(``PassMemory.stage``); the caller commits it only once the monitor
acknowledged every event of the pass. A pass that could not deliver (the
monitor down, the command killed) leaves the file as it was, so the next
pass announces the same versions again instead of losing them.
"""

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Dict, Optional

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


class PassMemory:
    """The state file of one polling fetcher, replaced only when a pass is committed."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._staged: Optional[Dict[str, object]] = None

    def read(self) -> Dict[str, object]:
        """What the last committed pass remembered (empty before the first)."""
        return read_state(self.path)

    def stage(self, state: Dict[str, object]) -> None:
        """Hold what a complete pass would remember, until ``commit``."""
        self._staged = state

    def commit(self) -> bool:
        """Write the staged state; False (nothing written) when no complete pass was staged."""
        if self._staged is None:
            return False
        write_state(self.path, self._staged)
        self._staged = None
        return True
