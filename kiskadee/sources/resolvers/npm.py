"""npm: a package version's tarball, checked against the integrity hash the registry publishes.

The registry is ``fetchers.anitya.npm_url`` when set, else what npm's own
configuration says (``npm config get registry``, which honours
``$npm_config_registry`` and the npmrc files). The package document gives
``versions[VERSION].dist``: ``tarball``, ``integrity`` (Subresource Integrity,
``sha512-BASE64``) and, for old packages only, ``shasum`` (SHA-1 hex).
"""

import functools
import logging
import subprocess
import urllib.parse
from pathlib import Path

from kiskadee.core.events import DownloadedSource, SourceEvent
from kiskadee.errors import SourceError, SourceNotFound, UnresolvedSource
from kiskadee.sources.resolvers import Http, safe_file_name, verify_hex, verify_integrity

log = logging.getLogger(__name__)

NPM_CONFIG_TIMEOUT = 60.0


@functools.lru_cache(maxsize=1)
def npm_registry() -> str:
    """The registry npm is configured to use; UnresolvedSource if npm cannot say."""
    try:
        answer = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True,
                                timeout=NPM_CONFIG_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UnresolvedSource(f"npm: cannot ask npm for its registry ({exc}); "
                               "set fetchers.anitya.npm_url") from None
    registry = answer.stdout.strip()
    if answer.returncode != 0 or not registry.startswith(("http://", "https://")):
        raise UnresolvedSource(f"npm: 'npm config get registry' said {registry or answer.stderr.strip()!r}; "
                               "set fetchers.anitya.npm_url")
    return registry


class NpmResolver:
    """The tarball of an npm package version, verified by its integrity hash."""

    backends = ("npmjs",)

    def __init__(self, http: Http, registry: str = ""):
        self.http, self.registry = http, registry

    def fetch(self, event: SourceEvent, dest: Path) -> DownloadedSource:
        registry = (self.registry or npm_registry()).rstrip("/")
        dist = self._dist(registry, event.package, event.version)
        tarball, integrity, shasum = dist.get("tarball"), dist.get("integrity"), dist.get("shasum")
        if not isinstance(tarball, str) or not tarball:
            raise UnresolvedSource(f"npm: {event.package} {event.version} names no tarball")
        target = dest / safe_file_name(f"{event.package.replace('/', '-')}-{event.version}.tgz")
        digest = self.http.download(tarball, target)
        if isinstance(integrity, str) and integrity.strip():
            verify_integrity(target, integrity, tarball)
        elif isinstance(shasum, str) and shasum.strip():
            verify_hex(target, "sha1", shasum.strip(), tarball)
        else:
            log.warning("npm publishes no checksum for %s %s: stored unverified", event.package, event.version)
        return DownloadedSource(target, tarball, digest)

    def _dist(self, registry: str, package: str, version: str) -> dict:
        """``versions[version].dist`` of the package document."""
        url = f"{registry}/{urllib.parse.quote(package, safe='@')}"
        try:
            document = self.http.json(url)
        except SourceNotFound:
            raise UnresolvedSource(f"npm: the registry has no package {package!r} ({url})") from None
        release = (document.get("versions") or {}).get(version) if isinstance(document, dict) else None
        if not isinstance(release, dict):
            tags = document.get("dist-tags") if isinstance(document, dict) else None
            latest = tags.get("latest", "?") if isinstance(tags, dict) else "?"
            raise UnresolvedSource(f"npm: {package} has no version {version} (latest is {latest})")
        dist = release.get("dist")
        if not isinstance(dist, dict):
            raise SourceError(f"npm: {url} gives no dist for {version}")
        return dist
