"""Running one tool command under a timeout, killing everything it started when time is up."""

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

TAIL_CHARS = 2000
HEAD_BYTES = 64 * 1024      # of a tool's messages, searched for its first error


class Deadline:
    """When the whole driver run must be over: every step's timeout is cut to the time left.

    ``reached`` says whether anything was cut short or not started because of it.
    """

    STOPPED = "stopped at the analyzer's deadline"
    NOT_STARTED = "not started: the analyzer's deadline had passed"

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds if seconds > 0 else None
        self.reached = False

    def left(self) -> Optional[float]:
        """Seconds left, or None without a deadline."""
        return None if self.end is None else max(0.0, self.end - time.monotonic())

    def passed(self) -> bool:
        """Whether the deadline has passed; asked before a step or about one that timed out."""
        if self.end is not None and time.monotonic() >= self.end:
            self.reached = True
        return self.reached

    def cap(self, timeout: float) -> Optional[float]:
        """A step's own timeout (0: none) cut to the time left; None when neither limits it."""
        limits = [limit for limit in (timeout or None, self.left()) if limit is not None]
        return min(limits) if limits else None


class Outcome(NamedTuple):
    """What became of one command."""

    returncode: int
    timed_out: bool
    seconds: float
    stderr_tail: str
    stderr_head: str = ""   # where a compiler's first error is: the tail holds its last ones


def tool_environment(output: Path) -> Dict[str, str]:
    """The environment tools run with: the sandbox's PATH, the C locale for stable messages."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C",
        "LC_ALL": "C",
        "HOME": str(output),
        "TMPDIR": str(output),
    }


def run(argv: Sequence[str], cwd: Path, env: Dict[str, str], timeout: Optional[float],
        stdout: Path, stderr: Path) -> Outcome:
    """Run ``argv`` in ``cwd`` with output to files; on timeout kill it and its descendants."""
    started = time.monotonic()
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        try:
            # Frama-C resolves relative paths against $PWD: keep it true to the working directory.
            process = subprocess.Popen(list(argv), cwd=str(cwd), env=dict(env, PWD=str(cwd)),
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        except OSError as exc:
            return Outcome(127, False, 0.0, f"cannot run {argv[0]}: {exc}", f"cannot run {argv[0]}: {exc}")
        timed_out = _wait(process, timeout)
    return Outcome(process.returncode, timed_out, time.monotonic() - started, tail(stderr), head(stderr))


def _wait(process: subprocess.Popen, timeout: Optional[float]) -> bool:
    try:
        process.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        process.wait()
        return True


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every descendant (compiler drivers start cc1, make starts compilers).

    The children stay in the driver's process group so that the sandbox can kill
    the whole run at once; descendants are found through /proc instead.
    """
    for victim in [pid] + descendants(pid):
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


def descendants(pid: int) -> List[int]:
    """The processes below ``pid`` in the process tree, by their parent ids in /proc."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent(entry)
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _parent(entry: str) -> Optional[int]:
    try:
        with open(f"/proc/{entry}/stat", "rb") as stream:
            stat = stream.read().decode(errors="replace")
    except OSError:
        return None
    # The command name in parentheses may hold spaces; the parent id follows the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[1]) if len(fields) > 1 else None


def head(path: Path, size: int = HEAD_BYTES) -> str:
    """The start of a text file, whole lines only, for finding a tool's first error."""
    try:
        with open(path, "rb") as stream:
            data = stream.read(size + 1)
    except OSError:
        return ""
    if len(data) > size:
        data = data[:size].rpartition(b"\n")[0]
    return data.decode(errors="replace")


def tail(path: Path, chars: int = TAIL_CHARS) -> str:
    """The end of a text file, for error messages."""
    try:
        with open(path, "rb") as stream:
            stream.seek(max(0, path.stat().st_size - chars))
            return stream.read().decode(errors="replace").strip()
    except OSError:
        return ""
