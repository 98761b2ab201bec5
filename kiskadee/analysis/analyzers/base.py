"""The analyzer plug-in interface: what every analyzer module implements."""

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Dict, FrozenSet, List, Optional

from kiskadee.core.findings import Finding

if TYPE_CHECKING:
    from kiskadee.analysis.cache import TreeFiles

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
    # For a tool given the whole tree that reads files one by one: the names of the files it reads,
    # as it tells them (suffixes, case-sensitive) and the directories it does not enter.
    file_suffixes: FrozenSet[str] = frozenset()
    skips_dot_directories = False
    builds = False      # whether it may build the tree (then it implements ``sharing_build``)

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

    def sharing_build(self, argv: List[str], build: str) -> List[str]:
        """``argv`` using the build directory (as the sandbox sees it) that every analyzer of a tree shares."""
        return argv

    def report(self, stdout: Path, output: Path) -> Path:
        """Where the report is on the host: the captured stdout unless a tool writes a file."""
        return stdout

    def prepare(self, output: Path) -> None:
        """Put what the command needs into the (host) output directory before it runs."""

    def coverage(self, output: Path) -> Optional[Coverage]:
        """What the run analyzed, for analyzers that count it; read after any outcome."""
        return None

    def not_analyzed(self, report: Path) -> Dict[str, str]:
        """The files of ``file_suffixes`` the tool read but did not analyze, each with why, from a whole report."""
        return {}

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

    # The per-unit result cache (kiskadee.analysis.cache). An analyzer whose findings can be
    # split by unit implements these; the others keep the default and always run whole.

    def cache_units(self, tree: Path, files: "TreeFiles") -> Optional[Dict[str, object]]:
        """Each unit (path from the tree's root) with what, besides the tool and its options,
        determines its findings; None: this analyzer's results are not cached."""
        return None

    def cache_options(self) -> object:
        """The settings that change findings (not jobs, timeouts or budgets), for the cache keys."""
        ignored = {"jobs", "unit_timeout", "configure_timeout", "build_timeout", "time_budget", "python"}
        return {key: value for key, value in dataclasses.asdict(self.settings).items() if key not in ignored}

    def argv_reusing(self, source: str, output: str, timeout: float, build_refusal: str,
                     todo: List[str], reused: Dict[str, dict], output_dir: Path) -> Optional[List[str]]:
        """The command analyzing only ``todo`` while ``reused`` units come from the cache; None: nothing to run."""
        raise NotImplementedError

    def fresh_units(self, report: Path, output: Path, todo: List[str]) -> Dict[str, dict]:
        """What each unit of ``todo`` analyzed whole in this run gave, as the cache keeps it."""
        raise NotImplementedError

    def merge_report(self, report: Path, reused: Dict[str, dict], scratch: Path) -> Path:
        """A report of the whole tree: this run's and the ``reused`` units' outcomes, read as any report."""
        raise NotImplementedError


def per_file_coverage(analyzer: Analyzer, report: Path, tree: Path) -> Optional[Coverage]:
    """What an analyzer that reads files one by one analyzed of ``tree``; None when it does not say."""
    if not analyzer.file_suffixes:
        return None
    read = files_read(tree, analyzer.file_suffixes, analyzer.skips_dot_directories)
    failed = {path: why for path, why in analyzer.not_analyzed(report).items() if path in read}
    return Coverage(mode="per-file", files_analyzed=len(read) - len(failed), files_failed=len(failed),
                    failed_files="\n".join(f"{path}: {why}" for path, why in sorted(failed.items())))


def files_read(tree: Path, suffixes: FrozenSet[str], skip_dot_directories: bool) -> FrozenSet[str]:
    """The regular files under ``tree`` (relative paths, no symbolic links) whose names end in ``suffixes``."""
    found = set()
    for directory, dirs, files in os.walk(tree):
        if skip_dot_directories:
            dirs[:] = [d for d in dirs if not (len(d) > 1 and d.startswith("."))]
        for name in files:
            path = os.path.join(directory, name)
            if os.path.splitext(name)[1] in suffixes and os.path.isfile(path) and not os.path.islink(path):
                found.add(os.path.relpath(path, tree))
    return frozenset(found)


def relative_path(path: str) -> str:
    """A report's path as kiskadee stores it: relative, without a leading './'."""
    while path.startswith("./"):
        path = path[2:]
    return path
