"""The local backend: a subprocess without a shell, scrubbed environment and resource limits.

It is the embedded default for machines with no container engine. It limits
time, memory and output size but does not isolate the file system or the
network; production runners use the docker backend.
"""

import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Sequence

from kiskadee.analysis.sandbox.base import Execution, Limits, Sandbox
from kiskadee.errors import AnalyzerUnavailable

log = logging.getLogger(__name__)

TAIL_BYTES = 4000
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


def _search_path() -> str:
    """Where programs are looked up: the caller's PATH, the Python environment's bin, the system."""
    return os.pathsep.join(
        [os.environ.get("PATH", ""), str(Path(sys.executable).parent), SAFE_PATH]
    )


def resolve_program(program: str) -> str:
    """The absolute path of ``program``, or AnalyzerUnavailable naming it."""
    found = shutil.which(program, path=_search_path())
    if not found:
        raise AnalyzerUnavailable(f"'{program}' is not installed (not found on {_search_path()})")
    return found


def _scrubbed_environment(program: str, output: Path) -> Dict[str, str]:
    return {
        "PATH": os.pathsep.join([str(Path(program).parent), SAFE_PATH]),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": str(output),
        "TMPDIR": str(output),
    }


def _limit_resources(limits: Limits):
    def apply() -> None:
        memory = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_output_bytes, limits.max_output_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _tail(path: Path) -> str:
    with open(path, "rb") as stream:
        stream.seek(max(0, path.stat().st_size - TAIL_BYTES))
        return stream.read().decode(errors="replace").strip()


class LocalSandbox(Sandbox):
    name = "local"

    def __init__(self):
        self._running: "set[subprocess.Popen]" = set()

    def abort(self) -> None:
        """Kill every command running now (a runner's second SIGTERM)."""
        for process in list(self._running):
            _kill_group(process)

    def paths(self, source: Path, output: Path) -> "tuple[str, str]":
        return str(source), str(output)

    def run(self, argv: Sequence[str], source: Path, output: Path, limits: Limits) -> Execution:
        program = resolve_program(argv[0])
        stdout_path, stderr_path = output / "stdout", output / "stderr"
        started = time.monotonic()
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                [program, *argv[1:]],
                cwd=source,
                env=_scrubbed_environment(program, output),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=_limit_resources(limits),
            )
            self._running.add(process)
            try:
                timed_out = _wait(process, limits.timeout)
            finally:
                self._running.discard(process)
        return Execution(
            returncode=process.returncode,
            duration=time.monotonic() - started,
            timed_out=timed_out,
            stdout_path=stdout_path,
            tail=_tail(stderr_path) or _tail(stdout_path),
        )


def _wait(process: subprocess.Popen, timeout: float) -> bool:
    """Wait for the process; on timeout kill its whole process group. True if it timed out."""
    try:
        process.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        log.warning("%s exceeded its %.0f s timeout; killing it", process.args[0], timeout)
        _kill_group(process)
        process.wait()
        return True
    finally:
        if process.returncode is None:      # interrupted (KeyboardInterrupt): leave nothing behind
            _kill_group(process)
            process.wait()


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
