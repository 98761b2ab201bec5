"""The live status line of ``kiskadee run``: queued, running, done and failed versions.

The counts come from the same questions ``kiskadee status`` asks
(``kiskadee.store.status``), read from the database the monitor writes.
"""

import logging
import shutil
import sys
import threading
from pathlib import Path
from typing import List, Optional, Tuple

import peewee

from kiskadee.config import Config, is_server
from kiskadee.errors import DatabaseError
from kiskadee.store.db import open_database
from kiskadee.store.status import running_jobs, version_counts

log = logging.getLogger(__name__)


class Progress:
    """The live status line of ``kiskadee run``: counts of queued, running, done and failed.

    On a terminal the line is redrawn (at most every ``every`` seconds) in
    place; elsewhere a plain line is printed each time the counts change.
    ``update`` takes a monotonic clock reading. Children's output goes
    through ``relay``, which keeps it from overwriting the line.
    """

    def __init__(self, settings: Config, verbosity: int = 0, stream=None, every: float = 1.0):
        self.settings, self.every = settings, every
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.quiet = verbosity < 0
        self.opened = False
        self.next_at = 0.0
        self.last: Optional[tuple] = None
        self.line = ""
        self.drawn = False              # the status line is on the terminal, under the cursor
        self.lock = threading.Lock()    # relay is called from the children's reader threads

    def update(self, now: float) -> None:
        """Redraw (or print) the status line if ``every`` seconds passed since the last time."""
        if self.quiet or now < self.next_at:
            return
        self.next_at = now + self.every
        counts = self._read()
        if counts is None:
            return
        with self.lock:
            self.line, key = counts
            if self.tty:
                self._draw()
            elif key != self.last:
                print(f"kiskadee: {self.line}", file=self.stream, flush=True)
            self.last = key

    def relay(self, text: str) -> None:
        """A line a child wrote: on a terminal the status line is cleared for it and drawn again below."""
        with self.lock:
            if self.drawn:
                self.stream.write("\r\x1b[K")
            self.stream.write(text if text.endswith("\n") else text + "\n")
            if self.drawn:
                self._draw()
            self.stream.flush()

    def filter(self, record: logging.LogRecord) -> bool:
        """As a filter of the supervisor's log handlers: clear the status line before a record is written."""
        with self.lock:
            if self.drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self.drawn = False
                self.next_at = 0.0      # and draw it again at the next update
        return True

    def _draw(self) -> None:
        width = shutil.get_terminal_size().columns - 1
        self.stream.write("\r\x1b[K" + self.line[:width] + "\r")
        self.stream.flush()
        self.drawn = True

    def say(self, text: str) -> None:
        """A message for the person at the terminal, on its own line above the status line."""
        if not self.quiet:
            with self.lock:
                print(("\r\x1b[K" if self.tty else "") + f"kiskadee: {text}", file=self.stream, flush=True)
                self.drawn = False
                self.next_at = 0.0

    def finish(self) -> None:
        """Leave the last status line on the terminal, and the cursor on a fresh line."""
        with self.lock:
            if self.tty and self.line:
                self.stream.write(f"\r\x1b[K{self.line}\n")
                self.stream.flush()
            self.drawn = False

    def _read(self) -> Optional[Tuple[str, tuple]]:
        database = self.settings.database
        try:
            if not self.opened:
                # The monitor creates the database; until it has, there is nothing to show.
                if not is_server(database.location) and not Path(database.location).exists():
                    return None
                open_database(database.location, schema="current", busy_timeout_ms=1000)
                self.opened = True
            counts, jobs = version_counts(), running_jobs()
        except (DatabaseError, peewee.DatabaseError) as exc:
            log.debug("no progress from %s yet: %s", database.location, exc)
            return None
        return progress_line(counts, jobs), (counts["queued"], len(jobs), counts["done"], counts["failed"])


def progress_line(counts: dict, jobs: List[dict]) -> str:
    """``queued 3  running 2 (hello 2.10 cppcheck; jq 1.6 flawfinder)  done 10  failed 1``."""
    running = f"running {len(jobs)}"
    if jobs:
        running += " (" + "; ".join(_doing(job) for job in jobs) + ")"
    return f"queued {counts['queued']}  {running}  done {counts['done']}  failed {counts['failed']}"


def _doing(job: dict) -> str:
    """"hello 2.10 cppcheck" from the runner's "analyzing hello 2.10 with cppcheck"."""
    words = job["activity"].replace(f"{job['package']} {job['version']}", " ").split()
    if "with" in words:
        words = words[words.index("with") + 1:]
    return " ".join([job["package"], job["version"]] + words)
