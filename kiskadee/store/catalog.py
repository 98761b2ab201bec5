"""The monitor's catalog of known packages and versions: what is new, and writing it down."""

import datetime
import json
import logging
from collections import defaultdict
from typing import Dict, Iterable, List, Optional, Tuple, Union

from kiskadee.core import versions
from kiskadee.core.states import VersionState
from kiskadee.store import sql
from kiskadee.store.models import Fetcher
from kiskadee.store.queue import QueuePolicy

log = logging.getLogger(__name__)

NAMES_PER_QUERY = 500          # package names (or ids) looked up at once


class Catalog:
    """Packages and versions the monitor knows, cached to decide quickly what is new.

    Recording is the monitor's hot path (a Debian pass is some 34,000 events),
    so it uses plain SQL: building a peewee query costs thirty times more than
    SQLite takes to run it. New packages and versions are written together by
    ``flush``; until then a new package goes by a provisional (negative) id.

    The monitor is not the only writer: ``kiskadee analyze`` records the
    versions it analyzes in the same database, behind this cache. ``flush``
    therefore inserts with ON CONFLICT DO NOTHING and counts what it inserted (the rows the
    driver reports changed, not a look-up per row); only when
    a row was already there does it read the packages concerned back, so the
    version another writer recorded is taken as known and the hot path stays
    free of look-ups.
    """

    def __init__(self, policy: QueuePolicy, version_chars: int = versions.MAX_LENGTH):
        self.policy = policy
        self.version_chars = version_chars
        self.reset()

    def reset(self) -> None:
        """Forget everything cached and pending (at start, or after the transaction it stood for was
        rolled back): each fetcher's packages and versions are read again at its next event."""
        self._fetchers: Dict[str, int] = {}
        self._packages: Dict[Tuple[int, str], int] = {}
        self._known: Dict[int, set] = {}            # package id -> version numbers
        self._newest: Dict[int, Optional[str]] = {}  # package id -> newest analyzed or queued
        self._new_packages: Dict[Tuple[int, str], object] = {}  # (fetcher id, name) -> created_at; not written yet
        self._pending: List[tuple] = []             # version rows not yet written

    def record(self, event: dict, now: Union[datetime.datetime, str]) -> str:
        """Record a source event; returns "queued", "seen" or "known" (nothing changed).

        ValueError, before anything is recorded, if the version is not one by
        the origin's rules. New versions are written by ``flush``, which the
        caller runs before committing the transaction.
        """
        scheme = versions.scheme_of(event["fetcher"])
        versions.check(scheme, event["version"], self.version_chars)
        package_id = self._package_id(event["fetcher"], event["package"], scheme, now)
        number = event["version"]
        if number in self._known[package_id]:
            return "known"
        wanted = self._wanted(package_id, number, scheme)
        state = VersionState.QUEUED if wanted else VersionState.SEEN     # the state the version is created in
        meta = json.dumps({"meta": event["meta"]}) if event.get("meta") else ""
        self._pending.append((package_id, number, state.value, event.get("source_url", ""),
                              event.get("sha256", ""), meta, now, now if wanted else None))
        self._known[package_id].add(number)
        if wanted:
            self._newest[package_id] = number
        return state.value

    def flush(self) -> None:
        """Write the packages and versions recorded since the last flush.

        What another writer recorded meanwhile stays as it wrote it; the
        packages concerned are then read back into the cache.
        """
        others_wrote = False
        if self._new_packages:
            ids, others_wrote = self._write_packages()
            self._pending = [(ids.get(row[0], row[0]),) + row[1:] for row in self._pending]
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        inserted = sql.execute_many(
            "INSERT INTO version (package_id, number, state, source_url, sha256, event, created_at,"
            " queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", pending)
        if inserted < len(pending):
            log.info("%d of %d new versions had been recorded by another writer; taken as known",
                     len(pending) - inserted, len(pending))
            others_wrote = True
        if others_wrote:
            self._reload({row[0] for row in pending})

    def _write_packages(self) -> Tuple[Dict[int, int], bool]:
        """Insert the new packages; move their cache entries to the real ids.

        Provisional id -> real id, and whether another writer had added any of them.
        """
        new, self._new_packages = self._new_packages, {}
        # DO NOTHING: a package another writer ('kiskadee analyze') added meanwhile is taken as it is.
        inserted = sql.execute_many("INSERT INTO package (fetcher_id, name, created_at) VALUES (?, ?, ?)"
                                    " ON CONFLICT DO NOTHING", [(*key, created) for key, created in new.items()])
        real: Dict[Tuple[int, str], int] = {}
        names = defaultdict(list)
        for fetcher_id, name in new:
            names[fetcher_id].append(name)
        for fetcher_id, all_names in names.items():
            for start in range(0, len(all_names), NAMES_PER_QUERY):
                chunk = all_names[start:start + NAMES_PER_QUERY]
                rows = sql.execute(f"SELECT id, name FROM package WHERE fetcher_id = ? AND name IN"
                                   f" ({', '.join('?' * len(chunk))})", fetcher_id, *chunk)
                real.update(((fetcher_id, name), package_id) for package_id, name in rows)
        ids = {}
        for key in new:
            provisional, package_id = self._packages[key], real[key]
            self._packages[key], ids[provisional] = package_id, package_id
            self._known.setdefault(package_id, set()).update(self._known.pop(provisional))
            self._newest[package_id] = self._newest.pop(provisional)
        return ids, inserted < len(new)

    def _wanted(self, package_id: int, number: str, scheme: str) -> bool:
        if self.policy.analyze == "every":
            return True
        newest = self._newest[package_id]
        if newest is None:
            return True
        try:
            return versions.compare(scheme, number, newest) > 0
        except ValueError as exc:   # a version stored before versions were checked: not a version
            log.warning("cannot compare %s with the stored version %.60r (%s); taking %s as newer",
                        number, newest, exc, number)
            return True

    def _package_id(self, fetcher: str, name: str, scheme: str, now: Union[datetime.datetime, str]) -> int:
        """The package's id; the first event of a fetcher loads all it knows into the cache."""
        if fetcher not in self._fetchers:
            self._load_fetcher(fetcher, scheme)
        key = (self._fetchers[fetcher], name)
        package_id = self._packages.get(key)
        if package_id is None:
            package_id = self._packages[key] = -1 - len(self._new_packages)
            self._new_packages[key] = now
            self._known[package_id], self._newest[package_id] = set(), None
        return package_id

    def _load_fetcher(self, fetcher: str, scheme: str) -> None:
        fetcher_id = self._fetchers[fetcher] = Fetcher.get_or_create(name=fetcher)[0].id
        package_ids = []
        for package_id, name in sql.execute("SELECT id, name FROM package WHERE fetcher_id = ?", fetcher_id):
            self._packages[(fetcher_id, name)] = package_id
            package_ids.append(package_id)
        rows = sql.execute("SELECT v.package_id, v.number, v.state FROM version v JOIN package p"
                           " ON p.id = v.package_id WHERE p.fetcher_id = ?", fetcher_id)
        self._remember(package_ids, rows, scheme)

    def _reload(self, package_ids: Iterable[int]) -> None:
        """Read the versions of ``package_ids`` back into the cache: another writer added some."""
        wanted = set(package_ids)
        by_fetcher = defaultdict(list)
        for (fetcher_id, _name), package_id in self._packages.items():
            if package_id in wanted:
                by_fetcher[fetcher_id].append(package_id)
        for fetcher, fetcher_id in self._fetchers.items():
            ids = by_fetcher[fetcher_id]
            for start in range(0, len(ids), NAMES_PER_QUERY):
                chunk = ids[start:start + NAMES_PER_QUERY]
                rows = sql.execute(f"SELECT package_id, number, state FROM version WHERE package_id IN"
                                   f" ({', '.join('?' * len(chunk))})", *chunk)
                self._remember(chunk, rows, versions.scheme_of(fetcher))

    def _remember(self, package_ids: Iterable[int], rows: Iterable[tuple], scheme: str) -> None:
        """Set the cache of ``package_ids`` from their version rows: (package id, number, state)."""
        tried = defaultdict(list)
        for package_id in package_ids:
            self._known[package_id], self._newest[package_id] = set(), None
        for package_id, number, state in rows:
            self._known[package_id].add(number)
            if state != VersionState.SEEN:
                tried[package_id].append(number)
        for package_id, numbers in tried.items():
            # A version stored before versions were checked may not compare: it is left out.
            valid = [number for number in numbers if versions.is_valid(scheme, number, self.version_chars)]
            self._newest[package_id] = versions.newest(scheme, valid) if valid else None
