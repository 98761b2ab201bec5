"""The outcome of one analyzer over one source tree, as the runner sends it and the store keeps it."""

import dataclasses
from typing import List, Optional

from kiskadee.core.findings import Finding


@dataclasses.dataclass
class AnalyzerRun:
    """The outcome of one analyzer over one source tree."""

    analyzer: str
    tool_version: str
    status: str                 # ok, failed, timeout, skipped
    duration: float = 0.0
    error: str = ""
    findings: List[Finding] = dataclasses.field(default_factory=list)
    # Coverage, for analyzers that compile the code (see kiskadee.analysis.analyzers.Coverage).
    mode: str = ""
    files_analyzed: Optional[int] = None
    files_failed: Optional[int] = None
    fallback: str = ""
    failed_files: str = ""

    def to_wire(self) -> dict:
        """As a plain object for a result message (JSON's types: lists, not tuples)."""
        data = dataclasses.asdict(self)
        for finding in data["findings"]:
            finding["cwes"] = list(finding["cwes"])
            finding["context"] = list(finding["context"])
        return data

    @classmethod
    def from_wire(cls, data: dict) -> "AnalyzerRun":
        """From a result message's run; TypeError or ValueError if a finding is malformed."""
        fields = dict(data)
        fields["findings"] = [Finding(**finding) for finding in fields.get("findings", [])]
        return cls(**fields)
