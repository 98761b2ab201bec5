"""A version's place in its package's history: the analyzed version before it, and
how many earlier releases already had each of its findings.

A version counts as analyzed once at least one analyzer completed on it
(``kiskadee.core.states.COMPLETED``: status ``ok``; that module says why a
skipped run does not count). "Before" follows the version rules of the
package's fetcher (``kiskadee.core.versions``): Debian's for the Debian
fetcher, rpm's for Anitya, PEP 440 with rpm's rules as fallback for the
others (``versions.scheme_of``).

``store.results.store_runs`` calls ``link`` and ``survival`` before it writes a
version's findings, and then, for each of ``later`` (the versions after it,
which an out-of-order or repeated analysis changes), ``link`` and
``survival`` again, oldest first, in the same transaction: so
``version.previous_id`` and ``finding.survived`` stay true whichever order
``kiskadee analyze``, ``kiskadee retry`` and the monitor store versions in.
These run on the hot path of storing results, so they use plain SQL.
"""

import functools
import logging
from typing import Callable, Collection, Dict, List, Optional, Tuple

from kiskadee.core import versions
from kiskadee.core.states import COMPLETED
from kiskadee.store import sql
from kiskadee.store.models import Package, Version

log = logging.getLogger(__name__)

CHUNK = 400     # fingerprints per query, well under SQLite's limit of parameters
_COMPLETED = tuple(status.value for status in COMPLETED)     # parameters of "a.status IN (...)"
_COMPLETED_MARKS = ", ".join("?" * len(_COMPLETED))


def scheme_of(package: Package) -> str:
    """The version rules of a package's fetcher."""
    return versions.scheme_of(package.fetcher.name)     # loaded once per package instance


def _comparator(scheme: str) -> Callable[[str, str], int]:
    """Compare under ``scheme``; a version its rules reject (a Debian version with a space)
    is compared with rpm's rules, which order any string, rather than failing the store."""
    def compare(a: str, b: str) -> int:
        try:
            return versions.compare(scheme, a, b)
        except ValueError:
            log.warning("%r or %r is not a %s version; comparing them with rpm's rules", a, b, scheme)
            return versions.compare("rpm", a, b)

    return compare


def analyzed_versions(package: Package) -> List[Tuple[int, str]]:
    """(id, number) of the package's analyzed versions, oldest first by its version rules."""
    rows = sql.execute("SELECT DISTINCT v.id, v.number FROM version v JOIN analysis a ON a.version_id = v.id"
                       f" WHERE v.package_id = ? AND a.status IN ({_COMPLETED_MARKS})",
                       package.id, *_COMPLETED).fetchall()
    key = functools.cmp_to_key(_comparator(scheme_of(package)))
    return sorted(rows, key=lambda row: key(row[1]))


def _split(version: Version) -> Tuple[List[Tuple[int, str]], List[Tuple[int, str]]]:
    """The package's other analyzed versions: those before ``version`` and those after."""
    compare = _comparator(scheme_of(version.package))
    before, after = [], []
    for row in analyzed_versions(version.package):
        if row[0] == version.id:
            continue
        (before if compare(row[1], version.number) < 0 else after).append(row)
    return before, after


def previous_analyzed(version: Version) -> Optional[Version]:
    """The latest analyzed version before ``version`` by the package's rules, if any."""
    before, _ = _split(version)
    return Version.get_by_id(before[-1][0]) if before else None


def link(version: Version) -> Optional[Version]:
    """Record ``version``'s previous analyzed version in ``version.previous_id``; return it."""
    previous = previous_analyzed(version)
    version.previous_id = previous.id if previous else None    # the caller may save() this instance afterwards
    sql.execute("UPDATE version SET previous_id = ? WHERE id = ?", version.previous_id, version.id)
    return previous


def later(version: Version) -> List[Version]:
    """The package's versions after ``version`` by its rules that have analyses, oldest first:
    those whose previous version and survival counts depend on ``version``'s results."""
    compare = _comparator(scheme_of(version.package))
    rows = [row for row in sql.execute("SELECT DISTINCT v.id, v.number FROM version v"
                                       " JOIN analysis a ON a.version_id = v.id"
                                       " WHERE v.package_id = ? AND v.id != ?", version.package_id, version.id)
            if compare(row[1], version.number) > 0]
    rows.sort(key=functools.cmp_to_key(lambda a, b: compare(a[1], b[1])))
    return [Version.get_by_id(version_id) for version_id, _ in rows]


def survival(version: Version, previous: Optional[Version], fingerprints: Collection[str]) -> Dict[str, int]:
    """For each of ``fingerprints`` (of ``version``), how many earlier analyzed versions had it.

    A finding the previous version had survived one more release than it had
    there; only the others (new, or back after a gap) are looked up in the
    rest of the package's history, through the fingerprint index.
    """
    if previous is None or not fingerprints:
        return {}
    wanted = set(fingerprints)
    counts = {fingerprint: survived + 1 for fingerprint, survived in sql.execute(
        "SELECT f.fingerprint, f.survived FROM finding f JOIN analysis a ON a.id = f.analysis_id"
        " WHERE a.version_id = ?", previous.id) if fingerprint in wanted}
    rest = sorted(wanted - counts.keys())
    if rest:
        before, _ = _split(version)
        older = {version_id for version_id, _ in before if version_id != previous.id}
        counts.update(_occurrences(version.package_id, rest, older))
    return counts


def _occurrences(package_id: int, fingerprints: List[str], version_ids: Collection[int]) -> Dict[str, int]:
    """In how many of ``version_ids`` each fingerprint occurs (those occurring at all)."""
    if not version_ids:
        return {}
    seen: Dict[str, set] = {}
    for start in range(0, len(fingerprints), CHUNK):
        chunk = fingerprints[start:start + CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = sql.execute("SELECT f.fingerprint, a.version_id FROM finding f"
                           " JOIN analysis a ON a.id = f.analysis_id JOIN version v ON v.id = a.version_id"
                           f" WHERE v.package_id = ? AND f.fingerprint IN ({marks})", package_id, *chunk)
        for fingerprint, version_id in rows:
            if version_id in version_ids:
                seen.setdefault(fingerprint, set()).add(version_id)
    return {fingerprint: len(ids) for fingerprint, ids in seen.items()}
