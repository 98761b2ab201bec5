"""From a downloaded source to a tree on disk: work directories, safe unpacking, names from file names."""

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator, Tuple
from urllib.parse import unquote, urlparse

from kiskadee.config import AnalysisConfig
from kiskadee.sources.unpack import UnpackLimits, unpack

_ARCHIVE_SUFFIX = re.compile(r"(\.tar(\.(gz|bz2|xz|zst))?|\.tgz|\.tbz2?|\.txz|\.zip)$", re.I)
_NAME_VERSION = re.compile(r"^(?P<name>.+?)[-_](?P<version>\d[^-_]*(?:[-_][^-_]*)*)$")


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
def work_directory(settings: AnalysisConfig) -> Iterator[Path]:
    """A fresh work directory for one source, inside ``analysis.work_dir`` (made if missing), removed afterwards."""
    work_root = settings.work_dir or None
    if work_root:
        Path(work_root).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kiskadee-", dir=work_root) as work:
        yield Path(work)


def unpack_source(archive: Path, work: Path, settings: AnalysisConfig) -> Path:
    """Unpack ``archive`` into ``work``/source within the configured limits; the source root."""
    dest = work / "source"
    dest.mkdir()
    limits = UnpackLimits(max_bytes=settings.max_unpacked_bytes, max_files=settings.max_files,
                          max_depth=settings.max_depth)
    return unpack(archive, dest, limits)
