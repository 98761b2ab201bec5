"""flawfinder, read through its CSV report."""

import csv
import re
from pathlib import Path
from typing import List, Optional

from kiskadee.analyzers import Analyzer, ReportError, relative_path
from kiskadee.findings import Finding

# flawfinder's risk levels 0-5 on kiskadee's common scale.
SEVERITY = {5: "high", 4: "high", 3: "medium", 2: "low", 1: "low", 0: "info"}
COLUMNS = {"File", "Line", "Column", "Level", "Category", "Name", "Warning", "Suggestion", "CWEs"}


class Flawfinder(Analyzer):
    name = "flawfinder"

    def parse_version(self, output: str) -> str:
        version = output.strip()
        if not re.fullmatch(r"\d[\w.]*", version):
            raise ReportError(f"unexpected 'flawfinder --version' output: {output[:200]!r}")
        return version

    def argv(self, source: str, output: str) -> List[str]:
        return [self.program, "--csv", f"--minlevel={self.settings.min_level}", "."]

    def parse(self, report: Path) -> List[Finding]:
        with open(report, newline="", encoding="utf-8", errors="replace") as stream:
            rows = csv.DictReader(stream)
            if rows.fieldnames is None:
                return []
            missing = COLUMNS - set(rows.fieldnames)
            if missing:
                raise ReportError(f"flawfinder CSV lacks columns {', '.join(sorted(missing))}")
            return [_finding(row) for row in rows]


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
