"""Waivers: a person's verdict on a finding (a false positive, intentional, or a real bug).

A waiver belongs to a package and a fingerprint, not to one version: it holds
for every version of the package that has the finding, later ones included,
because the fingerprint survives unrelated changes. Waiving again replaces
the verdict.

A finding that moved to another file (a renamed file, code moved between
files) has a new fingerprint, since the path is part of it. Its waiver goes
with it as a row of its own, copied from the old finding's (same kind,
comment, author and time), so that ``show``, ``diff``, the exports and
sqlite3 users all read it by fingerprint as before, at no cost per read.
Moves are those ``kiskadee.core.moves`` finds between consecutive analyzed
versions. The copies are made when the verdict is given (``waive`` follows
the finding through every later version already stored) and when a version
is stored (``carry``, in the storing transaction: a verdict given before the
new release follows it). Withdrawing a verdict withdraws that row only.

``kiskadee waive`` writes the waiver directly, even while the monitor (the
database's usual single writer) runs: it is one short transaction that takes
the write lock at its start (``store.db.write_transaction``), so SQLite's busy
timeout makes it wait for the monitor's transaction instead of failing.
"""

import dataclasses
import datetime
import logging
import re
from typing import Dict, List, Optional, Tuple

from kiskadee.core import moves
from kiskadee.core.states import COMPLETED
from kiskadee.errors import NotFoundError, UsageError
from kiskadee.store import findings as stored
from kiskadee.store import lineage, sql
from kiskadee.store.db import write_transaction
from kiskadee.store.models import Package, Version, Waiver, utcnow

log = logging.getLogger(__name__)

KINDS = ("false-positive", "intentional", "bug")
MIN_PREFIX = 6          # characters of a fingerprint that may stand for all of it
_HEX = re.compile(r"[0-9a-f]+")


@dataclasses.dataclass(frozen=True)
class Target:
    """The package and full fingerprint a waiver is about."""

    package_id: int
    package: str
    fetcher: str
    fingerprint: str


def waive(fingerprint: str, kind: str, comment: str = "", *, package: Optional[str] = None,
          author: str = "", now: Optional[datetime.datetime] = None) -> Tuple[Target, bool]:
    """Record a verdict on a finding; returns its target and whether it replaced one."""
    if kind not in KINDS:
        raise UsageError(f"unknown waiver kind {kind!r}; use one of {', '.join(KINDS)}")
    target = resolve(fingerprint, package)
    with write_transaction(Waiver._meta.database):
        replaced = Waiver.get_or_none((Waiver.package == target.package_id)
                                      & (Waiver.fingerprint == target.fingerprint))
        if replaced is not None:
            replaced.delete_instance()
        waiver = Waiver.create(package=target.package_id, fingerprint=target.fingerprint, kind=kind,
                               comment=comment, author=author, created_at=now or utcnow())
        followed = _follow(waiver, replaced)
    log.info("%s %s: waived as %s%s", target.package, target.fingerprint, kind,
             f" (and where it moved: {', '.join(followed)})" if followed else "")
    return target, replaced is not None


def remove(fingerprint: str, *, package: Optional[str] = None) -> Target:
    """Withdraw the waiver of a finding; NotFoundError if it has none."""
    target = resolve(fingerprint, package)
    with write_transaction(Waiver._meta.database):
        removed = Waiver.delete().where((Waiver.package == target.package_id)
                                        & (Waiver.fingerprint == target.fingerprint)).execute()
    if not removed:
        raise NotFoundError(f"{target.package}: finding {target.fingerprint} is not waived")
    return target


def carry(version: Version, previous: Optional[Version] = None) -> int:
    """Give ``version``'s findings that moved from another file the waivers their old findings
    had in ``previous`` (default: the analyzed version before), unless they have their own;
    in the caller's transaction. Returns how many were carried."""
    previous = previous or lineage.previous_analyzed(version)
    if previous is None:
        return 0
    waived = {w.fingerprint: w for w in Waiver.select().where(Waiver.package == version.package_id)}
    carried = 0
    for old, new in moved_fingerprints(previous, version):
        if old in waived and new not in waived:
            waived[new] = _copy(waived[old], new)
            carried += 1
    return carried


def moved_fingerprints(old: Version, new: Version) -> List[Tuple[str, str]]:
    """(old fingerprint, new fingerprint) of the findings that moved to another file from ``old`` to ``new``,
    analyzer by analyzer where it completed on both."""
    old_runs = {name: (analysis_id, status) for name, analysis_id, status, *_ in stored.analyses(old.id)}
    pairs: List[Tuple[str, str]] = []
    for name, analysis_id, status, *_ in stored.analyses(new.id):
        other_id, other_status = old_runs.get(name, (None, None))
        if other_id is None or status not in COMPLETED or other_status not in COMPLETED:
            continue
        gone = stored.matching(other_id, analysis_id, present=False)
        came = stored.matching(analysis_id, other_id, present=False)
        if gone and came:
            found = {f["id"]: f for f in stored.details(gone + came)}
            pairs += [(found[o.id]["fingerprint"], found[n.id]["fingerprint"]) for o, n in
                      moves.pair([moves.located(found[i]) for i in gone], [moves.located(found[i]) for i in came])]
    return pairs


def _follow(waiver: Waiver, replaced: Optional[Waiver] = None) -> List[str]:
    """Copy a new verdict onto the finding wherever it moved in the versions stored after it, replacing
    copies of the verdict it ``replaced``; the fingerprints it went to."""
    versions = [Version.get_by_id(version_id) for version_id, _ in lineage.analyzed_versions(
        Package.get_by_id(waiver.package_id))]
    chain, followed = {waiver.fingerprint}, []
    for previous, version in zip(versions, versions[1:]):
        if not _has_any(previous, chain):
            continue
        for old, new in moved_fingerprints(previous, version):
            if old in chain and new not in chain:
                chain.add(new)
                own = Waiver.get_or_none((Waiver.package == waiver.package_id) & (Waiver.fingerprint == new))
                if own is not None and replaced is not None and _verdict(own) == _verdict(replaced):
                    own.delete_instance()
                    own = None
                if own is None:
                    _copy(waiver, new)
                    followed.append(new)
    return followed


def _has_any(version: Version, fingerprints: set) -> bool:
    marks = ", ".join("?" * len(fingerprints))
    return sql.execute("SELECT 1 FROM finding f JOIN analysis a ON a.id = f.analysis_id WHERE a.version_id = ?"
                       f" AND f.fingerprint IN ({marks}) LIMIT 1", version.id, *fingerprints).fetchone() is not None


def _verdict(waiver: Waiver) -> Tuple:
    return (waiver.kind, waiver.comment, waiver.author, waiver.created_at)


def _copy(waiver: Waiver, fingerprint: str) -> Waiver:
    log.info("waiver of %s carried to %s, where the finding moved", waiver.fingerprint, fingerprint)
    return Waiver.create(package=waiver.package_id, fingerprint=fingerprint, kind=waiver.kind,
                         comment=waiver.comment, author=waiver.author, created_at=waiver.created_at)


def for_package(package_id: int) -> Dict[str, Dict]:
    """The waivers of a package by fingerprint, as plain data."""
    return {w.fingerprint: as_data(w) for w in Waiver.select().where(Waiver.package == package_id)}


def as_data(waiver: Waiver) -> Dict:
    return {
        "kind": waiver.kind,
        "comment": waiver.comment,
        "author": waiver.author,
        "created_at": str(waiver.created_at),
    }


def resolve(fingerprint: str, package: Optional[str] = None) -> Target:
    """The one package and full fingerprint that a fingerprint, or its first characters, names.

    Findings and existing waivers are both searched, so a waiver can be
    withdrawn after its findings are gone.
    """
    prefix = fingerprint.strip().lower()
    if len(prefix) < MIN_PREFIX or not _HEX.fullmatch(prefix):
        raise UsageError(f"{fingerprint!r} is not a fingerprint: give at least {MIN_PREFIX} of its "
                         "hexadecimal characters, as 'kiskadee show' prints them")
    targets = _matches(prefix, package)
    if not targets:
        where = f" in package {package}" if package else ""
        raise NotFoundError(f"no finding with fingerprint {prefix}{where}")
    fingerprints = sorted({t.fingerprint for t in targets})
    if len(fingerprints) > 1:
        raise UsageError(f"{prefix} is ambiguous: it starts {', '.join(fingerprints[:5])}; give more of it")
    if len(targets) > 1:
        names = ", ".join(f"{t.package} ({t.fetcher})" for t in targets)
        raise UsageError(f"{prefix} is in several packages ({names}); name one with --package")
    return targets[0]


def _matches(prefix: str, package: Optional[str]) -> List[Target]:
    """Every (package, fingerprint) whose fingerprint starts with ``prefix``."""
    # A range rather than LIKE, so SQLite answers from the fingerprint index. Plain SQL:
    # the union of two five-table joins reads more plainly here than as peewee objects.
    upper = prefix + "g"
    where = " AND p.name = ?" if package else ""
    params = (prefix, upper) + ((package,) if package else ())
    found = sql.execute(
        "SELECT DISTINCT p.id, p.name, fe.name, f.fingerprint FROM finding f"
        " JOIN analysis a ON a.id = f.analysis_id JOIN version v ON v.id = a.version_id"
        " JOIN package p ON p.id = v.package_id JOIN fetcher fe ON fe.id = p.fetcher_id"
        f" WHERE f.fingerprint >= ? AND f.fingerprint < ?{where}"
        " UNION SELECT p.id, p.name, fe.name, w.fingerprint FROM waiver w"
        " JOIN package p ON p.id = w.package_id JOIN fetcher fe ON fe.id = p.fetcher_id"
        f" WHERE w.fingerprint >= ? AND w.fingerprint < ?{where}", *(params + params)).fetchall()
    return [Target(*row) for row in sorted(found)]
