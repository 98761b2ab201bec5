"""GitLab: the archive of a release's tag, on gitlab.com or a self-hosted instance.

Anitya's GitLab backend keeps the project's full URL (``https://HOST/GROUP/
[SUBGROUP/...]REPO``) in ``version_url``, else in the homepage. Projects on
the public instance are fetched from ``fetchers.anitya.gitlab_url`` (so that
a mirror or a test server can stand in); a bare ``group/repo`` is taken to
live there too. GitLab publishes no checksum for tag archives: the SHA-256
of what was downloaded is stored as it is.
"""

import logging
import urllib.parse
from pathlib import Path
from typing import List, Tuple

from kiskadee.core.events import DownloadedSource, SourceEvent
from kiskadee.errors import UnresolvedSource
from kiskadee.sources.resolvers import Http, meta_text, tag_spellings, url_path_parts

log = logging.getLogger(__name__)

PUBLIC_ORIGIN = "https://gitlab.com"


def project_location(event: SourceEvent, base_url: str) -> Tuple[str, List[str]]:
    """``(origin, path segments)`` of the project; the public instance maps to ``base_url``."""
    for candidate in (meta_text(event, "version_url"), meta_text(event, "homepage")):
        if not candidate:
            continue
        parts = url_path_parts(candidate)
        if "-" in parts:            # .../repo/-/tags and the like: the project ends before "-"
            parts = parts[: parts.index("-")]
        if "://" not in candidate:
            origin = base_url
        else:
            split = urllib.parse.urlsplit(candidate)
            origin = f"{split.scheme}://{split.netloc}"
            if origin.lower().replace("://www.", "://") == PUBLIC_ORIGIN:
                origin = base_url
        if len(parts) >= 2:
            return origin.rstrip("/"), parts
    raise UnresolvedSource(f"GitLab: cannot tell the project of {event.package} from its "
                           "version_url or homepage")


class GitlabResolver:
    """Tag archives of ``{origin}/{group}/{repo}/-/archive/{tag}/{repo}-{tag}.tar.gz``."""

    backends = ("GitLab",)

    def __init__(self, http: Http, base_url: str):
        self.http, self.base_url = http, base_url.rstrip("/")

    def candidates(self, event: SourceEvent) -> List[Tuple[str, str]]:
        """``(archive URL, file name)`` for each tag spelling, most likely first."""
        origin, parts = project_location(event, self.base_url)
        repo, path = parts[-1], "/".join(urllib.parse.quote(part) for part in parts)
        prefix = meta_text(event, "version_prefix")
        urls = []
        for tag in tag_spellings(repo, event.version, prefix):
            quoted = urllib.parse.quote(tag, safe="")
            urls.append((f"{origin}/{path}/-/archive/{quoted}/{urllib.parse.quote(repo)}-{quoted}.tar.gz",
                         f"{repo}-{tag}.tar.gz"))
        return urls

    def fetch(self, event: SourceEvent, dest: Path) -> DownloadedSource:
        try:
            return self.http.first_found(self.candidates(event), dest)
        except UnresolvedSource as exc:
            raise UnresolvedSource(f"GitLab: no tag for {event.package} {event.version}: {exc}") from None
