"""Writing analysis results to the database: a version's analyses and their findings.

The version's state is not changed here: ``kiskadee.store.queue`` stores a
runner's or a one-shot analysis's results through ``store_runs`` and then
moves the version to ``done`` or ``failed``, in the same transaction.

Ranks never go stale. A finding's rank (``kiskadee.core.ranking``) depends on
every analyzer of its version (agreement, findings per file) and on the
package's history (survival), so ``store_runs`` keeps both true whichever way
the results arrive:

- analyzers stored by separate runs (``kiskadee analyze --analyzers
  cppcheck``, then ``clang``; a retry with another analyzer enabled): all of
  the version's findings are ranked together, those of analyzers the runs do
  not replace read back from their rows. The runs' own ranks are never
  trusted: a runner is a peer, not the site, and the site's priors table
  (``ranking.priors``) may not be the runner's. Ranking adds about half to
  the time of storing a version (0.9 s to 2 s for 200,000 findings,
  ``bench/store_findings.py``).
- a version analyzed out of order, or again: the survival of each later
  version is counted again, oldest first, and where it changed that version is
  ranked again from its rows.
"""

import dataclasses
import functools
import logging
import operator
from typing import Collection, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from kiskadee.core import ranking
from kiskadee.core.findings import Finding
from kiskadee.core.runs import AnalyzerRun
from kiskadee.store import lineage, sql, waivers
from kiskadee.store.models import Analysis, Analyzer, Fetcher, Package, Version, utcnow

log = logging.getLogger(__name__)

FINDING_COLUMNS = (
    "analysis_id", "path", "line", "column", "function", "check_id",
    "cwe", "cwes", "severity", "message", "fingerprint", "rank", "survived",
    "context", "context_line", "line_hash",
)
_BY_FINGERPRINT = operator.itemgetter(FINDING_COLUMNS.index("fingerprint"))
# A stored finding as ranking needs it, with its row's id, analyzer, rank and survival.
_STORED = ("SELECT f.id, az.name, f.path, f.line, f.\"column\", f.function, f.check_id, f.cwe, f.cwes,"
           " f.severity, f.message, f.fingerprint, f.rank, f.survived FROM finding f"
           " JOIN analysis a ON a.id = f.analysis_id JOIN analyzer az ON az.id = a.analyzer_id"
           " WHERE a.version_id = ?")


class StoredFinding(NamedTuple):
    """A finding row read back to be ranked again."""

    id: int
    analyzer: str
    finding: Finding
    rank: float         # as stored, survival included
    survived: int


@dataclasses.dataclass(frozen=True)
class VersionKey:
    """Which version of which package, from which fetcher."""

    fetcher: str
    package: str
    version: str


def get_version(key: VersionKey) -> Version:
    """The version row for ``key``, created with its fetcher and package if new."""
    fetcher, _ = Fetcher.get_or_create(name=key.fetcher)
    package, _ = Package.get_or_create(fetcher=fetcher, name=key.package)
    version, _ = Version.get_or_create(package=package, number=key.version)
    return version


def store_runs(version: Version, runs: Sequence[AnalyzerRun], started_at=None,
               table: Optional[ranking.Priors] = None) -> None:
    """Store ``runs`` as ``version``'s analyses, replacing those of the same analyzers, in the
    caller's transaction, and bring the ranks of the version and of the later versions up to date.

    Ranking with ``table`` (the shipped priors when None) sets the ``rank`` of
    the findings of ``runs``, in place.
    """
    kept = stored_findings(version.id, excluding=[run.analyzer for run in runs])
    runs_by_analyzer = by_analyzer(kept)
    runs_by_analyzer.update((run.analyzer, run.findings) for run in runs)
    ranking.rank(runs_by_analyzer, table)
    previous = lineage.link(version)
    survived = lineage.survival(version, previous, [f.fingerprint for run in runs for f in run.findings])
    for run in runs:
        _store_run(version, run, started_at, survived)
    _update(kept, {stored.id: stored.survived for stored in kept})
    waivers.carry(version, previous)    # a verdict follows its finding into a moved file
    for later in lineage.later(version):
        _refresh(later, table)


def _store_run(version: Version, run: AnalyzerRun, started_at, survived: Mapping[str, int]) -> None:
    analyzer, _ = Analyzer.get_or_create(name=run.analyzer, version=run.tool_version)
    _delete_previous(version, run.analyzer)
    analysis = Analysis.create(
        version=version,
        analyzer=analyzer,
        status=run.status,
        started_at=started_at or utcnow(),
        duration=run.duration,
        finding_count=len(run.findings),
        error=run.error,
        mode=run.mode,
        files_analyzed=run.files_analyzed,
        files_failed=run.files_failed,
        fallback=run.fallback,
        failed_files=run.failed_files,
    )
    insert_findings(analysis.id, run.findings, survived)


def _delete_previous(version: Version, analyzer_name: str) -> None:
    previous = (
        Analysis.select(Analysis.id)
        .join(Analyzer)
        .where((Analysis.version == version) & (Analyzer.name == analyzer_name))
    )
    Analysis.delete().where(Analysis.id.in_(previous)).execute()


def _refresh(version: Version, table: Optional[ranking.Priors]) -> None:
    """Link ``version`` to its previous analyzed version again and count its findings' survival
    again; where a count changed, rank the whole version again."""
    previous = lineage.link(version)
    waivers.carry(version, previous)
    rows = sql.execute("SELECT f.fingerprint, f.survived FROM finding f JOIN analysis a ON a.id = f.analysis_id"
                       " WHERE a.version_id = ?", version.id).fetchall()
    survived = lineage.survival(version, previous, [fingerprint for fingerprint, _ in rows])
    if any(survived.get(fingerprint, 0) != count for fingerprint, count in rows):
        rerank(version.id, survived, table)    # else, the common case (analyzed again, same findings), read no more


def rerank(version_id: int, survived: Optional[Mapping[str, int]] = None,
           table: Optional[ranking.Priors] = None) -> int:
    """Rank every finding of a version again from its rows, with the survival counts ``survived``
    gives by fingerprint (default: those stored) and the priors ``table``; how many rows changed.
    For ``kiskadee prune`` too, whose recount of survival changes ranks, and ``kiskadee db rerank``."""
    stored = stored_findings(version_id)
    ranking.rank(by_analyzer(stored), table)
    return _update(stored, {s.id: s.survived if survived is None else survived.get(s.finding.fingerprint, 0)
                            for s in stored})


def stored_findings(version_id: int, excluding: Collection[str] = ()) -> List[StoredFinding]:
    """Every finding of a version but those of the analyzers ``excluding`` names, read back from its rows."""
    statement = _STORED + (f" AND az.name NOT IN ({', '.join('?' * len(excluding))})" if excluding else "")
    return [StoredFinding(row[0], row[1], _finding(row), row[12], row[13])
            for row in sql.execute(statement, version_id, *excluding)]


def _finding(row: tuple) -> Finding:
    _, _, path, line, column, function, check_id, cwe, cwes, severity, message, fingerprint, _, _ = row
    return Finding(path=path, line=line, column=column, function=function, check_id=check_id, cwe=cwe,
                   cwes=_cwes(cwes), severity=severity, message=message, fingerprint=fingerprint)


@functools.lru_cache(maxsize=4096)
def _cwes(text: str) -> Tuple[int, ...]:
    """'119,120' as (119, 120); cached, as a few combinations recur in a version's many findings."""
    return tuple(int(cwe) for cwe in text.split(",")) if text else ()


def by_analyzer(stored: Iterable[StoredFinding]) -> Dict[str, List[Finding]]:
    """The findings of ``stored`` grouped by analyzer, as ``ranking.rank`` takes them."""
    grouped: Dict[str, List[Finding]] = {}
    for s in stored:
        grouped.setdefault(s.analyzer, []).append(s.finding)
    return grouped


def _update(stored: Collection[StoredFinding], survived: Mapping[int, int]) -> int:
    """Write the rank ranking set on each of ``stored`` with its survival (by row id), where either
    changed; how many rows that was."""
    rows = []
    for s in stored:
        rank = _with_survival(s.finding.rank, survived[s.id])
        if (rank, survived[s.id]) != (s.rank, s.survived):
            rows.append((rank, survived[s.id], s.id))
    if rows:
        sql.execute_many("UPDATE finding SET rank = ?, survived = ? WHERE id = ?", rows)
    return len(rows)


def insert_findings(analysis_id: int, findings: Iterable[Finding],
                    survived: Optional[Mapping[str, int]] = None) -> int:
    """Bulk-insert findings of one analysis; returns how many were written.

    ``survived`` maps fingerprints to the number of earlier releases that had
    them (``lineage.survival``); it is stored and folded into the rank.

    This is the hot path when a large package has many findings, so it goes
    through the driver's executemany rather than building peewee queries, in
    fingerprint order: the fingerprint indexes then grow at one end instead
    of at random places (a fifth faster for 300,000 findings here).
    """
    columns = ", ".join(f'"{name}"' for name in FINDING_COLUMNS)
    marks = ", ".join("?" * len(FINDING_COLUMNS))
    survived = survived or {}
    rows = sorted((_row(analysis_id, f, survived.get(f.fingerprint, 0)) for f in findings), key=_BY_FINGERPRINT)
    sql.execute_many(f"INSERT INTO finding ({columns}) VALUES ({marks})", rows)
    return len(rows)


def _with_survival(rank: float, survived: int) -> float:
    return ranking.with_survival(rank, survived) if survived else rank


def _row(analysis_id: int, f: Finding, survived: int = 0) -> Tuple:
    rank = _with_survival(f.rank, survived)
    return (analysis_id, f.path, f.line, f.column, f.function, f.check_id,
            f.cwe, ",".join(map(str, f.cwes)), f.severity, f.message, f.fingerprint, rank, survived,
            "\n".join(f.context), f.context_line, f.line_hash)
