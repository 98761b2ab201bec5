"""flawfinder, read through its CSV report.

flawfinder skips a file it cannot decode as UTF-8, says so on its standard
output between the CSV rows (a paragraph of advice), and then exits 15 with
an otherwise whole report. Those lines are not rows and are left out; the
skipped files are named as the run's problems.
"""

import csv
import re
from pathlib import Path
from typing import List, Optional

from kiskadee.analysis.analyzers.base import Analyzer, ReportError, relative_path
from kiskadee.core.findings import Finding

# flawfinder's risk levels 0-5 on kiskadee's common scale.
SEVERITY = {5: "high", 4: "high", 3: "medium", 2: "low", 1: "low", 0: "info"}
COLUMNS = {"File", "Line", "Column", "Level", "Category", "Name", "Warning", "Suggestion", "CWEs"}
EXIT_ENCODING_ERRORS = 15
SKIPPED = re.compile(r"^Warning: encoding error in (.*) -- skipping file\.$", re.M)
SKIPPED_LISTED = 20


class Flawfinder(Analyzer):
    name = "flawfinder"
    exit_codes = frozenset({0, EXIT_ENCODING_ERRORS})

    def parse_version(self, output: str) -> str:
        version = output.strip()
        if not re.fullmatch(r"\d[\w.]*", version):
            raise ReportError(f"unexpected 'flawfinder --version' output: {output[:200]!r}")
        return version

    def argv(self, source: str, output: str, timeout: float, build_refusal: str = "") -> List[str]:
        return [self.program, "--csv", f"--minlevel={self.settings.min_level}", "."]

    def parse(self, report: Path) -> List[Finding]:
        with open(report, newline="", encoding="utf-8", errors="replace") as stream:
            rows = csv.reader(stream)
            header = next(rows, None)
            if header is None:
                return []
            missing = COLUMNS - set(header)
            if missing:
                raise ReportError(f"flawfinder CSV lacks columns {', '.join(sorted(missing))}")
            line = header.index("Line")
            # Rows only: not the lines of advice flawfinder prints among them.
            return [_finding(dict(zip(header, row))) for row in rows
                    if len(row) == len(header) and row[line].isdigit()]

    def problems(self, report: Path) -> str:
        skipped = [relative_path(name) for name in SKIPPED.findall(report.read_text(errors="replace"))]
        if not skipped:
            return ""
        listed = ", ".join(skipped[:SKIPPED_LISTED]) + (", ..." if len(skipped) > SKIPPED_LISTED else "")
        return f"skipped {len(skipped)} file(s) it could not decode as UTF-8: {listed}"


def _first_cwe(text: str) -> Optional[int]:
    match = re.search(r"CWE-(\d+)", text or "")
    return int(match.group(1)) if match else None


def _finding(row: dict) -> Finding:
    message = row["Warning"]
    if row["Suggestion"]:
        message = f"{message} {row['Suggestion']}"
    return Finding(
        path=relative_path(row["File"]),
        line=int(row["Line"]),
        column=int(row["Column"] or 0),
        check_id=f"{row['Category']}.{row['Name']}",
        cwe=_first_cwe(row["CWEs"]),
        severity=SEVERITY.get(int(row["Level"]), "info"),
        message=message,
    )
