"""The ``local`` fetcher: sources named by a person (``kiskadee submit``, ``kiskadee analyze``).

The event's ``source_url`` is a local path, a ``file://`` URL or an http(s)
URL of a tarball, a zip or a directory.
"""

from pathlib import Path
from urllib.parse import unquote, urlparse

from kiskadee.core.events import DownloadedSource, SourceEvent
from kiskadee.errors import SourceError
from kiskadee.sources.download import download
from kiskadee.sources.fetcher import Fetcher, sha256_file
from kiskadee.sources.prepare import is_url


def source_url(named: str) -> str:
    """What a person named on the command line as an event's ``source_url``: a URL as it is, a path made absolute."""
    return named if is_url(named) else str(Path(named).resolve())


class LocalFetcher(Fetcher):
    name = "local"

    def __init__(self, max_bytes: int, timeout: float):
        self.max_bytes, self.timeout = max_bytes, timeout

    def download(self, event: SourceEvent, dest: Path) -> DownloadedSource:
        url = event.source_url
        if not url:
            raise SourceError(f"{event.package} {event.version}: the event names no source to analyze")
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https"):
            archive = dest / (Path(unquote(parsed.path)).name or "source")
            digest = download(url, archive, max_bytes=self.max_bytes, timeout=self.timeout,
                              sha256=event.sha256)
            return DownloadedSource(archive, url, digest)
        path = Path(unquote(parsed.path) if parsed.scheme == "file" else url).resolve()
        if path.is_dir():
            return DownloadedSource(path, path.as_uri(), "")
        if not path.is_file():
            raise SourceError(f"{url}: no such file, directory or http(s) URL")
        digest = sha256_file(path)
        if event.sha256 and digest != event.sha256:
            raise SourceError(f"{path}: sha256 is {digest}, the event said {event.sha256}")
        return DownloadedSource(path, path.as_uri(), digest)
