"""Exporting a version's results for the tools people already use: SARIF 2.1.0,
Firehose XML and JSON.

``collect`` gathers what every format needs: the version, its analyses, and
each finding with its waiver and its baseline state against the previous
analyzed version (``new`` or ``unchanged``; None where there is no previous
version or the analyzer did not complete on it, so nothing is claimed).
"""

import dataclasses
from typing import Dict, List, Optional

from kiskadee.errors import NotFoundError
from kiskadee.results import diff
from kiskadee.store import findings as stored
from kiskadee.store import lineage, queries, waivers
from kiskadee.store.models import Version


@dataclasses.dataclass
class Export:
    """A version's results, ready to be written in any format."""

    package: str
    fetcher: str
    version: str
    previous: Optional[str]
    source_url: str
    sha256: str
    analyses: List[Dict]
    findings: List[Dict]


def collect(version: Version, analyzer: Optional[str] = None) -> Export:
    """Everything an export of ``version`` (or of one of its analyzers) contains."""
    summary = queries.version_report(version, top=0)
    analyses = [a for a in summary["analyses"] if analyzer in (None, a["analyzer"])]
    if not analyses:
        raise NotFoundError(f"{analyzer} did not run on {summary['package']} {version.number}")
    previous = lineage.previous_analyzed(version)
    states = _baseline_states(previous, version)
    for analysis in analyses:
        analysis["baseline"] = states["notes"].get(analysis["analyzer"], "")
    findings = [f for f in diff.findings(stored.of_version(version.id), waivers.for_package(version.package_id))
                if analyzer in (None, f["analyzer"])]
    for finding in findings:
        finding["baseline_state"] = states["by_id"].get(finding["id"])
    return Export(summary["package"], summary["fetcher"], version.number,
                  previous.number if previous else None, summary["source_url"], summary["sha256"],
                  analyses, findings)


def _baseline_states(previous: Optional[Version], version: Version) -> Dict[str, Dict]:
    """Baseline state by finding id, and per analyzer why there is none."""
    if previous is None:
        return {"by_id": {}, "notes": {}}
    compared = diff.compare(previous, version)
    by_id = {finding_id: "new" for finding_id in compared.new_ids}
    by_id.update((finding_id, "unchanged") for finding_id in compared.unchanged_ids())
    notes = {c.analyzer: c.note(previous.number, version.number) for c in compared.comparisons}
    return {"by_id": by_id, "notes": notes}


def as_json_data(export: Export) -> Dict:
    """The JSON export: the version, its analyses and its findings with baseline states and waivers."""
    return {"format": "kiskadee-export", "format_version": 1, **dataclasses.asdict(export)}
