"""The per-unit result cache: what an analyzer found in one file, kept for the next release.

Most releases change a few files. For the analyzers that work file by file
(flawfinder; clang, gcc and Frama-C in per-file mode) each unit's raw
findings are kept under a key made of everything that determines them: the
package (so one package's sources can never fill another's entries), the
analyzer, the version its tool reported, its options, the unit's path and
the content of every file it may read (the unit itself and, over-approximated,
every file of the tree an ``#include`` of it or of those could name). A new
release reuses each unit whose key is unchanged; only the others are analyzed.
The raw findings are kept, before fingerprints and function names: the normal
path computes those from the new tree, so a reused unit cannot change them.

The cache is one SQLite file of its own (``analysis.cache.path``, beside the
database by default), in WAL mode; every write is one ``BEGIN IMMEDIATE``
transaction, so the runners of one host share it safely. Its size is bounded
(``analysis.cache.max_mb``): past the bound the least recently used entries go.
A cache that cannot be opened or read never fails an analysis: it is logged
and the analysis runs in full.
"""

import hashlib
import json
import logging
import os
import posixpath
import re
import sqlite3
import time
import zlib
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

log = logging.getLogger(__name__)

SCHEMA = 1
BUSY_TIMEOUT = 30.0         # seconds a writer waits for another runner's transaction
EVICT_TO = 0.9              # of the bound, left after an eviction, so that not every write evicts
INCLUDE = re.compile(rb'^[ \t]*#[ \t]*(?:include|include_next|import)[ \t]*([<"])([^>"\n]+)[>"]', re.M)
COMPUTED_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*(?:include|include_next|import)\b[ \t]*[A-Za-z_]', re.M)
HAS_INCLUDE = re.compile(rb'__has_include(?:_next)?[ \t]*\([ \t]*[<"]([^>"\n]+)[>"]')
SKIP_DIRECTORIES = {".git", ".hg", ".svn", ".bzr", "CVS"}


class CacheError(Exception):
    """The cache file cannot be used; the analysis goes on without it."""


def unit_key(*parts: object) -> str:
    """The key of one unit's findings: a digest of ``parts`` (JSON-serializable)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class UnitCache:
    """The cache file: raw findings of units by key, least recently used evicted past ``max_bytes``."""

    def __init__(self, path: str, max_bytes: int):
        self.path, self.max_bytes = path, max_bytes
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._write():
                self._db.execute("CREATE TABLE IF NOT EXISTS unit (key TEXT PRIMARY KEY, analyzer TEXT NOT NULL, "
                                 "payload BLOB NOT NULL, bytes INTEGER NOT NULL, used REAL NOT NULL)")
                self._db.execute("CREATE INDEX IF NOT EXISTS unit_used ON unit (used)")
                self._db.execute(f"PRAGMA user_version={SCHEMA}")
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot open the analysis cache {path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def _write(self) -> "_Immediate":
        return _Immediate(self._db)

    def get_many(self, keys: Iterable[str], now: Optional[float] = None) -> Dict[str, object]:
        """The entries of ``keys`` that are cached, by key; each one found is marked used at ``now``."""
        wanted = sorted(set(keys))
        found: Dict[str, object] = {}
        try:
            with self._write():
                for start in range(0, len(wanted), 500):
                    chunk = wanted[start:start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(f"SELECT key, payload FROM unit WHERE key IN ({marks})", chunk)
                    found.update((key, json.loads(zlib.decompress(payload))) for key, payload in rows)
                    self._db.execute(f"UPDATE unit SET used=? WHERE key IN ({marks})",
                                     [now or time.time(), *chunk])
        except (sqlite3.Error, zlib.error, ValueError) as exc:
            raise CacheError(f"cannot read the analysis cache {self.path}: {exc}") from None
        return found

    def put_many(self, analyzer: str, entries: Mapping[str, object], now: Optional[float] = None) -> None:
        """Keep ``entries`` (key: JSON-serializable payload), then evict down to the bound if over it."""
        rows = [(key, analyzer, zlib.compress(json.dumps(payload).encode()), now or time.time())
                for key, payload in entries.items()]
        try:
            with self._write():
                self._db.executemany("INSERT OR REPLACE INTO unit (key, analyzer, payload, bytes, used) "
                                     "VALUES (?, ?, ?, length(?), ?)",
                                     [(key, name, blob, blob, used) for key, name, blob, used in rows])
                self._evict()
        except sqlite3.Error as exc:
            raise CacheError(f"cannot write the analysis cache {self.path}: {exc}") from None

    def _evict(self) -> None:
        total = self._db.execute("SELECT coalesce(sum(bytes), 0) FROM unit").fetchone()[0]
        if total <= self.max_bytes:
            return
        excess = total - int(self.max_bytes * EVICT_TO)
        oldest = self._db.execute("SELECT key, bytes FROM unit ORDER BY used, key")
        doomed = []
        for key, size in oldest:
            if excess <= 0:
                break
            doomed.append((key,))
            excess -= size
        self._db.executemany("DELETE FROM unit WHERE key=?", doomed)
        log.info("analysis cache over %d bytes: %d least recently used entries removed", self.max_bytes, len(doomed))

    def size(self) -> "tuple[int, int]":
        """Entries and payload bytes held."""
        return self._db.execute("SELECT count(*), coalesce(sum(bytes), 0) FROM unit").fetchone()

    def clear(self) -> None:
        with self._write():
            self._db.execute("DELETE FROM unit")


class _Immediate:
    """One BEGIN IMMEDIATE transaction: the write lock taken at once, so two runners never deadlock."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def open_cache(settings) -> Optional[UnitCache]:
    """The cache ``settings`` (an ``analysis.cache`` section) name, None when it is off or unusable."""
    if not settings.enabled or not settings.path:
        return None
    try:
        return UnitCache(settings.path, settings.max_mb * 1024 * 1024)
    except CacheError as exc:
        log.warning("%s; analyzing without it", exc)
        return None


class TreeFiles:
    """The files of a source tree by content digest, and what an ``#include`` of them could name."""

    def __init__(self, root: Path):
        self.root = root
        self._digests: Dict[str, str] = {}
        self._by_name: Dict[str, List[str]] = {}
        self._closures: Dict[str, object] = {}
        self._included: Dict[str, Optional[List[str]]] = {}
        for directory, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRECTORIES)
            for name in files:
                relative = os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/")
                self._by_name.setdefault(name, []).append(relative)

    def digest(self, relative: str) -> str:
        """The SHA-256 of a file of the tree ('' when it cannot be read)."""
        if relative not in self._digests:
            try:
                self._digests[relative] = hashlib.sha256((self.root / relative).read_bytes()).hexdigest()
            except OSError:
                self._digests[relative] = ""
        return self._digests[relative]

    def candidates(self, name: str) -> List[str]:
        """Every file of the tree an include of ``name`` could open, whatever the search path."""
        clean = posixpath.normpath(name.strip())
        while clean.startswith("../"):
            clean = clean[3:]
        base = posixpath.basename(clean)
        return sorted(path for path in self._by_name.get(base, ())
                      if path == clean or path.endswith("/" + clean))

    def closure(self, relative: str) -> Sequence[object]:
        """The unit and every file it may read through includes, each with its digest.

        An over-approximation, so that no file the tool reads is missed: every
        file whose path ends with an included name counts, whatever the include
        paths and conditionals. A computed include (``#include MACRO``) could
        name any file: the whole tree counts.
        """
        seen, queue = {relative}, [relative]
        while queue:
            current = queue.pop()
            names = self._includes(current)
            if names is None:
                return self.whole_tree()
            for name in names:
                for found in self.candidates(name):
                    if found not in seen:
                        seen.add(found)
                        queue.append(found)
        return [(path, self.digest(path)) for path in sorted(seen)]

    def whole_tree(self) -> Sequence[object]:
        if "*" not in self._closures:
            every = sorted(path for paths in self._by_name.values() for path in paths)
            self._closures["*"] = [(path, self.digest(path)) for path in every]
        return self._closures["*"]

    def _includes(self, relative: str) -> Optional[List[str]]:
        """The names a file includes (or tests with __has_include); None for a computed include."""
        if relative not in self._included:
            self._included[relative] = self._read_includes(relative)
        return self._included[relative]

    def _read_includes(self, relative: str) -> Optional[List[str]]:
        try:
            text = (self.root / relative).read_bytes()
        except OSError:
            return []
        if COMPUTED_INCLUDE.search(text):
            return None
        names = [match.group(2) for match in INCLUDE.finditer(text)] + HAS_INCLUDE.findall(text)
        return [name.decode(errors="replace") for name in names]
