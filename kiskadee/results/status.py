"""``kiskadee status``: what the service is doing, read from the database.

The query functions are plain reads through the models, bound by
``open_database``; ``Progress``, the live status line of ``kiskadee run``,
reuses them, so the questions are asked in one place. Times are naive UTC, as
stored; ``now`` is always passed in.
"""

import datetime
import logging
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import peewee

from kiskadee.config import Config
from kiskadee.errors import EXIT_OK, DatabaseError
from kiskadee.results import render
from kiskadee.store.db import open_database
from kiskadee.store.models import Package, Runner, Version, utcnow

log = logging.getLogger(__name__)

STATES = ("seen", "queued", "leased", "done", "failed", "unresolved")
FAILED_STATES = ("failed", "unresolved")
GONE_AFTER = 60.0           # seconds of silence after which a runner is shown as gone
RECENT_FAILURES = 10


def version_counts() -> Dict[str, int]:
    """How many versions are in each state; every known state is present, zero or not."""
    counts = {state: 0 for state in STATES}
    query = Version.select(Version.state, peewee.fn.COUNT(Version.id)).group_by(Version.state)
    counts.update(dict(query.tuples()))
    return counts


def runners(now: datetime.datetime, gone_after: float = GONE_AFTER) -> List[Dict]:
    """Every runner the monitor heard of: state (``gone`` when silent too long) and what it does."""
    horizon = now - datetime.timedelta(seconds=gone_after)
    query = (Runner.select(Runner, Version, Package)
             .join(Version, peewee.JOIN.LEFT_OUTER).join(Package, peewee.JOIN.LEFT_OUTER)
             .order_by(Runner.name))
    rows = []
    for runner in query:
        gone = runner.state == "gone" or runner.last_seen < horizon
        version = runner.version
        rows.append({
            "name": runner.name,
            "state": "gone" if gone else runner.state,
            "package": version.package.name if version else "",
            "version": version.number if version else "",
            "activity": runner.activity,
            "last_seen": runner.last_seen,
            "seconds_ago": round(max(0.0, (now - runner.last_seen).total_seconds()), 1),
        })
    return rows


def running_jobs() -> List[Dict]:
    """The leased versions, oldest lease first, with what their runner last said it was doing."""
    activity = dict(Runner.select(Runner.name, Runner.activity).tuples())
    query = (Version.select(Version, Package).join(Package)
             .where(Version.state == "leased").order_by(Version.started_at, Version.id))
    return [{"package": v.package.name, "version": v.number, "runner": v.leased_by,
             "activity": activity.get(v.leased_by, "")} for v in query]


def recent_failures(limit: int = RECENT_FAILURES) -> List[Dict]:
    """The latest failed (or unresolved) versions, most recently finished first."""
    query = (Version.select(Version, Package).join(Package)
             .where(Version.state.in_(FAILED_STATES))
             .order_by(Version.finished_at.desc(), Version.id.desc()).limit(limit))
    return [{"package": v.package.name, "version": v.number, "state": v.state,
             "error": v.error, "finished_at": v.finished_at} for v in query]


def queue(now: datetime.datetime) -> Dict:
    """Queued versions split into those due now and those waiting on a backoff."""
    queued = Version.select().where(Version.state == "queued")
    waiting = queued.where(Version.not_before.is_null(False) & (Version.not_before > now))
    next_due = waiting.select(peewee.fn.MIN(Version.not_before)).scalar()
    count = waiting.count()
    return {"due": queued.count() - count, "waiting": count, "next_due": next_due}


class Progress:
    """The live status line of ``kiskadee run``: counts of queued, running, done and failed.

    On a terminal the line is redrawn (at most every ``every`` seconds) in
    place; elsewhere a plain line is printed each time the counts change.
    ``update`` takes a monotonic clock reading.
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

    def update(self, now: float) -> None:
        if self.quiet or now < self.next_at:
            return
        self.next_at = now + self.every
        counts = self._read()
        if counts is None:
            return
        self.line, key = counts
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r\x1b[K" + self.line[:width] + "\r")
            self.stream.flush()
        elif key != self.last:
            print(f"kiskadee: {self.line}", file=self.stream, flush=True)
        self.last = key

    def say(self, text: str) -> None:
        """A message for the person at the terminal, on its own line above the status line."""
        if not self.quiet:
            print(("\r\x1b[K" if self.tty else "") + f"kiskadee: {text}", file=self.stream, flush=True)
            self.next_at = 0.0

    def finish(self) -> None:
        """Leave the last status line on the terminal, and the cursor on a fresh line."""
        if self.tty and self.line:
            self.stream.write(f"\r\x1b[K{self.line}\n")
            self.stream.flush()

    def _read(self) -> Optional[Tuple[str, tuple]]:
        database = self.settings.database
        try:
            if not self.opened:
                if not Path(database.path).exists():
                    return None
                open_database(database.path, schema="current", busy_timeout_ms=1000)
                self.opened = True
            counts, jobs = version_counts(), running_jobs()
        except (DatabaseError, peewee.DatabaseError) as exc:
            log.debug("no progress from %s yet: %s", database.path, exc)
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


def collect(now: datetime.datetime) -> Dict:
    """Everything ``kiskadee status`` reports, as plain data (times still datetimes)."""
    return {
        "versions": version_counts(),
        "queue": queue(now),
        "runners": runners(now),
        "failures": recent_failures(),
    }


def show(settings: Config, fmt: str = "table") -> int:
    """Print the status report as a table or JSON; DatabaseError if there is no database yet."""
    open_database(settings.database.path, schema="current",
                  busy_timeout_ms=settings.database.busy_timeout_ms)
    now = utcnow()
    data = collect(now)
    print(render.as_json(_jsonable(data)) if fmt == "json" else text(data, now))
    return EXIT_OK


def text(data: Dict, now: datetime.datetime) -> str:
    """The status report for people."""
    counts = data["versions"]
    lines = ["versions: " + "  ".join(f"{state} {n}" for state, n in counts.items()
                                      if n or state in STATES[1:5])]
    lines.append(_queue_line(data["queue"], now))
    lines += ["", _runners_text(data["runners"])]
    if data["failures"]:
        lines += ["", "recent failures:", render.table(
            ("PACKAGE", "VERSION", "STATE", "FINISHED", "ERROR"),
            [(f["package"], f["version"], f["state"], _when(f["finished_at"]), _shorten(f["error"]))
             for f in data["failures"]])]
    return "\n".join(lines)


def _queue_line(queue_data: Dict, now: datetime.datetime) -> str:
    line = f"queue: {queue_data['due']} due now, {queue_data['waiting']} waiting on backoff"
    if queue_data["next_due"]:
        seconds = (queue_data["next_due"] - now).total_seconds()
        line += f" (next in {_ago(seconds)})"
    return line


def _runners_text(rows: List[Dict]) -> str:
    if not rows:
        return "no runners yet; start them with 'kiskadee run' or 'kiskadee runner'"
    return render.table(
        ("RUNNER", "STATE", "PACKAGE", "VERSION", "ACTIVITY", "LAST SEEN"),
        [(r["name"], r["state"], r["package"], r["version"], r["activity"],
          f"{_ago(r['seconds_ago'])} ago") for r in rows])


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def _when(moment: Optional[datetime.datetime]) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _shorten(text_: str, width: int = 70) -> str:
    text_ = " ".join(text_.split())
    return text_ if len(text_) <= width else text_[: width - 3] + "..."


def _jsonable(value):
    """``value`` with datetimes as ISO 8601 strings (UTC), for ``report.as_json``."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat() + "Z"
    return value
