"""Ranking: which findings are most likely real, as a score stored with each finding.

The score adds

- the normalized severity (high 3, medium 2, low 1, info 0),
- 2 for each other analyzer that flags the same file within two lines,
- a weight for the class of the CWE (memory safety and injection above
  numeric and resource errors, above API misuse, above code quality),

and subtracts

- half the decimal logarithm of the number of findings in the same file
  (files drowned in warnings are a sign of a noisy check, not of many bugs),
- half the binary logarithm of one plus the number of earlier releases that
  already had the finding, at most 2: a warning that survived many releases
  without anyone fixing it is more often a false positive or harmless (the
  "alert lifetime" feature of actionable-alert studies).

The first four are known when the analyzers finish (``rank``); survival is
known only when the results are stored next to the package's history
(``with_survival``, called by ``kiskadee.store.results``). The score orders findings;
it is not a probability.
"""

import functools
import math
from collections import Counter, defaultdict
from typing import Dict, Iterable, List, Optional, Tuple

from kiskadee.core.findings import Finding

SEVERITY_WEIGHT = {"high": 3.0, "medium": 2.0, "low": 1.0, "info": 0.0}
AGREEMENT_WEIGHT = 2.0
NEIGHBOURHOOD = 2       # lines either side that count as the same spot
SURVIVAL_WEIGHT = 0.5   # per doubling of the releases a finding survived
SURVIVAL_FLOOR = -2.0

# CWE classes, most consequential first, with the weight each adds to the rank.
CWE_CLASSES = {
    "memory-safety": (1.5, {
        119, 120, 121, 122, 123, 124, 125, 126, 127, 129, 131, 170, 193, 415, 416, 457,
        476, 562, 590, 690, 761, 762, 763, 786, 787, 788, 805, 806, 822, 823, 824, 825, 908,
    }),
    "injection": (1.5, {77, 78, 88, 89, 94, 134, 426, 427, 807}),
    "numeric": (1.0, {128, 190, 191, 194, 195, 196, 197, 369, 681, 682, 758}),
    "resource": (1.0, {362, 364, 366, 367, 377, 400, 401, 404, 459, 664, 667, 672, 770, 772, 775}),
    "api-misuse": (0.75, {252, 253, 475, 628, 665, 686, 687, 688, 704}),
    "code-quality": (0.0, {398, 477, 478, 480, 482, 483, 484, 561, 563, 570, 571, 710, 1041, 1164}),
}
OTHER_CWE_WEIGHT = 0.5  # a CWE none of the classes lists
_CLASS_OF_CWE = {cwe: name for name, (_, cwes) in CWE_CLASSES.items() for cwe in cwes}


def cwe_class(cwe: Optional[int]) -> str:
    """The class of a CWE ("memory-safety", "injection", ...), "other" or "" for none."""
    if not cwe:
        return ""
    return _CLASS_OF_CWE.get(cwe, "other")


def cwe_weight(cwe: Optional[int]) -> float:
    """What the CWE's class adds to the rank."""
    kind = cwe_class(cwe)
    if not kind:
        return 0.0
    return CWE_CLASSES[kind][0] if kind in CWE_CLASSES else OTHER_CWE_WEIGHT


@functools.lru_cache(maxsize=None)
def survival_weight(survived: int) -> float:
    """What surviving ``survived`` earlier releases adds to the rank (zero or less)."""
    return max(SURVIVAL_FLOOR, -SURVIVAL_WEIGHT * math.log2(1 + max(0, survived)))


def with_survival(rank: float, survived: int) -> float:
    """The rank of a finding once the number of earlier releases that had it is known."""
    return round(rank + survival_weight(survived), 3)


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
                + cwe_weight(finding.cwe)
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
