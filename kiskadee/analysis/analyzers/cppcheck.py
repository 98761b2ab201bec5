"""cppcheck, read through its XML version 2 report.

cppcheck writes each error into the report as it finds it and closes the
document only at the end, so a run killed at its timeout leaves the errors
found so far: ``parse_partial`` keeps every complete one.
"""

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import List, Optional

from kiskadee.analysis.analyzers.base import Analyzer, ReportError, relative_path
from kiskadee.core.findings import Finding

REPORT = "cppcheck.xml"
CHUNK_BYTES = 64 * 1024

SEVERITY = {
    "error": "high",
    "warning": "medium",
    "style": "low",
    "performance": "low",
    "portability": "low",
    "information": "info",
    "debug": "info",
}


class Cppcheck(Analyzer):
    name = "cppcheck"

    def parse_version(self, output: str) -> str:
        match = re.search(r"Cppcheck\s+(\S+)", output)
        if not match:
            raise ReportError(f"unexpected 'cppcheck --version' output: {output[:200]!r}")
        return match.group(1)

    def argv(self, source: str, output: str, timeout: float, build_refusal: str = "") -> List[str]:
        return [
            self.program,
            "--xml-version=2",
            "--quiet",
            f"--enable={self.settings.enable}",
            f"-j{self.settings.jobs}",
            f"--output-file={output}/{REPORT}",
            *self.settings.extra_args,
            ".",
        ]

    def report(self, stdout: Path, output: Path) -> Path:
        return output / REPORT

    def parse(self, report: Path) -> List[Finding]:
        try:
            errors = ElementTree.parse(report).getroot().find("errors")
        except (OSError, ElementTree.ParseError) as exc:
            raise ReportError(f"cannot read cppcheck report {report.name}: {exc}") from None
        if errors is None:
            raise ReportError(f"cppcheck report {report.name} has no <errors> element")
        return [_finding(error) for error in errors.iter("error")]

    def parse_partial(self, report: Path) -> Optional[List[Finding]]:
        """The complete <error> elements of a report cut off where the run was killed."""
        parser = ElementTree.XMLPullParser(events=("end",))
        found: List[Finding] = []
        try:
            with open(report, "rb") as stream:
                for chunk in iter(lambda: stream.read(CHUNK_BYTES), b""):
                    parser.feed(chunk)
                    found += [_finding(element) for _, element in parser.read_events() if element.tag == "error"]
        except ElementTree.ParseError:
            pass            # the end of what it wrote before it was stopped: keep what came before
        except OSError as exc:
            raise ReportError(f"cannot read cppcheck report {report.name}: {exc}") from None
        return found


def _finding(error: ElementTree.Element) -> Finding:
    # The first <location> is where the problem is; later ones are its trace.
    location = error.find("location")
    attrs = location.attrib if location is not None else {}
    cwe = error.get("cwe")
    return Finding(
        path=relative_path(attrs.get("file", "")),
        line=int(attrs.get("line", 0)),
        column=int(attrs.get("column", 0)),
        check_id=error.get("id", ""),
        cwe=int(cwe) if cwe else None,
        severity=SEVERITY.get(error.get("severity", ""), "info"),
        message=error.get("msg", ""),
    )
