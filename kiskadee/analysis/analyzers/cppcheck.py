"""cppcheck, read through its XML version 2 report.

cppcheck writes each error into the report as it finds it and closes the
document only at the end, so a run killed at its timeout leaves the errors
found so far: ``parse_partial`` keeps every complete one.

cppcheck gives up on a file silently unless asked for its 'information'
messages: when no configuration of the preprocessor gets through the file
(``noValidConfiguration``). It also stops a file at a syntax error. Its
'information' messages are therefore always asked for, kept as findings only
when the configuration enables them, and those files are counted as not
analyzed. Without them cppcheck says once, with no file, that it checked only
some configurations: that finding is kept as it was (its fingerprint with it).
"""

import dataclasses
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Dict, Iterable, List, Optional

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
# What cppcheck 2.10 reports once, without a file, when 'information' is not enabled.
TOO_MANY_CONFIGS = Finding(
    path="", line=0, check_id="toomanyconfigs", severity="info", cwes=(398,),
    message="Too many #ifdef configurations - cppcheck only checks 12 configurations. Use --force to check "
            "all configurations. For more details, use --enable=information.")
# The files cppcheck checks when given a directory (its Path::acceptFile: sources, not headers).
SOURCE_SUFFIXES = frozenset({".c", ".cl", ".cpp", ".cxx", ".cc", ".c++", ".tpp", ".txx", ".ipp", ".ixx", ".C"})
# What cppcheck reports when it stops analyzing a file, with how kiskadee says it.
GAVE_UP = {
    "noValidConfiguration": "no valid preprocessor configuration (cppcheck noValidConfiguration)",
    "syntaxError": "syntax error",
    "unknownMacro": "unknown macro",
    "internalAstError": "internal error",
    "cppcheckError": "internal error",
}


class Cppcheck(Analyzer):
    name = "cppcheck"
    file_suffixes = SOURCE_SUFFIXES

    @property
    def reports_information(self) -> bool:
        """Whether the configuration asks for cppcheck's 'information' messages as findings."""
        return bool({"information", "all"} & {part.strip() for part in self.settings.enable.split(",")})

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
            f"--enable={self.settings.enable}" + ("" if self.reports_information else ",information"),
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
        return self._findings(errors.iter("error"))

    def not_analyzed(self, report: Path) -> Dict[str, str]:
        """The files cppcheck gave up on, from its report, with why and where."""
        try:
            errors = ElementTree.parse(report).getroot().iter("error")
        except (OSError, ElementTree.ParseError):
            return {}
        gave_up: Dict[str, str] = {}
        for error in errors:
            finding = _finding(error)
            # file0 is the file being checked when the error lies in a header it includes.
            checked = relative_path(error.get("file0") or finding.path)
            if finding.check_id in GAVE_UP and checked:
                where = f" at {'' if checked == finding.path else finding.path + ' '}line {finding.line}"
                gave_up.setdefault(checked, GAVE_UP[finding.check_id] + (where if finding.line else ""))
        return gave_up

    def _findings(self, errors: Iterable[ElementTree.Element], whole: bool = True) -> List[Finding]:
        """The findings of ``errors``, the 'information' ones only when the configuration asks for them.

        cppcheck writes its one summary of too many configurations at the end: only a whole report has it.
        """
        found = [_finding(error) for error in errors]
        if self.reports_information:
            return found
        kept = [finding for finding in found if finding.severity != "info"]
        too_many = [finding for finding in found if finding.check_id == TOO_MANY_CONFIGS.check_id]
        if too_many and whole:
            checked = re.search(r"checks (\d+) of", too_many[0].message)
            message = TOO_MANY_CONFIGS.message.replace("12", checked.group(1)) if checked else None
            kept.append(dataclasses.replace(TOO_MANY_CONFIGS, message=message or TOO_MANY_CONFIGS.message))
        return kept

    def parse_partial(self, report: Path) -> Optional[List[Finding]]:
        """The complete <error> elements of a report cut off where the run was killed."""
        parser = ElementTree.XMLPullParser(events=("end",))
        errors: List[ElementTree.Element] = []
        try:
            with open(report, "rb") as stream:
                for chunk in iter(lambda: stream.read(CHUNK_BYTES), b""):
                    parser.feed(chunk)
                    errors += [element for _, element in parser.read_events() if element.tag == "error"]
        except ElementTree.ParseError:
            pass            # the end of what it wrote before it was stopped: keep what came before
        except OSError as exc:
            raise ReportError(f"cannot read cppcheck report {report.name}: {exc}") from None
        return self._findings(errors, whole=False)


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
