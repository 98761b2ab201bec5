"""Fetchers: each knows one source of releases.

A fetcher can list new versions (``poll``, for polling fetchers, then
``commit`` once the monitor acknowledged them) and download
the source of one version (``download``); its versions compare by its origin's
rules (``kiskadee.core.versions.scheme_of``).
"""

import hashlib
from pathlib import Path
from typing import Iterator

from kiskadee.core.events import DownloadedSource, SourceEvent


class Fetcher:
    """Base class of fetchers. Subclasses set ``name``."""

    name = ""

    def poll(self) -> Iterator[SourceEvent]:
        """Yield the versions that appeared since the last pass (polling fetchers).

        A pass only computes what it would remember; ``commit`` remembers it.
        """
        return iter(())

    def commit(self) -> None:
        """Remember the last complete pass, so the next one announces only what changed since.

        Call it only once the monitor acknowledged every event the pass
        yielded: a pass that could not deliver leaves the memory as it was,
        and the next pass announces everything again (the monitor's catalog
        makes repeats harmless). Fetchers without a memory do nothing.
        """

    def download(self, event: SourceEvent, dest: Path) -> DownloadedSource:
        """Download the source of ``event`` into the empty directory ``dest``."""
        raise NotImplementedError


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
