"""Debian: projects Anitya maps to a Debian source package, fetched through the Debian fetcher.

The package's entry in the ``Sources`` index of the configured mirror and
suite must carry the upstream version Anitya announced (``2.10`` matches
``2.10-3``, ``1:2.10-1`` and ``2.10+dfsg-2``); its ``.dsc`` and files are
then downloaded and checked by ``DebianFetcher.download`` against the
index's SHA-256 sums.
"""

import logging
import re
import urllib.parse
from pathlib import Path
from typing import Callable, Dict, List, Tuple

from kiskadee.core.events import DownloadedSource, SourceEvent
from kiskadee.errors import UnresolvedSource
from kiskadee.sources.debian import DebianFetcher, SourcePackage
from kiskadee.sources.resolvers import mapped_packages

log = logging.getLogger(__name__)

_REPACK = re.compile(r"[+~](dfsg|ds|repack|debian)[.\d]*$", re.I)


def upstream_version(debian_version: str) -> str:
    """The upstream part of a Debian version: no epoch, no revision, no repack suffix."""
    version = debian_version.split(":", 1)[1] if ":" in debian_version else debian_version
    if "-" in version:
        version = version.rsplit("-", 1)[0]
    return _REPACK.sub("", version)


def package_names(event: SourceEvent) -> List[str]:
    """The Debian source packages to look for: the mapping, or the project for the Debian backend."""
    names = mapped_packages(event, "Debian")
    if not names and event.meta.get("backend") == "Debian project":
        names = [event.package]
    return names


class DebianResolver:
    """A Debian-mapped project's version, through the Debian fetcher's mirror and checksums."""

    backends = ("Debian project",)

    def __init__(self, make_fetcher: Callable[[], DebianFetcher]):
        self.make_fetcher = make_fetcher

    def fetch(self, event: SourceEvent, dest: Path) -> DownloadedSource:
        names = package_names(event)
        if not names:
            raise UnresolvedSource(f"Debian: {event.package} is not mapped to a Debian package")
        fetcher = self.make_fetcher()
        found = self._find(fetcher, names)
        for name in names:
            if name in found and upstream_version(found[name][1].version) == event.version:
                component, package = found[name]
                return fetcher.download(self.debian_event(fetcher, package, component), dest)
        have = ", ".join(f"{name} {found[name][1].version}" for name in names if name in found)
        raise UnresolvedSource(f"Debian {fetcher.suite} has no {'/'.join(names)} of upstream version "
                               f"{event.version} ({'it has ' + have if have else 'no such source package'})")

    @staticmethod
    def _find(fetcher: DebianFetcher, names: List[str]) -> Dict[str, Tuple[str, SourcePackage]]:
        """{name: (component, package)} for the wanted names, from each component's index."""
        found: Dict[str, Tuple[str, SourcePackage]] = {}
        for component in fetcher.components:
            index = fetcher.fetch_index(component)
            for name in names:
                if name in index and name not in found:
                    found[name] = (component, index[name])
        return found

    @staticmethod
    def debian_event(fetcher: DebianFetcher, package: SourcePackage, component: str) -> SourceEvent:
        """The event the Debian fetcher would have announced for ``package``."""
        dsc = package.dsc
        if dsc is None or not package.directory:
            raise UnresolvedSource(f"Debian: the index gives no .dsc for {package.name} {package.version}")
        url = "%s/%s/%s" % (fetcher.mirror, package.directory.strip("/"),
                            urllib.parse.quote(dsc.name, safe="+~"))
        return SourceEvent(fetcher="debian", package=package.name, version=package.version,
                           source_url=url, sha256=dsc.sha256,
                           meta={"directory": package.directory, "suite": fetcher.suite, "component": component})
