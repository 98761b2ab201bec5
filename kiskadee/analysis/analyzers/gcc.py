"""gcc's static analyzer (``gcc -fanalyzer``), read through its JSON diagnostics.

A finding is a ``-Wanalyzer-*`` warning or one of the memory-safety warnings
of the compiler itself listed in ``analyzers.gcc.warnings`` (gcc 12's
analyzer has no buffer-overflow checker; ``-Wstringop-overflow`` is how gcc
sees those). Other compiler warnings and notes are not findings; errors
mean the file did not compile and are counted as such by the driver.
"""

import re
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from kiskadee.analysis.analyzers.base import ReportError
from kiskadee.analysis.analyzers.checkers import classify
from kiskadee.analysis.analyzers.compiled import CompiledAnalyzer
from kiskadee.analysis.driver.index import source_path
from kiskadee.analysis.driver.tools import gcc_diagnostics
from kiskadee.core.findings import Finding


class Gcc(CompiledAnalyzer):
    name = "gcc"
    tool = "gcc"
    languages = frozenset({"c"})      # gcc 12's analyzer is for C only

    def version_argv(self) -> List[str]:
        return [self.program, "-dumpfullversion"]

    def parse_version(self, output: str) -> str:
        version = output.strip()
        if not re.fullmatch(r"\d+(\.\d+)*", version):
            raise ReportError(f"unexpected 'gcc -dumpfullversion' output: {output[:200]!r}")
        return version

    def tool_args(self) -> List[str]:
        return [f"-W{warning}" for warning in self.settings.warnings]

    def is_finding(self, diagnostic: Dict) -> bool:
        """An analyzer warning or a listed memory-safety warning."""
        check = check_id(diagnostic)
        return diagnostic.get("kind") == "warning" and (
            check.startswith("analyzer-") or check in self.settings.warnings)

    def parse_report(self, report: Path, roots: List[str], directory: str) -> Iterable[Finding]:
        try:
            diagnostics = gcc_diagnostics(report.read_text(errors="replace"))
        except (OSError, ValueError) as exc:
            raise ReportError(f"cannot read gcc report {report.name}: {exc}") from None
        if not isinstance(diagnostics, list):
            raise ReportError(f"gcc report {report.name} is not a list of diagnostics")
        for diagnostic in diagnostics:
            if isinstance(diagnostic, dict) and self.is_finding(diagnostic):
                yield _finding(diagnostic, roots, directory)


def check_id(diagnostic: Dict) -> str:
    """The warning's option without '-W' and a trailing '=': 'analyzer-double-free'."""
    return (diagnostic.get("option") or "").lstrip("-").removeprefix("W").rstrip("=")


def _cwes(given: object, table: Tuple[int, ...]) -> Tuple[int, ...]:
    """The CWE gcc gives first, then the table's others."""
    if not isinstance(given, int) or isinstance(given, bool):
        return table
    return (given,) + tuple(cwe for cwe in table if cwe != given)


def _finding(diagnostic: Dict, roots: List[str], directory: str) -> Finding:
    caret = (diagnostic.get("locations") or [{}])[0].get("caret", {})
    check, message = check_id(diagnostic), diagnostic.get("message", "")
    cwes, severity = classify("gcc", check, message)
    events = diagnostic.get("path") or [{}]
    return Finding(
        path=source_path(caret["file"], roots, directory) if caret.get("file") else "",
        line=int(caret.get("line", 0)),
        column=int(caret.get("column", 0)),
        function=events[-1].get("function", ""),
        check_id=check,
        cwes=_cwes((diagnostic.get("metadata") or {}).get("cwe"), cwes),
        severity=severity,
        message=message,
    )
