"""Turning what a person names (a tarball, a zip, a directory or a URL) into a source tree."""

import contextlib
import dataclasses
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator, Tuple
from urllib.parse import unquote, urlparse

from kiskadee.config import AnalysisConfig
from kiskadee.errors import SourceError
from kiskadee.sources.download import download
from kiskadee.sources.fetcher import sha256_file
from kiskadee.sources.unpack import UnpackLimits, unpack

_ARCHIVE_SUFFIX = re.compile(r"(\.tar(\.(gz|bz2|xz|zst))?|\.tgz|\.tbz2?|\.txz|\.zip)$", re.I)
_NAME_VERSION = re.compile(r"^(?P<name>.+?)[-_](?P<version>\d[^-_]*(?:[-_][^-_]*)*)$")


@dataclasses.dataclass(frozen=True)
class PreparedSource:
    root: Path          # the tree analyzers run over
    url: str            # where it came from
    sha256: str         # of the archive, '' for a directory


def is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def guess_name_version(source: str) -> Tuple[str, str]:
    """Package name and version from a file, directory or URL name like ``hello-2.10.tar.gz``."""
    base = os.path.basename(unquote(urlparse(source).path).rstrip("/")) if is_url(source) \
        else Path(source).resolve().name
    stem = _ARCHIVE_SUFFIX.sub("", base)
    stem = stem[: -len(".orig")] if stem.endswith(".orig") else stem   # Debian's NAME_VERSION.orig
    match = _NAME_VERSION.match(stem)
    if match:
        return match.group("name"), match.group("version")
    return stem, "unknown"


@contextlib.contextmanager
def prepared(source: str, settings: AnalysisConfig) -> Iterator[PreparedSource]:
    """The source as a tree on disk, inside a work directory removed afterwards."""
    work_root = settings.work_dir or None
    if work_root:
        Path(work_root).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kiskadee-", dir=work_root) as work:
        yield _prepare(source, Path(work), settings)


def _prepare(source: str, work: Path, settings: AnalysisConfig) -> PreparedSource:
    if is_url(source):
        archive = work / "download"
        digest = download(source, archive, max_bytes=settings.max_download_bytes,
                          timeout=settings.download_timeout)
        return PreparedSource(unpack_source(archive, work, settings), source, digest)
    path = Path(source)
    if path.is_dir():
        return PreparedSource(path.resolve(), path.resolve().as_uri(), "")
    if not path.is_file():
        raise SourceError(f"{source}: no such file, directory or http(s) URL")
    return PreparedSource(unpack_source(path, work, settings), path.resolve().as_uri(), sha256_file(path))


def unpack_source(archive: Path, work: Path, settings: AnalysisConfig) -> Path:
    """Unpack ``archive`` into ``work``/source within the configured limits; the source root."""
    dest = work / "source"
    dest.mkdir()
    limits = UnpackLimits(max_bytes=settings.max_unpacked_bytes, max_files=settings.max_files)
    return unpack(archive, dest, limits)
