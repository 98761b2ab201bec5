"""The ``local`` fetcher: sources named by a person (``kiskadee analyze``, ``kiskadee submit``).

The event's ``source_url`` is a local path, a ``file://`` URL or an http(s)
URL of a tarball or a zip. ``kiskadee analyze`` reads any path its user
names, directories included (:meth:`LocalFetcher.for_command_line`). Events
from the intake socket come from anyone allowed to submit, so the runners'
fetcher (:meth:`LocalFetcher.from_settings`) reads local files only from the
spool ``kiskadee submit`` copied them into (:mod:`kiskadee.sources.spool`).
"""

from pathlib import Path
from typing import Optional, Tuple
from urllib.parse import unquote, urlparse

from kiskadee.core.events import DownloadedSource, SourceEvent
from kiskadee.errors import SourceError
from kiskadee.sources import spool
from kiskadee.sources.download import DEFAULT_DEADLINE, checked_url, download, url_file_name
from kiskadee.sources.fetcher import Fetcher, sha256_file
from kiskadee.sources.prepare import is_url


def source_url(named: str) -> str:
    """What a person named on the command line as an event's ``source_url``: a URL as it is, a path made absolute."""
    return named if is_url(named) else str(Path(named).resolve())


def submitted_source(named: str, settings) -> Tuple[str, str]:
    """The ``source_url`` and ``sha256`` ``kiskadee submit`` announces for what a person named.

    An http(s) URL goes as it is (checked); a local file or ``file://`` URL is
    copied into the spool first, as the submitting user. SourceError for a
    directory, anything but a regular file, or a file that user cannot read.
    """
    if is_url(named):
        return checked_url(named), ""
    entry, _ = spool.add(_local_path(named), Path(settings.service.spool), settings.analysis.max_download_bytes)
    return str(entry), entry.name


class LocalFetcher(Fetcher):
    """Sources named by a path or URL; with a ``spool``, local files only from that spool."""

    name = "local"

    def __init__(self, max_bytes: int, timeout: float, *, spool_dir: Optional[Path],
                 deadline: float = DEFAULT_DEADLINE):
        self.max_bytes, self.timeout, self.deadline = max_bytes, timeout, deadline
        self.spool_dir = spool_dir

    @classmethod
    def from_settings(cls, settings) -> "LocalFetcher":
        """The runners' fetcher: local files only from the spool (``service.spool_dir``)."""
        analysis = settings.analysis
        return cls(analysis.max_download_bytes, analysis.download_timeout,
                   spool_dir=Path(settings.service.spool), deadline=analysis.download_deadline)

    @classmethod
    def for_command_line(cls, settings) -> "LocalFetcher":
        """``kiskadee analyze``'s fetcher: any path its user names, directories included."""
        analysis = settings.analysis
        return cls(analysis.max_download_bytes, analysis.download_timeout, spool_dir=None,
                   deadline=analysis.download_deadline)

    def download(self, event: SourceEvent, dest: Path) -> DownloadedSource:
        url = event.source_url
        if not url:
            raise SourceError(f"{event.package} {event.version}: the event names no source to analyze")
        if is_url(url):
            archive = dest / url_file_name(url)
            digest = download(url, archive, max_bytes=self.max_bytes, timeout=self.timeout,
                              sha256=event.sha256, deadline=self.deadline)
            return DownloadedSource(archive, url, digest)
        path = _local_path(url)
        if self.spool_dir is not None:
            copy = dest / "source"
            digest = spool.copy_out(path, self.spool_dir, copy, self.max_bytes, event.sha256)
            return DownloadedSource(copy, path.as_uri(), digest)
        return _named_path(path, event.sha256)


def _local_path(url: str) -> Path:
    """The absolute path a local ``source_url`` names; SourceError for other kinds of URL."""
    parsed = urlparse(url)
    if "\x00" in url or ("://" in url and parsed.scheme != "file"):
        shown = url.encode("unicode_escape").decode("ascii")[:300]
        raise SourceError(f"{shown}: not a local path, a file:// URL or an http(s) URL")
    return Path(unquote(parsed.path) if parsed.scheme == "file" else url).resolve()


def _named_path(path: Path, sha256: str) -> DownloadedSource:
    """A directory or file a person named on the command line, as it is."""
    if path.is_dir():
        return DownloadedSource(path, path.as_uri(), "")
    if not path.is_file():
        raise SourceError(f"{path}: no such file, directory or http(s) URL")
    digest = sha256_file(path)
    if sha256 and digest != sha256:
        raise SourceError(f"{path}: sha256 is {digest}, the event said {sha256}")
    return DownloadedSource(path, path.as_uri(), digest)
