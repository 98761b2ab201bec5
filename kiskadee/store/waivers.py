"""Waivers: a person's verdict on a finding (a false positive, intentional, or a real bug).

A waiver belongs to a package and a fingerprint, not to one version: it holds
for every version of the package that has the finding, later ones included,
because the fingerprint survives unrelated changes. Waiving again replaces
the verdict.

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

from kiskadee.errors import NotFoundError, UsageError
from kiskadee.store import sql
from kiskadee.store.db import write_transaction
from kiskadee.store.models import Waiver, utcnow

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
        replaced = Waiver.delete().where((Waiver.package == target.package_id)
                                         & (Waiver.fingerprint == target.fingerprint)).execute()
        Waiver.create(package=target.package_id, fingerprint=target.fingerprint, kind=kind,
                      comment=comment, author=author, created_at=now or utcnow())
    log.info("%s %s: waived as %s", target.package, target.fingerprint, kind)
    return target, bool(replaced)


def remove(fingerprint: str, *, package: Optional[str] = None) -> Target:
    """Withdraw the waiver of a finding; NotFoundError if it has none."""
    target = resolve(fingerprint, package)
    with write_transaction(Waiver._meta.database):
        removed = Waiver.delete().where((Waiver.package == target.package_id)
                                        & (Waiver.fingerprint == target.fingerprint)).execute()
    if not removed:
        raise NotFoundError(f"{target.package}: finding {target.fingerprint} is not waived")
    return target


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
