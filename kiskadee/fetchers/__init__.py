"""Fetchers: each knows one source of releases.

A fetcher can list new versions (``poll``, for polling fetchers), compare two
versions with its origin's own rules (``version_scheme``) and download the
source of one version (``download``).
"""

import dataclasses
import hashlib
from pathlib import Path
from typing import Dict, Iterator


@dataclasses.dataclass(frozen=True)
class SourceEvent:
    """A version of a package that some origin announced."""

    fetcher: str            # name of the fetcher that produced it: "debian", "directory", "anitya"...
    package: str
    version: str
    source_url: str = ""    # where the source can be had, if known already
    sha256: str = ""        # checksum the origin publishes for source_url, if any
    meta: Dict[str, object] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class DownloadedSource:
    """A source on local disk: an archive file or a directory, with what it came from."""

    path: Path
    url: str = ""
    sha256: str = ""        # sha256 of the main archive actually downloaded


class Fetcher:
    """Base class of fetchers. Subclasses set ``name`` and ``version_scheme``."""

    name = ""
    version_scheme = "pep440"   # one of kiskadee.versions.SCHEMES

    def poll(self) -> Iterator[SourceEvent]:
        """Yield the versions that appeared since the last pass (polling fetchers)."""
        return iter(())

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


def make_fetcher(name: str, settings) -> Fetcher:
    """The fetcher called ``name``, configured from ``settings`` (a kiskadee.config.Config)."""
    from kiskadee.errors import ConfigError
    from kiskadee.fetchers.debian import DebianFetcher, apt_mirror
    from kiskadee.fetchers.directory import DirectoryFetcher
    from kiskadee.fetchers.local import LocalFetcher

    state = Path(settings.service.state_dir)
    analysis = settings.analysis
    if name == "debian":
        debian = settings.fetchers.debian
        return DebianFetcher(
            debian.mirror or apt_mirror(), state_path=state / "debian.json", suite=debian.suite,
            components=debian.components, allow=debian.allow, deny=debian.deny,
            c_only=debian.c_only, timeout=analysis.download_timeout,
            max_bytes=analysis.max_download_bytes)
    if name == "directory":
        if not settings.fetchers.directory.path:
            raise ConfigError("the directory fetcher is off: set fetchers.directory.path")
        return DirectoryFetcher(Path(settings.fetchers.directory.path), state / "directory.json")
    if name == "local":
        return LocalFetcher(analysis.max_download_bytes, analysis.download_timeout)
    if name == "anitya":
        from kiskadee.fetchers.anitya import AnityaFetcher

        return AnityaFetcher.from_settings(settings)
    raise ConfigError(f"unknown fetcher {name!r}; known fetchers: anitya, debian, directory, local")
