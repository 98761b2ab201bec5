"""Retention: deleting the analyses and findings of a package's older analyzed versions.

``prune`` keeps each package's last ``keep`` analyzed versions (by its version
rules, ``kiskadee.store.lineage``) and deletes the analyses of the older ones;
their findings go with them through the foreign key (``ON DELETE CASCADE``).
The version rows stay: the monitor's catalog still knows the version, so it
is not queued again, and ``kiskadee retry`` can analyze it once more.

Never pruned: a package's newest analyzed version (``keep`` is at least 1)
and a version in the queue (queued or leased: a runner has or will get it,
and its results would land on a version whose history was just cut).

What remains stays consistent: a pruned version is no longer analyzed, so
``version.previous_id`` of every version that pointed to one is linked again
to its previous analyzed version, and ``finding.survived`` of the package's
remaining findings counts only the analyzed versions that remain, as if the
pruned ones had never been analyzed (``lineage.survival`` relies on it when
the next version is stored).
"""

import dataclasses
from typing import Dict, Iterable, List, Optional, Set, Tuple

import peewee

from kiskadee.core import ranking
from kiskadee.core.states import IN_QUEUE
from kiskadee.store import lineage, results, sql
from kiskadee.store.db import write_transaction
from kiskadee.store.models import Analysis, Fetcher, Finding, Package, Version

_IN_QUEUE = tuple(state.value for state in IN_QUEUE)


@dataclasses.dataclass(frozen=True)
class PrunedVersion:
    """A version whose analyses were (or, in a dry run, would be) deleted."""

    fetcher: str
    package: str
    number: str
    analyses: int
    findings: int


@dataclasses.dataclass(frozen=True)
class HeldVersion:
    """An old analyzed version left alone because it is in the queue."""

    fetcher: str
    package: str
    number: str
    state: str


@dataclasses.dataclass
class PruneReport:
    """What ``prune`` deleted or, in a dry run, would delete."""

    pruned: List[PrunedVersion] = dataclasses.field(default_factory=list)
    held: List[HeldVersion] = dataclasses.field(default_factory=list)


def prune(db: peewee.Database, keep: int, *, package: Optional[str] = None,
          fetcher: Optional[str] = None, dry_run: bool = False,
          table: Optional[ranking.Priors] = None) -> PruneReport:
    """Keep the last ``keep`` analyzed versions of each package (or of ``package``), deleting
    the analyses and findings of the older ones; with ``dry_run``, only say what would go.

    Each package is pruned in its own write transaction, so the monitor waits
    for one package at a time, never for the whole database. Findings whose
    survival changed are ranked again with the priors ``table``.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1: a package's newest analyzed version is never pruned")
    report = PruneReport()
    for package_id in _package_ids(package, fetcher):
        if dry_run:
            _prune_package(Package.get_by_id(package_id), keep, report, delete=False, table=table)
            continue
        with write_transaction(db):
            _prune_package(Package.get_by_id(package_id), keep, report, delete=True, table=table)
    return report


def _package_ids(name: Optional[str], fetcher: Optional[str]) -> List[int]:
    query = Package.select(Package.id).join(Fetcher).order_by(Package.name, Fetcher.name)
    if name is not None:
        query = query.where(Package.name == name)
    if fetcher is not None:
        query = query.where(Fetcher.name == fetcher)
    return [row.id for row in query]


def _prune_package(package: Package, keep: int, report: PruneReport, *, delete: bool,
                   table: Optional[ranking.Priors]) -> None:
    fetcher = Fetcher.get_by_id(package.fetcher_id).name
    older = lineage.analyzed_versions(package)[:-keep]
    if not older:
        return
    states = dict(Version.select(Version.id, Version.state)
                  .where(Version.id.in_([version_id for version_id, _ in older])).tuples())
    doomed = []
    for version_id, number in older:
        if states[version_id] in _IN_QUEUE:
            report.held.append(HeldVersion(fetcher, package.name, number, states[version_id]))
        else:
            doomed.append(version_id)
            report.pruned.append(PrunedVersion(fetcher, package.name, number, *_counts(version_id)))
    if delete and doomed:
        Analysis.delete().where(Analysis.version.in_(doomed)).execute()    # findings follow (ON DELETE CASCADE)
        _relink(package, set(doomed))
        recount_survival(package, table)


def _counts(version_id: int) -> Tuple[int, int]:
    """How many analyses and findings ``version_id`` has."""
    analyses = Analysis.select().where(Analysis.version == version_id).count()
    findings = Finding.select().join(Analysis).where(Analysis.version == version_id).count()
    return analyses, findings


def _relink(package: Package, pruned: Set[int]) -> None:
    """Link again each version of ``package`` that is pruned or whose previous version was."""
    query = Version.select().where((Version.package == package)
                                   & (Version.id.in_(pruned) | Version.previous.in_(pruned)))
    for version in query:
        previous = lineage.previous_analyzed(version)
        Version.update(previous=previous.id if previous else None).where(Version.id == version.id).execute()


def recount_survival(package: Package, table: Optional[ranking.Priors] = None) -> int:
    """Set ``finding.survived`` of every finding of ``package`` to the number of its remaining
    analyzed versions before the finding's version that have its fingerprint, ranking the
    versions where it changed again (with the priors ``table``); how many findings changed."""
    analyzed = lineage.analyzed_versions(package)
    analyzed_ids = {version_id for version_id, _ in analyzed}
    # Versions with findings that are not analyzed (every analyzer failed, with a partial
    # report) count from their previous analyzed version, as lineage.survival does.
    others: Dict[int, Optional[int]] = {}
    for version in Version.select().join(Analysis).join(Finding).where(Version.package == package).distinct():
        if version.id not in analyzed_ids:
            previous = lineage.previous_analyzed(version)
            others[version.id] = previous.id if previous else None
    snapshots: Dict[Optional[int], Dict[str, int]] = {None: {}}
    counts: Dict[str, int] = {}
    changed = 0
    for version_id, _ in analyzed:
        changed += _set_survived(version_id, counts, table)
        for fingerprint in {fingerprint for _, fingerprint, _ in _findings(version_id)}:
            counts[fingerprint] = counts.get(fingerprint, 0) + 1
        if version_id in others.values():
            snapshots[version_id] = dict(counts)
    for version_id, previous_id in others.items():
        changed += _set_survived(version_id, snapshots[previous_id], table)
    return changed


def _findings(version_id: int) -> Iterable[Tuple[int, str, int]]:
    return sql.execute("SELECT f.id, f.fingerprint, f.survived FROM finding f"
                       " JOIN analysis a ON a.id = f.analysis_id WHERE a.version_id = ?", version_id).fetchall()


def _set_survived(version_id: int, counts: Dict[str, int], table: Optional[ranking.Priors]) -> int:
    """Set the survived counts of ``version_id``'s findings from ``counts`` and rank the version
    again if one changed; how many changed."""
    updates = [(counts.get(fingerprint, 0), finding_id) for finding_id, fingerprint, survived in _findings(version_id)
               if survived != counts.get(fingerprint, 0)]
    if updates:
        sql.execute_many("UPDATE finding SET survived = ? WHERE id = ?", updates)
        results.rerank(version_id, table=table)
    return len(updates)
