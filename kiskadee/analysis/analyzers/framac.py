"""Frama-C's value analysis (Eva), read through the report plug-in's CSV files.

Each translation unit is parsed once and Eva runs from each of its entry
points (functions nothing in the unit calls) with ``-lib-entry``, so that one
certain bug does not hide the code after it. A finding is an Eva alarm or a
C library precondition whose status is not valid: 'Invalid...' statuses are
certain bugs on some path (severity high), 'Unknown' ones possible bugs
(severity low). Memory leaks are not undefined behaviour and Eva does not
report them. Off by default: it is slow and its budget is strict.
"""

import csv
import os
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from kiskadee.analysis.analyzers.base import ReportError
from kiskadee.analysis.analyzers.checkers import classify
from kiskadee.analysis.analyzers.compiled import CompiledAnalyzer
from kiskadee.analysis.driver.index import source_path
from kiskadee.core.findings import Finding

COLUMNS = {"directory", "file", "line", "function", "property kind", "status", "property"}
ALARMS = {
    "mem_access": "invalid memory access",
    "index_bound": "array index out of bounds",
    "pointer_value": "invalid pointer arithmetic",
    "dangling_pointer": "use of a dangling pointer",
    "initialization": "read of uninitialized memory",
    "division_by_zero": "division by zero",
    "signed_overflow": "signed integer overflow",
    "unsigned_overflow": "unsigned integer overflow",
    "signed_downcast": "signed downcast overflow",
    "unsigned_downcast": "unsigned downcast overflow",
    "shift": "invalid shift",
    "float_to_int": "float to integer conversion overflow",
    "is_nan_or_infinite": "non-finite floating-point value",
    "function_pointer": "call through an invalid function pointer",
    "differing_blocks": "pointer subtraction across blocks",
    "separation": "overlapping memory in an assignment",
    "bool_value": "invalid _Bool value",
}
PRECONDITION = "precondition of "


class FramaC(CompiledAnalyzer):
    name = "framac"
    tool = "framac"
    languages = frozenset({"c"})

    def version_argv(self) -> List[str]:
        return [self.program, "-version"]

    def parse_version(self, output: str) -> str:
        match = re.match(r"\s*(\d+\.\d+\S*)", output)
        if not match:
            raise ReportError(f"unexpected 'frama-c -version' output: {output[:200]!r}")
        return match.group(1)

    def driver_args(self) -> List[str]:
        return ["--max-entry-points", str(self.settings.max_entry_points)]

    def parse_report(self, report: Path, roots: List[str], directory: str) -> Iterable[Finding]:
        with open(report, newline="", encoding="utf-8", errors="replace") as stream:
            rows = csv.DictReader(stream, delimiter="\t")
            missing = COLUMNS - set(rows.fieldnames or ())
            if missing:
                raise ReportError(f"Frama-C report {report.name} lacks columns {', '.join(sorted(missing))}")
            for row in rows:
                finding = _finding(row, roots, directory)
                if finding is not None:
                    yield finding


def is_alarm(row: Dict[str, str]) -> bool:
    """An Eva alarm or library precondition in the analyzed code that was not proven valid."""
    kind, status = row["property kind"], row["status"]
    return (not row["directory"].startswith("FRAMAC_SHARE")
            and (kind in ALARMS or kind.startswith(PRECONDITION))
            and (status.startswith("Invalid") or status == "Unknown"))


def _finding(row: Dict[str, str], roots: List[str], directory: str) -> Optional[Finding]:
    if not is_alarm(row):
        return None
    kind = row["property kind"]
    if kind.startswith(PRECONDITION):
        check, message = f"precondition.{kind[len(PRECONDITION):]}", f"{kind}: {row['property']}"
    else:
        check, message = kind, f"{ALARMS[kind]}: assert {row['property']}"
    cwes, _ = classify("framac", check, row["property"])
    return Finding(
        path=source_path(os.path.join(row["directory"], row["file"]), roots, directory),
        line=int(row["line"] or 0),
        function=row["function"],
        check_id=check,
        cwes=cwes,
        severity="high" if row["status"].startswith("Invalid") else "low",
        message=message,
    )
