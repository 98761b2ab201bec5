"""The sandbox interface: limits, the outcome of one command, and what a backend implements."""

import dataclasses
from pathlib import Path
from typing import Optional, Sequence


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
    # Why commands here must not run a package's own build scripts (configure, make, cmake,
    # meson), recorded as the compiled analyzers' fallback; '' where they may (a container).
    build_refusal = ""

    def paths(self, source: Path, output: Path) -> "tuple[str, str]":
        """The source and output directories as a command in this sandbox sees them."""
        raise NotImplementedError

    def build_path(self, build: Path) -> str:
        """The shared build directory as a command in this sandbox sees it (the same for every analyzer)."""
        return str(build)

    def run(self, argv: Sequence[str], source: Path, output: Path, limits: Limits,
            build: Optional[Path] = None) -> Execution:
        """Run ``argv`` with the source tree as working directory; ``build``, when given, writable too."""
        raise NotImplementedError

    def abort(self) -> None:
        """Kill whatever this sandbox is running now."""

    def check(self) -> None:
        """Raise SandboxUnavailable if commands cannot run now (a runner then takes no job)."""

    def for_analyzer(self, name: str) -> "Sandbox":
        """This sandbox as it runs the commands of analyzer ``name`` (the docker backend picks its image)."""
        return self
