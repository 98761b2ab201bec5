"""Read-only questions people ask of the database, for ``packages``, ``show`` and ``diff``,
and what ``kiskadee fetch anitya`` needs to know of the versions already stored."""

from typing import Dict, List, Optional, Tuple

import peewee

from kiskadee.core.findings import SEVERITIES
from kiskadee.errors import NotFoundError, UsageError
from kiskadee.store import waivers
from kiskadee.store.models import Analysis, Analyzer, Fetcher, Finding, Package, Version


def package_summaries() -> List[Dict]:
    """Every package with its fetcher, how many versions were seen and the latest analyzed."""
    rows = []
    query = Package.select(Package, Fetcher).join(Fetcher).order_by(Package.name, Fetcher.name)
    for package in query:
        latest = _latest_analyzed(package)
        rows.append({
            "package": package.name,
            "fetcher": package.fetcher.name,
            "versions": package.versions.count(),
            "latest": latest.number if latest else "",
            "state": latest.state if latest else "",
            "findings": _finding_count(latest) if latest else 0,
        })
    return rows


def _latest_analyzed(package: Package) -> Optional[Version]:
    return (
        Version.select()
        .where((Version.package == package) & Version.finished_at.is_null(False))
        .order_by(Version.finished_at.desc(), Version.id.desc())
        .first()
    )


def _finding_count(version: Version) -> int:
    total = Analysis.select(peewee.fn.SUM(Analysis.finding_count)).where(Analysis.version == version)
    return total.scalar() or 0


def find_version(package: str, number: Optional[str] = None, fetcher: Optional[str] = None) -> Version:
    """The named version, or the latest analyzed one of the package, from ``fetcher`` when given.

    NotFoundError if there is none; UsageError, naming the fetchers, if the
    package comes from several fetchers that have such a version and none is given.
    """
    query = Version.select(Version, Package, Fetcher).join(Package).join(Fetcher).where(Package.name == package)
    if fetcher:
        query = query.where(Fetcher.name == fetcher)
    if number:
        query = query.where(Version.number == number)
    else:
        query = query.where(Version.finished_at.is_null(False))
    candidates = list(query.order_by(Version.finished_at.desc(), Version.id.desc()))
    fetchers = sorted({version.package.fetcher.name for version in candidates})
    if len(fetchers) > 1:
        raise UsageError(f"{package} comes from several fetchers ({', '.join(fetchers)}); "
                         "choose one with --fetcher NAME")
    if not candidates:
        what = f"version {number} of {package}" if number else f"analyzed version of {package}"
        where = f" from fetcher {fetcher}" if fetcher else ""
        raise NotFoundError(f"no {what}{where} in the database; 'kiskadee packages' lists what there is")
    return candidates[0]


def other_version(version: Version, number: str) -> Optional[Version]:
    """Version ``number`` of the same package as ``version``, None if the database has none."""
    return Version.get_or_none((Version.package == version.package_id) & (Version.number == number))


def version_report(version: Version, top: Optional[int] = None) -> Dict:
    """The analyses and findings (best ranked first) of one version, as plain data."""
    analyses = (Analysis.select(Analysis, Analyzer).join(Analyzer)
                .where(Analysis.version == version).order_by(Analyzer.name))
    if top is None:
        findings = (Finding.select(Finding, Analysis, Analyzer).join(Analysis).join(Analyzer)
                    .where(Analysis.version == version)
                    .order_by(Finding.rank.desc(), Finding.path, Finding.line))
    else:
        findings = _best_ranked(version, top)
    waived = waivers.for_package(version.package_id)
    return {
        "package": version.package.name,
        "fetcher": version.package.fetcher.name,
        "version": version.number,
        "state": version.state,
        "source_url": version.source_url,
        "sha256": version.sha256,
        "error": version.error,
        "analyses": [_analysis(a, _severity_counts(a)) for a in analyses],
        "findings": [dict(_finding(f), waiver=waived.get(f.fingerprint)) for f in findings],
    }


def _best_ranked(version: Version, top: int) -> List[Finding]:
    """The ``top`` best-ranked findings of a version: the best of each analysis and severity,
    read in rank order from the finding_rank index and merged, instead of sorting them all."""
    candidates: List[tuple] = []
    for analysis in Analysis.select(Analysis.id).where(Analysis.version == version):
        for severity in SEVERITIES:
            candidates.extend(Finding.select(Finding.rank, Finding.path, Finding.line, Finding.id)
                              .where((Finding.analysis == analysis.id) & (Finding.severity == severity))
                              .order_by(Finding.rank.desc(), Finding.path, Finding.line).limit(top).tuples())
    best = [c[3] for c in sorted(candidates, key=lambda c: (-c[0], c[1], c[2]))[:top]]
    found = {f.id: f for f in Finding.select(Finding, Analysis, Analyzer).join(Analysis).join(Analyzer)
             .where(Finding.id.in_(best))}
    return [found[finding_id] for finding_id in best]


def _severity_counts(analysis: Analysis) -> Dict[str, int]:
    query = (Finding.select(Finding.severity, peewee.fn.COUNT(Finding.id))
             .where(Finding.analysis == analysis).group_by(Finding.severity))
    return dict(query.tuples())


def _analysis(analysis: Analysis, by_severity: Dict[str, int]) -> Dict:
    return {
        "analyzer": analysis.analyzer.name,
        "analyzer_version": analysis.analyzer.version,
        "status": analysis.status,
        "duration": analysis.duration,
        "finding_count": analysis.finding_count,
        "by_severity": by_severity,
        "error": analysis.error,
        "coverage": _coverage(analysis),
    }


def _coverage(analysis: Analysis) -> Optional[Dict]:
    """What an analyzer that compiles the code analyzed; None for the others."""
    if analysis.files_analyzed is None:
        return None
    return {
        "mode": analysis.mode,
        "files_analyzed": analysis.files_analyzed,
        "files_failed": analysis.files_failed or 0,
        "fallback": analysis.fallback,
        "failed_files": analysis.failed_files.splitlines(),
    }


def _finding(finding: Finding) -> Dict:
    return {
        "analyzer": finding.analysis.analyzer.name,
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "function": finding.function,
        "check_id": finding.check_id,
        "cwe": finding.cwe,
        "severity": finding.severity,
        "message": finding.message,
        "fingerprint": finding.fingerprint,
        "rank": finding.rank,
        "survived": finding.survived,
    }


def anitya_versions() -> List[Tuple[str, str, str]]:
    """(package, number, stored event) of every anitya version, oldest first."""
    return list(Version.select(Package.name, Version.number, Version.event)
                .join(Package).join(Fetcher).where(Fetcher.name == "anitya")
                .order_by(Version.id).tuples())
