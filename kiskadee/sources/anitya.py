"""The ``anitya`` fetcher: versions Anitya announced, resolved to their sources; gap filling.

Announcements reach kiskadee from the message buses (the fedmsg bridge and
the fedora-messaging consumer) as ``SourceEvent(fetcher="anitya", ...)``
whose ``meta`` carries the Anitya project: ``project_id``, ``backend``,
``homepage``, ``version_url``, ``ecosystem``, ``distributions`` and the bus
``topic``. ``download`` hands the event to the resolver of its backend
(``kiskadee.sources.resolvers``); a project Anitya maps to Debian falls back to the
Debian fetcher. A version no resolver can place raises ``UnresolvedSource``
with every reason, and is recorded as 'unresolved'.

Both buses deliver at most once, so ``poll`` (``kiskadee fetch anitya``)
asks Anitya's HTTP API v2 for the versions of the projects kiskadee watches
(``fetchers.anitya.projects`` and the projects already in the database, which
the caller reads and passes in as ``known``: getting sources does not read the
database) and announces those it missed: for a project it knows, every version newer than
the oldest one it has, newest first, which the monitor deduplicates; for a
project it has never seen, the latest version only.
"""

import dataclasses
import json
import logging
import urllib.parse
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from kiskadee.config import AnityaFetcherConfig
from kiskadee.core import versions
from kiskadee.core.events import DownloadedSource, SourceEvent
from kiskadee.errors import ConfigError, SourceError, SourceNotFound, TransientSourceError, UnresolvedSource
from kiskadee.sources.debian import DebianFetcher
from kiskadee.sources.fetcher import Fetcher
from kiskadee.sources.resolvers import Http, mapped_packages
from kiskadee.sources.resolvers.crates import CratesResolver
from kiskadee.sources.resolvers.debian import DebianResolver, package_names
from kiskadee.sources.resolvers.github import GithubResolver
from kiskadee.sources.resolvers.gitlab import GitlabResolver
from kiskadee.sources.resolvers.gnu import GnuResolver
from kiskadee.sources.resolvers.npm import NpmResolver
from kiskadee.sources.resolvers.pypi import PypiResolver

log = logging.getLogger(__name__)

SCHEME = versions.scheme_of("anitya")


@dataclasses.dataclass
class KnownProject:
    """What the database holds of an Anitya project: its id, latest metadata and versions."""

    project_id: Optional[int] = None
    meta: Dict[str, object] = dataclasses.field(default_factory=dict)
    numbers: List[str] = dataclasses.field(default_factory=list)


class AnityaFetcher(Fetcher):
    """Resolve Anitya's versions to sources (runner side) and fill the buses' gaps (``poll``)."""

    name = "anitya"

    def __init__(self, config: AnityaFetcherConfig, http: Http,
                 make_debian: Optional[Callable[[], DebianFetcher]] = None,
                 known: Optional[Dict[str, KnownProject]] = None):
        self.config, self.http = config, http
        self.known = known or {}            # what the database holds, for gap filling
        self.resolvers = {}
        for resolver in (PypiResolver(http, config.pypi_url), GithubResolver(http, config.github_url),
                         GitlabResolver(http, config.gitlab_url), GnuResolver(http, config.gnu_url),
                         CratesResolver(http, config.crates_index), NpmResolver(http, config.npm_url)):
            for backend in resolver.backends:
                self.resolvers[backend] = resolver
        self.debian = DebianResolver(make_debian) if make_debian and config.debian else None

    @classmethod
    def from_settings(cls, settings, known: Optional[Dict[str, KnownProject]] = None) -> "AnityaFetcher":
        """The fetcher configured by ``settings`` (a kiskadee.config.Config); ``known``: see ``poll``."""
        analysis = settings.analysis
        return cls(settings.fetchers.anitya, Http(analysis.download_timeout, analysis.max_download_bytes, analysis.download_deadline),
                   make_debian=lambda: DebianFetcher.from_settings(settings), known=known)

    # resolving ---------------------------------------------------------------

    def download(self, event: SourceEvent, dest: Path) -> DownloadedSource:
        """Download the source of ``event`` by its backend, else through Debian if mapped there."""
        backend = str(event.meta.get("backend") or "")
        resolver = self.resolvers.get(backend)
        reasons = []
        if resolver is not None:
            try:
                return resolver.fetch(event, Path(dest))
            except UnresolvedSource as exc:
                reasons.append(str(exc))
        elif backend != "Debian project":
            reasons.append(f"kiskadee has no resolver for Anitya backend {backend!r} (it knows "
                           f"{', '.join(sorted(self.resolvers))}, and Debian-mapped projects)")
        if self.debian is not None and package_names(event):
            try:
                return self.debian.fetch(event, Path(dest))
            except (UnresolvedSource, ConfigError) as exc:     # ConfigError: no Debian mirror known
                reasons.append(f"Debian: {exc}" if isinstance(exc, ConfigError) else str(exc))
        elif backend == "Debian project" or mapped_packages(event, "Debian"):
            reasons.append("Debian: the Debian fallback is off (fetchers.anitya.debian)")
        raise UnresolvedSource(f"{event.package} {event.version}: " + "; ".join(reasons))

    # gap filling ---------------------------------------------------------------

    def poll(self) -> Iterator[SourceEvent]:
        """Yield the versions of watched projects that kiskadee has not recorded (see the module doc)."""
        if not self.config.api_url:
            raise ConfigError("gap filling needs Anitya's address: set fetchers.anitya.api_url")
        names = list(dict.fromkeys(list(self.config.projects) + sorted(self.known)))
        log.info("asking %s about %d projects", self.config.api_url, len(names))
        for name in names:
            try:
                yield from self._project_events(name, self.known.get(name))
            except TransientSourceError:
                raise
            except SourceError as exc:
                log.warning("gap filling skips %s: %s", name, exc)

    def _project_events(self, name: str, known: Optional[KnownProject]) -> Iterator[SourceEvent]:
        """The missed versions of one project, newest first."""
        if known is not None and known.project_id is not None:
            listing = self._api(f"versions/?project_id={known.project_id}")
            meta = dict(known.meta, topic="")
        else:
            record = self.project_record(name)
            listing, meta = record, project_meta(record, known)
        for version in missed_versions(listing, known.numbers if known else []):
            yield SourceEvent(fetcher=self.name, package=name, version=version, meta=meta)

    def project_record(self, name: str) -> dict:
        """Anitya's record of the project called ``name``; SourceError if there is none."""
        found = self._api(f"projects/?name={urllib.parse.quote(name)}").get("items") or []
        exact = [item for item in found if isinstance(item, dict) and item.get("name") == name]
        matches = exact or [item for item in found if isinstance(item, dict)]
        if not matches:
            raise SourceError(f"Anitya has no project named {name!r}")
        if len(matches) > 1:
            log.warning("Anitya has %d projects named %s; using id %s", len(matches), name,
                        min(item.get("id", 0) for item in matches))
        return min(matches, key=lambda item: item.get("id", 0))

    def _api(self, query: str) -> dict:
        url = f"{self.config.api_url.rstrip('/')}/api/v2/{query}"
        try:
            answer = self.http.json(url)
        except SourceNotFound:
            raise SourceError(f"Anitya knows nothing at {url}") from None
        if not isinstance(answer, dict):
            raise SourceError(f"{url} did not answer with a JSON object")
        return answer


def project_meta(record: dict, known: Optional[KnownProject]) -> Dict[str, object]:
    """The event metadata of an Anitya project record (API v2), with known Debian mappings kept."""
    text = {key: record[key] if isinstance(record.get(key), str) else ""
            for key in ("backend", "homepage", "version_url", "ecosystem")}
    return {
        "project_id": record.get("id"), **text,
        "distributions": list((known.meta.get("distributions") if known else None) or []),
        "topic": "",
    }


def missed_versions(listing: dict, known: List[str]) -> List[str]:
    """The versions to announce from an API listing, newest first (see the module doc)."""
    offered = [v for v in (listing.get("stable_versions") or listing.get("versions") or [])
               if isinstance(v, str) and v.strip()]
    if not offered:
        return []
    if not known:
        latest = listing.get("latest_version") or listing.get("version")
        return [latest if latest in offered else versions.newest(SCHEME, offered)]
    oldest = min(known, key=versions.sort_key(SCHEME))
    missed = [v for v in offered if v not in known and versions.compare(SCHEME, v, oldest) > 0]
    return sorted(set(missed), key=versions.sort_key(SCHEME), reverse=True)


def known_projects(rows: Iterable[Tuple[str, str, str]]) -> Dict[str, KnownProject]:
    """The anitya projects of stored versions, from (package, number, event) rows oldest first.

    The latest event carrying a project id gives the project's id and metadata.
    """
    projects: Dict[str, KnownProject] = {}
    for name, number, event in rows:
        project = projects.setdefault(name, KnownProject())
        project.numbers.append(number)
        meta = _event_meta(event)
        if isinstance(meta.get("project_id"), int):
            project.project_id, project.meta = meta["project_id"], meta
    return projects


def _event_meta(event: str) -> Dict[str, object]:
    """The ``meta`` of a stored event (the version table's ``event`` column), {} if unreadable."""
    try:
        meta = json.loads(event).get("meta") if event else None
    except (ValueError, AttributeError):
        return {}
    return meta if isinstance(meta, dict) else {}
