"""flawfinder, read through its CSV report.

flawfinder skips a file it cannot decode as UTF-8, says so on its standard
output between the CSV rows (a paragraph of advice), and then exits 15 with
an otherwise whole report. Those lines are not rows and are left out; the
skipped files are named as the run's problems and counted as not analyzed.
A row may name several CWEs ('CWE-119!/CWE-120'): all are kept, the one
flawfinder maps the hit to (marked '!') first.
"""

import csv
import io
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from kiskadee.analysis.analyzers.base import Analyzer, ReportError, files_read, relative_path
from kiskadee.core.findings import Finding

# flawfinder's risk levels 0-5 on kiskadee's common scale.
SEVERITY = {5: "high", 4: "high", 3: "medium", 2: "low", 1: "low", 0: "info"}
COLUMNS = {"File", "Line", "Column", "Level", "Category", "Name", "Warning", "Suggestion", "CWEs"}
EXIT_ENCODING_ERRORS = 15
SKIPPED = re.compile(r"^Warning: encoding error in (.*) -- skipping file\.$", re.M)
SKIPPED_LINE = "Warning: encoding error in {} -- skipping file."
MERGED = "flawfinder-merged.csv"
SKIPPED_LISTED = 20
# The files flawfinder reads (its c_extensions), in directories not starting with a dot.
SOURCE_SUFFIXES = frozenset({".c", ".h", ".ec", ".ecp", ".pgc", ".C", ".cpp", ".CPP", ".cxx", ".cc", ".CC",
                             ".c++", ".pcc", ".pc", ".sc", ".hpp", ".H"})


class Flawfinder(Analyzer):
    name = "flawfinder"
    exit_codes = frozenset({0, EXIT_ENCODING_ERRORS})
    file_suffixes = SOURCE_SUFFIXES
    skips_dot_directories = True

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

    def cache_units(self, tree: Path, files) -> Optional[Dict[str, object]]:
        """Every file flawfinder reads, by its content: flawfinder reads each file on its own."""
        return {path: files.digest(path) for path in sorted(files_read(tree, self.file_suffixes, True))}

    def argv_reusing(self, source: str, output: str, timeout: float, build_refusal: str,
                     todo: List[str], reused: Dict[str, dict], output_dir: Path) -> Optional[List[str]]:
        if not todo:
            return None
        files = ["."] if not reused else [f"./{path}" for path in todo]    # './': never read as an option
        return self.argv(source, output, timeout, build_refusal)[:-1] + files

    def fresh_units(self, report: Path, output: Path, todo: List[str]) -> Dict[str, dict]:
        """Each file's rows as flawfinder wrote them, and whether it skipped the file."""
        header, rows = _rows(report.read_text(encoding="utf-8", errors="replace"))
        if header is None:
            return {}
        by_path: Dict[str, List[List[str]]] = {}
        for row in rows:
            by_path.setdefault(relative_path(row[header.index("File")]), []).append(row)
        skipped = {relative_path(name): name for name in SKIPPED.findall(report.read_text(errors="replace"))}
        return {path: {"header": header, "rows": by_path.get(path, []), "skipped": skipped.get(path, "")}
                for path in todo}

    def merge_report(self, report: Path, reused: Dict[str, dict], scratch: Path) -> Path:
        """This run's CSV, then the reused files' rows and skip warnings, as one report."""
        text = report.read_text(encoding="utf-8", errors="replace") if report.is_file() else ""
        header, _ = _rows(text)
        stream = io.StringIO()
        stream.write(text if not text or text.endswith("\n") else text + "\n")
        writer = csv.writer(stream, lineterminator="\n")
        for path in sorted(reused):
            unit = reused[path]
            if header is None:
                header = unit["header"]
                writer.writerow(header)
            writer.writerows(unit["rows"])
            if unit["skipped"]:
                stream.write(SKIPPED_LINE.format(unit["skipped"]) + "\n")
        merged = scratch / MERGED
        merged.write_text(stream.getvalue(), encoding="utf-8")
        return merged

    def not_analyzed(self, report: Path) -> Dict[str, str]:
        return {name: "not UTF-8 (flawfinder skips such files)" for name in _skipped(report)}

    def problems(self, report: Path) -> str:
        skipped = _skipped(report)
        if not skipped:
            return ""
        listed = ", ".join(skipped[:SKIPPED_LISTED]) + (", ..." if len(skipped) > SKIPPED_LISTED else "")
        return f"skipped {len(skipped)} file(s) it could not decode as UTF-8: {listed}"


def _rows(text: str) -> Tuple[Optional[List[str]], List[List[str]]]:
    """The CSV header and the rows (not the lines of advice among them) of a report's text."""
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None or "Line" not in header:
        return None, []
    line = header.index("Line")
    return header, [row for row in rows if len(row) == len(header) and row[line].isdigit()]


def _skipped(report: Path) -> List[str]:
    return [relative_path(name) for name in SKIPPED.findall(report.read_text(errors="replace"))]


def cwes(text: str) -> Tuple[int, ...]:
    """Every CWE of a row's CWEs column, each once, the one the hit is mapped to first.

    flawfinder marks that one with '!' when it lists a more general and a more
    specific CWE: 'CWE-119!/CWE-120' is (119, 120), 'CWE-362/CWE-367!' is (367, 362).
    """
    found = re.findall(r"CWE-(\d+)(!?)", text or "")
    mapped = [int(number) for number, mark in found if mark]
    return tuple(dict.fromkeys(mapped + [int(number) for number, _ in found]))


def _finding(row: dict) -> Finding:
    message = row["Warning"]
    if row["Suggestion"]:
        message = f"{message} {row['Suggestion']}"
    return Finding(
        path=relative_path(row["File"]),
        line=int(row["Line"]),
        column=int(row["Column"] or 0),
        check_id=f"{row['Category']}.{row['Name']}",
        cwes=cwes(row["CWEs"]),
        severity=SEVERITY.get(int(row["Level"]), "info"),
        message=message,
    )
