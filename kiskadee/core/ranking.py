"""Ranking: which findings are most likely real, as a score stored with each finding.

The score adds three named terms (``explain`` returns them):

- **severity**: 5 points per step of the normalized severity (high 15,
  medium 10, low 5, info 0): one step weighs as much as 50 points of
  estimated precision, so severity orders first and the check's record
  mostly orders the findings of one severity;
- **check precision**: ten times the share of the check's findings that were real on
  labelled code (``kiskadee.core.priors``, fitted by ``bench/ranking.py``),
  shrunk toward its analyzer's share (empirical Bayes: a check seen on
  ``CHECK_STRENGTH`` findings is half its own record, half its analyzer's),
  which is itself shrunk toward ``GLOBAL_PRIOR``. A check the table has not
  seen gets its analyzer's share; an analyzer it has not seen, the global one.
- **agreement**: ``AGREEMENT_BONUS``, once, when an analyzer of another family
  flags the same file within two lines with a CWE of the same class (or no
  CWE). clang's and gcc's analyzers are one family: their path-sensitive
  engines fire together on the same code, right or wrong, so their agreement
  is not independent evidence (issue 15: counted per analyzer, their agreement
  filled the top 100 with false positives and ranked below severity order).

The CWE class and the number of findings in the file were terms until
issue 15; on held-out labelled code each ranked worse alone than severity or
the check's record, and added to them they did not help, so they are not terms
any more (``cwe_class`` and ``cwe_weight`` remain for reports). Severity did
help: the check's record alone ranks its top quarter no better than severity
order; the two together beat it. The weights (5 per severity step, shrinkage
strengths of 10, one agreement point) were chosen from a small grid on 20
random 2-fold splits of the labelled suite, where the rank beat severity
order at every depth in 18 folds; they are round numbers on purpose, and a
heavy severity step keeps the rank close to severity order, which held up
on an independent suite where the old rank did not.

A finding that survived many earlier releases ranks lower by half the binary
logarithm of one plus their number, at most 2 (``with_survival``, called by
``kiskadee.store.results`` once the package's history is known): a warning
nobody fixed for many releases is more often harmless. The score orders
findings; it is not a probability. ``explain`` names its terms.
"""

import functools
import json
import math
from collections import defaultdict
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from kiskadee.core import priors as shipped
from kiskadee.core.findings import Finding
from kiskadee.errors import ConfigError

SEVERITY_WEIGHT = {"high": 15.0, "medium": 10.0, "low": 5.0, "info": 0.0}
SCALE = 10.0            # rank points per unit of estimated precision
AGREEMENT_BONUS = 1.0   # once, for an independent analyzer within NEIGHBOURHOOD lines
NEIGHBOURHOOD = 2       # lines either side that count as the same spot
GLOBAL_PRIOR = 0.3      # precision of an analyzer nothing is known about
ANALYZER_STRENGTH = 10.0  # pseudo-findings of the global prior in an analyzer's estimate
CHECK_STRENGTH = 10.0     # pseudo-findings of the analyzer's share in a check's estimate
SURVIVAL_WEIGHT = 0.5   # per doubling of the releases a finding survived
SURVIVAL_FLOOR = -2.0

# Analyzers whose findings are not independent evidence for each other.
FAMILIES = {"clang": "path-sensitive", "gcc": "path-sensitive"}

# CWE classes, most consequential first, with the weight each had in the rank until issue 15.
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

# A priors table: per analyzer, real and total findings, and the same per check id.
Priors = Mapping[str, Mapping[str, object]]


def cwe_class(cwe: Optional[int]) -> str:
    """The class of a CWE ("memory-safety", "injection", ...), "other" or "" for none."""
    if not cwe:
        return ""
    return _CLASS_OF_CWE.get(cwe, "other")


def cwe_weight(cwe: Optional[int]) -> float:
    """How consequential the CWE's class is (no longer a term of the rank)."""
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


def analyzer_precision(analyzer: str, table: Optional[Priors] = None) -> float:
    """The estimated share of real findings among ``analyzer``'s, shrunk toward GLOBAL_PRIOR."""
    record = (shipped.PRIORS if table is None else table).get(analyzer)
    if not record:
        return GLOBAL_PRIOR
    real, total = record["real"], record["total"]
    return (real + ANALYZER_STRENGTH * GLOBAL_PRIOR) / (total + ANALYZER_STRENGTH)


def check_precision(analyzer: str, check_id: str, table: Optional[Priors] = None) -> float:
    """The estimated share of real findings among the check's, shrunk toward its analyzer's."""
    base = analyzer_precision(analyzer, table)
    record = (shipped.PRIORS if table is None else table).get(analyzer) or {}
    real, total = record.get("checks", {}).get(check_id, (0, 0))
    return (real + CHECK_STRENGTH * base) / (total + CHECK_STRENGTH)


def rank(findings_by_analyzer: Dict[str, List[Finding]], table: Optional[Priors] = None) -> None:
    """Set ``rank`` on every finding of one version, across all its analyzers.

    ``table`` is a priors table like ``kiskadee.core.priors.PRIORS`` (the default).
    """
    spots = _spots(findings_by_analyzer.items())
    for analyzer, findings in findings_by_analyzer.items():
        for finding in findings:
            finding.rank = round(sum(_terms(spots, analyzer, finding, table).values()), 3)


def explain(findings_by_analyzer: Dict[str, List[Finding]], analyzer: str, finding: Finding,
            table: Optional[Priors] = None) -> Dict[str, float]:
    """The named terms whose sum is the rank ``rank`` gives ``finding`` (before survival)."""
    return _terms(_spots(findings_by_analyzer.items()), analyzer, finding, table)


def load_priors(path: str) -> Optional[Dict[str, dict]]:
    """The priors table in the JSON file ``path`` ('kiskadee ranking refit --output'); None for ''.

    ConfigError, naming the file, if it cannot be read or is not such a table.
    """
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as stream:
            document = json.load(stream)
        table = document["priors"] if isinstance(document, dict) and "priors" in document else document
        return fit_counts((str(analyzer), str(check_id), _count(real), _count(total))
                          for analyzer, record in table.items()
                          for check_id, (real, total) in record["checks"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"ranking.priors: {path}: not a priors table from 'kiskadee ranking refit' "
                          f"({type(exc).__name__}: {exc})") from None


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def fit(observations: Iterable[Tuple[str, str, bool]]) -> Dict[str, dict]:
    """A priors table from (analyzer, check id, was real) observations of labelled findings."""
    return fit_counts((analyzer, check_id, int(real), 1) for analyzer, check_id, real in observations)


def merged(*tables: Priors) -> Dict[str, dict]:
    """One priors table with the counts of all of ``tables`` added up."""
    return fit_counts((analyzer, check_id, real, total) for table in tables for analyzer, record in table.items()
                      for check_id, (real, total) in record["checks"].items())


def fit_counts(counts: Iterable[Tuple[str, str, int, int]]) -> Dict[str, dict]:
    """A priors table from (analyzer, check id, real, total) counts."""
    table: Dict[str, dict] = {}
    for analyzer, check_id, real, total in counts:
        record = table.setdefault(analyzer, {"real": 0, "total": 0, "checks": {}})
        record["real"] += real
        record["total"] += total
        seen, count = record["checks"].get(check_id, (0, 0))
        record["checks"][check_id] = (seen + real, count + total)
    return table


def _terms(spots: Dict[Tuple[str, int], set], analyzer: str, finding: Finding,
           table: Optional[Priors]) -> Dict[str, float]:
    precision = check_precision(analyzer, finding.check_id, table)
    agreeing = _independent_agreement(spots, analyzer, finding)
    return {"severity": SEVERITY_WEIGHT[finding.severity],
            "check precision": round(SCALE * precision, 3),
            "independent agreement": AGREEMENT_BONUS if agreeing else 0.0}


def _spots(items: Iterable[Tuple[str, List[Finding]]]) -> Dict[Tuple[str, int], set]:
    """The (analyzer, CWE class) pairs flagged at each (path, line)."""
    spots: Dict[Tuple[str, int], set] = defaultdict(set)
    for analyzer, findings in items:
        for finding in findings:
            spots[(finding.path, finding.line)].add((analyzer, cwe_class(finding.cwe)))
    return spots


def _independent_agreement(spots: Dict[Tuple[str, int], set], analyzer: str, finding: Finding) -> bool:
    """Whether an analyzer of another family flags a compatible problem within NEIGHBOURHOOD lines."""
    family, kind = FAMILIES.get(analyzer, analyzer), cwe_class(finding.cwe)
    for line in range(finding.line - NEIGHBOURHOOD, finding.line + NEIGHBOURHOOD + 1):
        for other, other_kind in spots.get((finding.path, line), ()):
            if FAMILIES.get(other, other) != family and (not kind or not other_kind or kind == other_kind):
                return True
    return False
