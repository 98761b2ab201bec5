"""Sandbox backends: where and how an analyzer command runs.

A backend runs one command over a source tree with the tree visible at
``source_path`` and a writable output directory at ``output_path`` (paths
as the command sees them), under a wall-clock timeout, a memory limit and a
cap on output size. The local backend runs a subprocess; the docker backend
runs a hardened container (kiskadee.sandbox.docker).
"""

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

if TYPE_CHECKING:
    from kiskadee.config import SandboxConfig


@dataclasses.dataclass(frozen=True)
class Limits:
    timeout: float              # seconds of wall-clock time
    memory_mb: int              # address space
    max_output_bytes: int       # per output file the command writes


@dataclasses.dataclass(frozen=True)
class Execution:
    """What became of one command run in a sandbox."""

    returncode: int
    duration: float
    timed_out: bool
    stdout_path: Path           # on the host
    tail: str                   # the end of stderr (or of stdout when stderr is empty), for error reports


class Sandbox:
    """Interface of the backends."""

    name = ""

    def paths(self, source: Path, output: Path) -> "tuple[str, str]":
        """The source and output directories as a command in this sandbox sees them."""
        raise NotImplementedError

    def run(self, argv: Sequence[str], source: Path, output: Path, limits: Limits) -> Execution:
        """Run ``argv`` with the source tree as working directory."""
        raise NotImplementedError

    def abort(self) -> None:
        """Kill whatever this sandbox is running now."""

    def check(self) -> None:
        """Raise SandboxUnavailable if commands cannot run now (a runner then takes no job)."""

    def for_analyzer(self, name: str) -> "Sandbox":
        """This sandbox as it runs the commands of analyzer ``name`` (the docker backend picks its image)."""
        return self


def make_sandbox(backend: str, settings: Optional["SandboxConfig"] = None) -> Sandbox:
    """The sandbox named by the configuration; ``settings`` is its [sandbox] section."""
    if backend == "local":
        from kiskadee.sandbox.local import LocalSandbox

        return LocalSandbox()
    if backend == "docker":
        from kiskadee.config import SandboxConfig
        from kiskadee.sandbox.docker import DockerSandbox

        return DockerSandbox((settings or SandboxConfig()).docker)
    raise ValueError(f"unknown sandbox backend {backend!r}; known: local, docker")
