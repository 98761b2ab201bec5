"""The monitor's catalog of known packages and versions: what is new, and writing it down."""

import datetime
import json
from collections import defaultdict
from typing import Dict, List, Optional, Tuple, Union

from kiskadee.core import versions
from kiskadee.store import sql
from kiskadee.store.models import Fetcher
from kiskadee.store.queue import QueuePolicy

NAMES_PER_QUERY = 500          # package names looked up at once after inserting them


class Catalog:
    """Packages and versions the monitor knows, cached to decide quickly what is new.

    Recording is the monitor's hot path (a Debian pass is some 34,000 events),
    so it uses plain SQL: building a peewee query costs thirty times more than
    SQLite takes to run it. New packages and versions are written together by
    ``flush``; until then a new package goes by a provisional (negative) id.
    """

    def __init__(self, policy: QueuePolicy):
        self.policy = policy
        self._fetchers: Dict[str, int] = {}
        self._packages: Dict[Tuple[int, str], int] = {}
        self._known: Dict[int, set] = {}            # package id -> version numbers
        self._newest: Dict[int, Optional[str]] = {}  # package id -> newest analyzed or queued
        self._new_packages: Dict[Tuple[int, str], object] = {}  # (fetcher id, name) -> created_at; not written yet
        self._pending: List[tuple] = []             # version rows not yet written

    def record(self, event: dict, now: Union[datetime.datetime, str]) -> str:
        """Record a source event; returns "queued", "seen" or "known" (nothing changed).

        New versions are written by ``flush``, which the caller runs before
        committing the transaction.
        """
        scheme = versions.scheme_of(event["fetcher"])
        package_id = self._package_id(event["fetcher"], event["package"], scheme, now)
        number = event["version"]
        if number in self._known[package_id]:
            return "known"
        wanted = self._wanted(package_id, number, scheme)
        meta = json.dumps({"meta": event["meta"]}) if event.get("meta") else ""
        self._pending.append((package_id, number, "queued" if wanted else "seen", event.get("source_url", ""),
                              event.get("sha256", ""), meta, now, now if wanted else None))
        self._known[package_id].add(number)
        if wanted:
            self._newest[package_id] = number
        return "queued" if wanted else "seen"

    def flush(self) -> None:
        """Write the packages and versions recorded since the last flush."""
        if self._new_packages:
            ids = self._write_packages()
            self._pending = [(ids.get(row[0], row[0]),) + row[1:] for row in self._pending]
        if self._pending:
            sql.execute_many(
                "INSERT INTO version (package_id, number, state, source_url, sha256, event, created_at,"
                " queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._pending)
            self._pending = []

    def _write_packages(self) -> Dict[int, int]:
        """Insert the new packages; move their cache entries to the real ids. Provisional id -> real id."""
        new, self._new_packages = self._new_packages, {}
        # OR IGNORE: a package another writer ('kiskadee analyze') added meanwhile is taken as it is.
        sql.execute_many("INSERT OR IGNORE INTO package (fetcher_id, name, created_at) VALUES (?, ?, ?)",
                         [(*key, created) for key, created in new.items()])
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
        return ids

    def _wanted(self, package_id: int, number: str, scheme: str) -> bool:
        if self.policy.analyze == "every":
            return True
        newest = self._newest[package_id]
        return newest is None or versions.compare(scheme, number, newest) > 0

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
        for package_id, name in sql.execute("SELECT id, name FROM package WHERE fetcher_id = ?", fetcher_id):
            self._packages[(fetcher_id, name)] = package_id
            self._known[package_id] = set()
        tried = defaultdict(list)
        rows = sql.execute("SELECT v.package_id, v.number, v.state FROM version v JOIN package p"
                    " ON p.id = v.package_id WHERE p.fetcher_id = ?", fetcher_id)
        for package_id, number, state in rows:
            self._known[package_id].add(number)
            if state != "seen":
                tried[package_id].append(number)
        for package_id in self._known:
            self._newest.setdefault(package_id, None)
        for package_id, numbers in tried.items():
            self._newest[package_id] = versions.newest(scheme, numbers)
