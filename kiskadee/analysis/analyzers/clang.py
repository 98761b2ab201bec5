"""The clang static analyzer (``clang --analyze``), read through its SARIF reports."""

import json
import re
from pathlib import Path
from typing import Dict, Iterable, List

from kiskadee.analysis.analyzers.base import ReportError
from kiskadee.analysis.analyzers.checkers import classify
from kiskadee.analysis.analyzers.compiled import CompiledAnalyzer
from kiskadee.analysis.driver.index import source_path
from kiskadee.core.findings import Finding


class Clang(CompiledAnalyzer):
    name = "clang"
    tool = "clang"

    def parse_version(self, output: str) -> str:
        match = re.search(r"clang version (\S+)", output)
        if not match:
            raise ReportError(f"unexpected 'clang --version' output: {output[:200]!r}")
        return match.group(1)

    def tool_args(self) -> List[str]:
        if not self.settings.checkers:
            return []
        return ["-Xanalyzer", f"-analyzer-checker={','.join(self.settings.checkers)}"]

    def parse_report(self, report: Path, roots: List[str], directory: str) -> Iterable[Finding]:
        try:
            document = json.loads(report.read_text(errors="replace"))
            runs = document["runs"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReportError(f"cannot read clang report {report.name}: {exc}") from None
        for run in runs:
            artifacts = run.get("artifacts", [])
            for result in run.get("results", []):
                yield _finding(result, artifacts, roots, directory)


def _finding(result: Dict, artifacts: List[Dict], roots: List[str], directory: str) -> Finding:
    location = (result.get("locations") or [{}])[0].get("physicalLocation", {})
    artifact = location.get("artifactLocation", {})
    uri = artifact.get("uri") or _artifact_uri(artifacts, artifact.get("index"))
    region = location.get("region", {})
    checker, message = result.get("ruleId", ""), result.get("message", {}).get("text", "")
    cwes, severity = classify("clang", checker, message)
    return Finding(
        path=source_path(uri, roots, directory) if uri else "",
        line=int(region.get("startLine", 0)),
        column=int(region.get("startColumn", 0)),
        check_id=checker,
        cwes=cwes,
        severity=severity,
        message=message,
    )


def _artifact_uri(artifacts: List[Dict], number) -> str:
    if isinstance(number, int) and 0 <= number < len(artifacts):
        return artifacts[number].get("location", {}).get("uri", "")
    return ""
