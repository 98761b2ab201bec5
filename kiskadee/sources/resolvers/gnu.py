"""GNU project: the release tarball, found in the project's folder listing.

Anitya's GNU backend reads ``{gnu_url}/{name}/``, named after the project
(the homepage's ``/software/NAME/`` is the fallback). The tarball is
``NAME-VERSION.tar.{xz,gz,bz2}`` in that folder or in a ``VERSION/`` or
``NAME-VERSION/`` subfolder (as GCC does). GNU signs releases with GPG
(``.sig``) but publishes no checksum list: the SHA-256 of what was downloaded
is stored as it is; signatures are not checked.
"""

import html
import logging
import re
import urllib.parse
from pathlib import Path
from typing import List, Optional, Set

from kiskadee.core.events import DownloadedSource, SourceEvent
from kiskadee.errors import SourceNotFound, UnresolvedSource
from kiskadee.sources.resolvers import Http, meta_text, safe_file_name, url_path_parts

log = logging.getLogger(__name__)

SUFFIXES = (".tar.xz", ".tar.gz", ".tar.bz2")       # smallest download first
_HREF = re.compile(r'href\s*=\s*"([^"]+)"', re.I)


def listed_names(page: str) -> Set[str]:
    """Names a folder listing links to (folders keep their trailing slash)."""
    names = set()
    for href in _HREF.findall(page):
        href = html.unescape(href)
        if "?" in href or href.startswith(("/", "#")) or "://" in href:
            continue        # sort links, parent folder, other sites
        names.add(urllib.parse.unquote(href))
    return names


def project_folder(event: SourceEvent) -> str:
    """The project's folder name under the GNU tree."""
    if event.package.strip():
        return event.package.strip()
    parts = url_path_parts(meta_text(event, "homepage"))
    if len(parts) >= 2 and parts[0] == "software":
        return parts[1]
    raise UnresolvedSource("GNU: the event names no project")


class GnuResolver:
    """``NAME-VERSION.tar.*`` from the GNU folder listing."""

    backends = ("GNU project",)

    def __init__(self, http: Http, base_url: str):
        self.http, self.base_url = http, base_url.rstrip("/")

    def fetch(self, event: SourceEvent, dest: Path) -> DownloadedSource:
        name = project_folder(event)
        folder = f"{self.base_url}/{urllib.parse.quote(name)}/"
        url = self.find(folder, name, event.version)
        if url is None:
            raise UnresolvedSource(f"GNU: {folder} lists no {name}-{event.version}"
                                   f"{{{','.join(SUFFIXES)}}}")
        target = dest / safe_file_name(url.rsplit("/", 1)[-1])
        return DownloadedSource(target, url, self.http.download(url, target))

    def find(self, folder: str, name: str, version: str) -> Optional[str]:
        """The tarball's URL, from the folder or its version subfolder; None if neither lists it."""
        listed = self._listing(folder, name)
        found = _tarball(listed, name, version)
        if found:
            return folder + urllib.parse.quote(found)
        for sub in (f"{version}/", f"{name}-{version}/"):
            if sub in listed:
                found = _tarball(self._listing(folder + urllib.parse.quote(sub), name), name, version)
                if found:
                    return folder + urllib.parse.quote(sub) + urllib.parse.quote(found)
        return None

    def _listing(self, url: str, name: str) -> Set[str]:
        try:
            return listed_names(self.http.text(url))
        except SourceNotFound:
            raise UnresolvedSource(f"GNU: there is no folder {url} for {name}") from None


def _tarball(listed: Set[str], name: str, version: str) -> Optional[str]:
    candidates: List[str] = [f"{name}-{version}{suffix}" for suffix in SUFFIXES]
    return next((candidate for candidate in candidates if candidate in listed), None)
