"""The local backend: a subprocess without a shell, scrubbed environment and resource limits.

It is the embedded default for machines with no container engine. It limits
time, memory and output size, and a runner started as root hands every
command to an unprivileged user (``sandbox.local.user``, nobody by default);
but it does not isolate the file system, the network or the kernel, so it
never runs a package's own build scripts unless the operator says so
(``sandbox.local.build_on_host``). Production runners use the docker backend.
"""

import logging
import os
import pwd
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Sequence

from kiskadee.analysis.sandbox.base import Execution, Limits, Sandbox
from kiskadee.config import LocalSandboxConfig
from kiskadee.errors import AnalyzerUnavailable, ConfigError

log = logging.getLogger(__name__)

TAIL_BYTES = 4000
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
BUILD_REFUSAL = ("build mode runs the package's own build scripts; the local sandbox does not "
                 "(sandbox.local.build_on_host)")


class Account(NamedTuple):
    """The unprivileged user a root runner's commands run as, with its primary group only."""

    name: str
    uid: int
    gid: int


def sandbox_account(user: str) -> Optional[Account]:
    """Who runs the commands: ``user`` when the runner is root, None (the runner itself) otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(f"sandbox.local.user: there is no user {user!r} on this machine") from None
    if entry.pw_uid == 0:
        raise ConfigError(f"sandbox.local.user: {user!r} is root; name an unprivileged user such as nobody")
    return Account(user, entry.pw_uid, entry.pw_gid)


def _search_path() -> str:
    """Where programs are looked up: the caller's PATH, the Python environment's bin, the system."""
    return os.pathsep.join(
        [os.environ.get("PATH", ""), str(Path(sys.executable).parent), SAFE_PATH]
    )


def resolve_program(program: str, account: Optional[Account] = None) -> str:
    """The absolute path of ``program`` (one ``account`` can run, if given), or AnalyzerUnavailable naming it."""
    found = [hit for hit in (shutil.which(program, path=entry) for entry in _search_path().split(os.pathsep))
             if hit]
    if not found:
        raise AnalyzerUnavailable(f"'{program}' is not installed (not found on {_search_path()})")
    runnable = [hit for hit in found if account is None or _runnable(account, Path(hit))]
    if not runnable:
        raise AnalyzerUnavailable(f"'{program}' is installed ({found[0]}) but the local sandbox runs analyzers "
                                  f"as {account.name}, who cannot run it there (sandbox.local.user)")
    return runnable[0]


def _runnable(account: Account, program: Path) -> bool:
    """Whether ``account`` can reach and run ``program``, through its links (a venv's python under /root...)."""
    real = Path(os.path.realpath(program))
    ways = [directory for path in (program, real) for directory in path.parents]
    return all(_can(account, os.stat(d), 0o1) for d in ways) and _can(account, os.stat(real), 0o5)


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


def _can(account: Account, info: os.stat_result, bits: int) -> bool:
    """Whether ``account`` (no supplementary groups) has every permission in ``bits`` (0o5: r-x) on a file."""
    if info.st_uid == account.uid:
        shift = 6
    elif info.st_gid == account.gid:
        shift = 3
    else:
        shift = 0
    return (info.st_mode >> shift) & bits == bits


def _in_temporary_area(directory: Path) -> bool:
    """Whether ``directory`` lies below a sticky, world-writable directory such as /tmp or /var/tmp.

    Only there are private directories kiskadee's or a tool's temporary ones,
    which it may open to the sandbox user; a home directory never is.
    """
    for parent in directory.parents:
        mode = os.stat(parent).st_mode
        if mode & stat.S_ISVTX and mode & stat.S_IWOTH:
            return True
    return False


def _open_way(account: Account, path: Path, leaf_bits: int) -> None:
    """Let ``account`` search every directory down to ``path`` and have ``leaf_bits`` on ``path`` itself.

    A private directory of the runner's in a temporary area (work and scratch
    directories are made 0700) is given to the account's group with only the
    missing bits; nothing is made readable or writable by others. A directory
    it may not open so is an error that says which.
    """
    way = [*reversed(path.parents), path]
    for directory in way:
        bits = leaf_bits if directory == path else 0o1
        info = os.stat(directory)
        if _can(account, info, bits):
            continue
        group_free = info.st_gid == account.gid or not info.st_mode & 0o070
        if info.st_uid != os.geteuid() or not group_free or not _in_temporary_area(directory):
            raise AnalyzerUnavailable(
                f"the local sandbox runs analyzers as {account.name}, who cannot enter {directory}; "
                f"make it searchable for {account.name} or analyze a copy under the temporary directory")
        os.chown(directory, -1, account.gid)
        os.chmod(directory, stat.S_IMODE(info.st_mode) | bits << 3)


def _hand_over(account: Account, output: Path) -> None:
    """Make the output directory and what was put into it the account's, so the command can write there."""
    for directory, dirs, files in os.walk(output):
        os.chown(directory, account.uid, account.gid, follow_symlinks=False)
        for name in dirs + files:
            os.chown(os.path.join(directory, name), account.uid, account.gid, follow_symlinks=False)


class LocalSandbox(Sandbox):
    name = "local"

    def __init__(self, settings: LocalSandboxConfig = LocalSandboxConfig()):
        self._running: "set[subprocess.Popen]" = set()
        self.account = sandbox_account(settings.user)
        self.build_refusal = "" if settings.build_on_host else BUILD_REFUSAL

    def abort(self) -> None:
        """Kill every command running now (a runner's second SIGTERM)."""
        for process in list(self._running):
            _kill_group(process)

    def paths(self, source: Path, output: Path) -> "tuple[str, str]":
        return str(source), str(output)

    def run(self, argv: Sequence[str], source: Path, output: Path, limits: Limits,
            build: Optional[Path] = None) -> Execution:
        if self.account and os.path.isabs(argv[0]):
            _open_way(self.account, Path(argv[0]).parent, 0o1)    # a tool given by its path, in a temporary area
        program = resolve_program(argv[0], self.account)
        if self.account:
            _open_way(self.account, source.resolve(), 0o5)
            _open_way(self.account, output.resolve(), 0o1)
            _hand_over(self.account, output)
            if build is not None:
                _open_way(self.account, build.resolve(), 0o1)
                _hand_over(self.account, build)
        # Beside the output directory, not in it: the command may replace what is in there
        # (with a link to a file only the runner may read, say) and these are read back on the host.
        stdout_path = output.parent / f"{output.name}.stdout"
        stderr_path = output.parent / f"{output.name}.stderr"
        started = time.monotonic()
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            process = self._start([program, *argv[1:]], source, output, limits, stdout, stderr)
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

    def _start(self, argv: Sequence[str], source: Path, output: Path, limits: Limits, stdout, stderr):
        """Start the command in its own session, as the sandbox account when there is one."""
        account = self.account
        identity = {} if account is None else {"user": account.uid, "group": account.gid, "extra_groups": []}
        try:
            return subprocess.Popen(
                argv, cwd=source, env=_scrubbed_environment(argv[0], output),
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                start_new_session=True, preexec_fn=_limit_resources(limits), **identity,
            )
        except PermissionError as exc:
            who = f" as {account.name}" if account else ""
            raise AnalyzerUnavailable(f"cannot run {argv[0]}{who}: {exc}") from None


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
