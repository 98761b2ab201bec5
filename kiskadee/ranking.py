"""Ranking: which findings are most likely real, as a score stored with each finding.

The score adds the severity, a bonus when other analyzers flag the same file
within two lines, a bonus for a known CWE, and a penalty for files drowned in
warnings (a sign of a noisy check rather than of many bugs).
"""

import math
from collections import Counter, defaultdict
from typing import Dict, Iterable, List, Tuple

from kiskadee.findings import Finding

SEVERITY_WEIGHT = {"high": 3.0, "medium": 2.0, "low": 1.0, "info": 0.0}
AGREEMENT_WEIGHT = 2.0
CWE_WEIGHT = 0.5
NEIGHBOURHOOD = 2       # lines either side that count as the same spot


def rank(findings_by_analyzer: Dict[str, List[Finding]]) -> None:
    """Set ``rank`` on every finding of one version, across all its analyzers."""
    spots = _spots(findings_by_analyzer.items())
    per_file = Counter(f.path for fs in findings_by_analyzer.values() for f in fs)
    for analyzer, findings in findings_by_analyzer.items():
        for finding in findings:
            agreeing = _agreeing(spots, analyzer, finding)
            finding.rank = round(
                SEVERITY_WEIGHT[finding.severity]
                + AGREEMENT_WEIGHT * agreeing
                + (CWE_WEIGHT if finding.cwe else 0.0)
                - math.log10(per_file[finding.path]) / 2,
                3,
            )


def _spots(items: Iterable[Tuple[str, List[Finding]]]) -> Dict[Tuple[str, int], set]:
    """Analyzers per (path, line)."""
    spots: Dict[Tuple[str, int], set] = defaultdict(set)
    for analyzer, findings in items:
        for finding in findings:
            spots[(finding.path, finding.line)].add(analyzer)
    return spots


def _agreeing(spots: Dict[Tuple[str, int], set], analyzer: str, finding: Finding) -> int:
    others = set()
    for line in range(finding.line - NEIGHBOURHOOD, finding.line + NEIGHBOURHOOD + 1):
        others |= spots.get((finding.path, line), set())
    others.discard(analyzer)
    return len(others)
