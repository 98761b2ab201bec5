"""Directory fetcher: releases are tarballs dropped into a watched folder.

A file named ``NAME-VERSION.tar.gz`` (or ``.tar.bz2``, ``.tar.xz``, ``.tgz``,
``.zip``) is one release of NAME, normalized (``kiskadee.sources.names``):
``MarkupSafe-2.1.5.tar.gz`` and ``markupsafe-3.0.0.tar.gz`` are one package.  ``poll`` announces each file once per
(size, mtime): a file replaced by new content is announced again.  Files still
being written are left for a later pass: names ending ``.part`` or ``.tmp``,
and files modified less than ``settle_seconds`` ago.

What the last delivered pass saw is kept in a JSON state file, written
atomically by ``commit`` once the monitor acknowledged every event of the
pass (``kiskadee.sources.state``); an interrupted or undelivered pass
announces again.
"""

import logging
import os
import re
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

from kiskadee.core.events import DownloadedSource, SourceEvent
from kiskadee.errors import SourceError
from kiskadee.sources.fetcher import Fetcher, sha256_file
from kiskadee.sources.names import package_name
from kiskadee.sources.state import PassMemory

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip")
PARTIAL_SUFFIXES = (".part", ".tmp")
_NAME_VERSION = re.compile(r"^(?P<name>.+)-(?P<version>[0-9][^/]*)$")


def parse_name(filename: str) -> Tuple[str, str]:
    """Split an archive file name into (name, version).

    The split is at the last ``-`` followed by a digit, once the archive suffix
    is removed: ``hello-2.10.tar.gz`` -> ("hello", "2.10"),
    ``foo-bar-1.2.3rc1.tgz`` -> ("foo-bar", "1.2.3rc1"); the name is normalized
    (``package_name``): ``MarkupSafe-2.1.5.tar.gz`` -> ("markupsafe", "2.1.5").
    Raises ValueError, naming the file, when there is no such split or the
    suffix is not one of ``ARCHIVE_SUFFIXES``.
    """
    base = os.path.basename(filename)
    suffix = next((s for s in ARCHIVE_SUFFIXES if base.lower().endswith(s)), None)
    if suffix is None:
        raise ValueError(
            "%r is not an archive kiskadee reads: name it NAME-VERSION with one of %s"
            % (base, ", ".join(ARCHIVE_SUFFIXES))
        )
    match = _NAME_VERSION.match(base[: -len(suffix)])
    if match is None:
        raise ValueError(
            "cannot tell name and version in %r: expected NAME-VERSION%s, "
            "the version starting with a digit" % (base, suffix)
        )
    return package_name(match.group("name")), match.group("version")


def _file_path(url: str) -> Path:
    """Local path of a ``file://`` URL (SourceError for any other scheme)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "file":
        raise SourceError("directory fetcher can only copy file:// URLs, not %s" % url)
    return Path(urllib.request.url2pathname(parsed.path))


class DirectoryFetcher(Fetcher):
    """Announce the tarballs that appear in ``directory``.

    ``state_path`` is the JSON file remembering the files already delivered;
    ``settle_seconds`` is how long a file must stay unmodified before it is
    taken as complete.
    """

    name = "directory"

    def __init__(self, directory: Path, state_path: Path, settle_seconds: float = 2.0):
        self.directory = Path(directory)
        self.settle_seconds = settle_seconds
        self.memory = PassMemory(state_path)

    def poll(self) -> Iterator[SourceEvent]:
        """Yield one event per new or changed archive; once exhausted, ``commit`` may save the state."""
        seen = self.memory.read().get("files")
        seen = seen if isinstance(seen, dict) else {}
        current: Dict[str, Dict[str, int]] = {}
        for path, stamp in self._settled_files():
            current[path.name] = stamp
            if seen.get(path.name) == stamp:
                continue
            event = self._event(path, stamp)
            if event is not None:
                yield event
        self.memory.stage({"directory": str(self.directory), "files": current})

    def commit(self) -> None:
        """Remember the files of the last complete pass (see ``Fetcher.commit``)."""
        self.memory.commit()

    def _settled_files(self) -> Iterator[Tuple[Path, Dict[str, int]]]:
        """The archives of the folder that are complete, with their size and mtime."""
        try:
            entries = sorted(os.scandir(self.directory), key=lambda entry: entry.name)
        except OSError as exc:
            raise SourceError("cannot list watched folder %s: %s" % (self.directory, exc)) from exc
        horizon = time.time() - self.settle_seconds
        for entry in entries:
            if entry.name.endswith(PARTIAL_SUFFIXES) or not entry.is_file():
                continue
            if not entry.name.lower().endswith(ARCHIVE_SUFFIXES):
                log.debug("%s is not an archive: ignored", entry.path)
                continue
            stat = entry.stat()
            if stat.st_mtime > horizon:
                log.debug("%s was modified less than %ss ago: left for a later pass",
                          entry.path, self.settle_seconds)
                continue
            yield Path(entry.path), {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    def _event(self, path: Path, stamp: Dict[str, int]) -> Optional[SourceEvent]:
        """The event announcing ``path``, or None (logged) if its name does not parse."""
        try:
            package, version = parse_name(path.name)
        except ValueError as exc:
            log.warning("skipping %s: %s", path, exc)
            return None
        absolute = path.resolve()
        return SourceEvent(
            fetcher=self.name,
            package=package,
            version=version,
            source_url=absolute.as_uri(),
            sha256=sha256_file(absolute),
            meta={"filename": path.name, "size": stamp["size"]},
        )

    def download(self, event: SourceEvent, dest: Path) -> DownloadedSource:
        """Copy the announced file into ``dest`` and check it still has the announced SHA-256."""
        source = _file_path(event.source_url)
        target = Path(dest) / source.name
        try:
            shutil.copyfile(source, target)
        except OSError as exc:
            raise SourceError("cannot copy %s into %s: %s" % (source, dest, exc)) from exc
        actual = sha256_file(target)
        if event.sha256 and actual != event.sha256:
            target.unlink()
            raise SourceError(
                "%s changed since it was announced: SHA-256 expected %s, actual %s; "
                "the next poll will announce the new content" % (source.name, event.sha256, actual)
            )
        return DownloadedSource(path=target, url=event.source_url, sha256=actual)
