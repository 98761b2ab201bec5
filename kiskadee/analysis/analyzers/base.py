"""The analyzer plug-in interface: what every analyzer module implements."""

import dataclasses
from pathlib import Path
from typing import FrozenSet, List, Optional

from kiskadee.core.findings import Finding

C_FAMILY = frozenset({"c", "c++"})


class ReportError(Exception):
    """An analyzer's report could not be parsed."""


@dataclasses.dataclass(frozen=True)
class Coverage:
    """What an analyzer that compiles the code actually analyzed, so no findings never hides nothing analyzed."""

    mode: str                   # per-file, autotools, cmake or meson
    files_analyzed: int         # translation units analyzed
    files_failed: int           # not analyzed: did not compile, timed out, over the budget or the deadline
    fallback: str = ""          # why build mode was not used, when it was tried
    failed_files: str = ""      # 'path: reason' lines, one for each file not analyzed


class Analyzer:
    """Base of the plug-ins. Subclasses set ``name`` and implement the methods."""

    name = ""
    languages: FrozenSet[str] = C_FAMILY
    exit_codes: FrozenSet[int] = frozenset({0})     # the tool's exit statuses that mean its report is whole

    def __init__(self, settings: object):
        self.settings = settings

    @property
    def program(self) -> str:
        return self.settings.program

    def version_argv(self) -> List[str]:
        return [self.program, "--version"]

    def parse_version(self, output: str) -> str:
        """The tool's version from the output of ``version_argv``."""
        raise NotImplementedError

    def argv(self, source: str, output: str, timeout: float, build_refusal: str = "") -> List[str]:
        """The command that analyzes ``source`` (cwd) and writes its report under ``output``.

        ``timeout`` is the seconds the sandbox gives the command before it kills it;
        ``build_refusal``, when not '', why the sandbox runs none of the package's
        own build scripts (the analyzers that could build the code then do not).
        """
        raise NotImplementedError

    def report(self, stdout: Path, output: Path) -> Path:
        """Where the report is on the host: the captured stdout unless a tool writes a file."""
        return stdout

    def prepare(self, output: Path) -> None:
        """Put what the command needs into the (host) output directory before it runs."""

    def coverage(self, output: Path) -> Optional[Coverage]:
        """What the run analyzed, for analyzers that count it; read after any outcome."""
        return None

    def parse(self, report: Path) -> List[Finding]:
        """Every finding of the report, normalized; raises ReportError on a broken report."""
        raise NotImplementedError

    def parse_partial(self, report: Path) -> Optional[List[Finding]]:
        """The findings of a run killed at its timeout, for tools that report as they go; None: none kept."""
        return None

    def problems(self, report: Path) -> str:
        """What the tool said it could not analyze although its run succeeded; '' when nothing."""
        return ""

    def unfinished(self, report: Path) -> str:
        """Why a run that ended by itself stopped short for lack of time ('' when it did not):
        its findings are kept and the run counts as timed out."""
        return ""


def relative_path(path: str) -> str:
    """A report's path as kiskadee stores it: relative, without a leading './'."""
    while path.startswith("./"):
        path = path[2:]
    return path
