"""GitHub: the archive of a release's tag, trying the usual tag spellings.

Anitya's GitHub backend keeps ``owner/repo`` in ``version_url`` (older
projects a full URL); the homepage is the fallback. GitHub publishes no
checksum for tag archives, so the SHA-256 of what was downloaded is stored
as it is.
"""

import logging
import urllib.parse
from pathlib import Path
from typing import List, Tuple

from kiskadee.core.events import DownloadedSource, SourceEvent
from kiskadee.errors import UnresolvedSource
from kiskadee.sources.resolvers import Http, meta_text, tag_spellings, url_path_parts

log = logging.getLogger(__name__)

GITHUB_HOST = "github.com"


def owner_repo(event: SourceEvent, base_url: str = "") -> Tuple[str, str]:
    """``(owner, repo)`` from the event's version_url, else its homepage on GitHub (or ``base_url``)."""
    version_url, homepage = meta_text(event, "version_url"), meta_text(event, "homepage")
    candidates = [version_url] if version_url else []
    hosts = {GITHUB_HOST, urllib.parse.urlsplit(base_url).netloc.lower()} - {""}
    if urllib.parse.urlsplit(homepage).netloc.lower().removeprefix("www.") in hosts:
        candidates.append(homepage)
    for candidate in candidates:
        parts = url_path_parts(candidate)
        if len(parts) >= 2:
            return parts[0], parts[1]
    raise UnresolvedSource(f"GitHub: cannot tell the repository of {event.package} from "
                           f"version_url {version_url!r} or homepage {homepage!r}")


class GithubResolver:
    """Tag archives of ``{base}/{owner}/{repo}/archive/refs/tags/{tag}.tar.gz``."""

    backends = ("GitHub",)

    def __init__(self, http: Http, base_url: str):
        self.http, self.base_url = http, base_url.rstrip("/")

    def candidates(self, event: SourceEvent) -> List[Tuple[str, str]]:
        """``(archive URL, file name)`` for each tag spelling, most likely first."""
        owner, repo = owner_repo(event, self.base_url)
        prefix = meta_text(event, "version_prefix")
        return [("%s/%s/%s/archive/refs/tags/%s.tar.gz" % (
                    self.base_url, owner, repo, urllib.parse.quote(tag, safe="")),
                 f"{repo}-{tag}.tar.gz")
                for tag in tag_spellings(repo, event.version, prefix)]

    def fetch(self, event: SourceEvent, dest: Path) -> DownloadedSource:
        try:
            return self.http.first_found(self.candidates(event), dest)
        except UnresolvedSource as exc:
            raise UnresolvedSource(f"GitHub: no tag for {event.package} {event.version}: {exc}") from None
