"""Debian fetcher: new source package versions of a Debian suite.

Each pass downloads ``dists/<suite>/<component>/source/Sources.xz`` from the
configured mirror, keeps the newest version of each source package, filters
them (allow/deny lists, the C/C++ heuristic of ``looks_like_c``) and announces
the packages whose version differs from the last delivered pass (``commit``
saves a pass once the monitor acknowledged its events).  ``download``
fetches the ``.dsc`` and every file it lists, each checked against its SHA-256.
"""

import dataclasses
import functools
import io
import logging
import lzma
import re
import urllib.parse
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from debian import deb822

from kiskadee.core import versions
from kiskadee.core.events import DownloadedSource, SourceEvent
from kiskadee.errors import ConfigError, SourceError
from kiskadee.sources.debian_c import looks_like_c
from kiskadee.sources.download import DEFAULT_DEADLINE
from kiskadee.sources.download import download as download_url
from kiskadee.sources.download import open_url
from kiskadee.sources.fetcher import Fetcher
from kiskadee.sources.state import PassMemory

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1 << 30
_FIELDS = frozenset((
    "Package", "Version", "Architecture", "Format", "Directory", "Checksums-Sha256",
    "Build-Depends", "Build-Depends-Arch", "Build-Depends-Indep", "Extra-Source-Only",
))
_RELATION_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9+.\-]*)")
_MAIN_ORIG = re.compile(r"^[^_]+_[^_]+\.orig\.tar\.[A-Za-z0-9]+$")
_TARBALL = re.compile(r"\.tar(\.[A-Za-z0-9]+)?$")


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One file of a source package, as its ``Checksums-Sha256`` lists it."""

    name: str
    size: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class SourcePackage:
    """The fields of a ``Sources`` paragraph that kiskadee uses, as the index spells them.

    Relation and checksum fields stay raw text, parsed on first use: a pass
    reads 34,000 paragraphs and needs the details of few of them.
    """

    name: str
    version: str
    architecture: str = ""          # "any", "all", "any all", "amd64 i386"...
    build_depends: str = ""         # Build-Depends, then Build-Depends-Arch
    build_depends_indep: str = ""
    directory: str = ""             # pool folder, relative to the mirror
    checksums_sha256: str = ""      # "SHA256 SIZE NAME" lines
    format: str = ""

    @functools.cached_property
    def build_dependency_names(self) -> FrozenSet[str]:
        """Package names in Build-Depends and Build-Depends-Arch."""
        return relation_names(self.build_depends)

    @functools.cached_property
    def files(self) -> Tuple[SourceFile, ...]:
        """The files of ``Checksums-Sha256``."""
        return _checksums(self.checksums_sha256)

    @property
    def dsc(self) -> Optional[SourceFile]:
        """The ``.dsc`` among ``files``, if listed."""
        return next((f for f in self.files if f.name.endswith(".dsc")), None)


# --- parsing the Sources index -------------------------------------------------

def relation_names(field: str) -> FrozenSet[str]:
    """Package names in a relation field, without versions, arch lists, profiles or ``:native``."""
    names = set()
    for clause in field.replace("|", ",").split(","):
        match = _RELATION_NAME.match(clause)
        if match:
            names.add(match.group(1).lower())
    return frozenset(names)


def _paragraphs(lines: Iterable[Union[str, bytes]]) -> Iterator[Dict[str, str]]:
    """Yield the wanted fields of each deb822 paragraph (fast: no full deb822 parse)."""
    fields: Dict[str, str] = {}
    key: Optional[str] = None
    for line in lines:
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, None
        elif line[0] in " \t":
            if key is not None:
                fields[key] += "\n" + line.strip()
        else:
            name, _, value = line.partition(":")
            key = name if name in _FIELDS else None
            if key is not None:
                fields[key] = value.strip()
    if fields:
        yield fields


def _checksums(text: str) -> Tuple[SourceFile, ...]:
    """SourceFile entries of a ``Checksums-Sha256`` field value."""
    files = []
    for row in text.split("\n"):
        parts = row.split()
        if len(parts) == 3 and parts[1].isdigit():
            files.append(SourceFile(name=parts[2], size=int(parts[1]), sha256=parts[0].lower()))
    return tuple(files)


def _to_package(fields: Dict[str, str]) -> Optional[SourcePackage]:
    """A SourcePackage from a paragraph, or None for one to ignore."""
    if "Package" not in fields or "Version" not in fields:
        return None
    if fields.get("Extra-Source-Only", "").lower() == "yes":
        return None     # kept only for Built-Using; not part of the suite proper
    return SourcePackage(
        name=fields["Package"],
        version=fields["Version"],
        architecture=fields.get("Architecture", ""),
        build_depends=", ".join(filter(None, (fields.get("Build-Depends"),
                                              fields.get("Build-Depends-Arch")))),
        build_depends_indep=fields.get("Build-Depends-Indep", ""),
        directory=fields.get("Directory", ""),
        checksums_sha256=fields.get("Checksums-Sha256", ""),
        format=fields.get("Format", ""),
    )


def parse_sources(lines_or_stream: Union[str, bytes, Iterable[Union[str, bytes]]]) -> Dict[str, SourcePackage]:
    """Parse a ``Sources`` index into {source package name: its newest SourcePackage}.

    Takes the whole text, or any iterable of lines (an open text or binary
    file).  ``Extra-Source-Only: yes`` paragraphs are ignored; when a package
    appears several times the highest Debian version wins.
    """
    if isinstance(lines_or_stream, (str, bytes)):
        lines_or_stream = lines_or_stream.splitlines()
    packages: Dict[str, SourcePackage] = {}
    for fields in _paragraphs(lines_or_stream):
        package = _to_package(fields)
        if package is None:
            continue
        known = packages.get(package.name)
        if known is None or versions.compare("debian", package.version, known.version) > 0:
            packages[package.name] = package
    return packages


def apt_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The first Debian mirror in apt's own configuration (deb822 or one-line style)."""
    for path in sorted((sources_dir / "sources.list.d").glob("*.sources")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("URIs:") and line.split()[1:]:
                return line.split()[1]
    one_line = sources_dir / "sources.list"
    if one_line.exists():
        for line in one_line.read_text(errors="replace").splitlines():
            words = line.split()
            if words[:1] == ["deb"] and len(words) > 2:
                return next(w for w in words[1:] if not w.startswith("["))
    raise ConfigError("no Debian mirror configured: set fetchers.debian.mirror "
                      "(apt's sources list none)")


# --- HTTP ------------------------------------------------------------------------

def _join_url(base: str, file_name: str) -> str:
    """``base/file_name``, the name quoted as apt does (``+`` and ``~`` kept)."""
    return "%s/%s" % (base, urllib.parse.quote(file_name, safe="+~"))


# --- .dsc contents ------------------------------------------------------------------

def _safe_file_name(name: str, dsc_url: str) -> str:
    """``name`` if it is a plain file name; SourceError for anything that could leave ``dest``."""
    if not name or "/" in name or "\\" in name or "\0" in name or name.startswith("."):
        raise SourceError("%s lists the unsafe file name %r: refused" % (dsc_url, name))
    return name


def dsc_files(dsc_path: Path, dsc_url: str) -> List[SourceFile]:
    """The files a (possibly signed) ``.dsc`` lists in ``Checksums-Sha256``."""
    try:
        with open(dsc_path, encoding="utf-8", errors="replace") as stream:
            dsc = deb822.Dsc(stream)
        rows = dsc.get("Checksums-Sha256") or []
        files = [SourceFile(name=_safe_file_name(row["name"], dsc_url), size=int(row["size"]),
                            sha256=row["sha256"].lower()) for row in rows]
    except (KeyError, ValueError) as exc:
        raise SourceError("%s has a malformed Checksums-Sha256 field: %s" % (dsc_url, exc)) from exc
    if not files:
        raise SourceError("%s lists no files in Checksums-Sha256: cannot verify its sources"
                          % dsc_url)
    return files


def main_tarball(names: Sequence[str]) -> str:
    """The upstream tarball among a source package's files.

    The ``NAME_VERSION.orig.tar.*`` of a non-native package (not the
    ``.orig-COMPONENT`` tarballs, not a signature), or the single ``.tar.*`` of
    a native one.  ValueError if there is none or several.
    """
    origs = [name for name in names if _MAIN_ORIG.match(name)]
    if len(origs) == 1:
        return origs[0]
    tarballs = [name for name in names if _TARBALL.search(name) and ".debian.tar" not in name]
    if not origs and len(tarballs) == 1:
        return tarballs[0]
    raise ValueError("cannot tell the upstream tarball among %s" % ", ".join(names))


# --- the fetcher ----------------------------------------------------------------------

class DebianFetcher(Fetcher):
    """Announce new source package versions of a Debian suite and download them.

    ``mirror`` is the archive's base URL (the folder holding ``dists/`` and
    ``pool/``); ``allow``, if not empty, restricts the watch to these source
    packages; ``deny`` excludes some; ``c_only`` keeps only what
    ``looks_like_c``; ``state_path`` is the JSON file remembering the versions
    the last delivered pass saw; ``timeout`` (seconds) applies to each network
    operation and ``max_bytes`` caps each downloaded file.
    """

    name = "debian"

    def __init__(self, mirror: str, *, state_path: Path, suite: str = "bookworm",
                 components: Sequence[str] = ("main",), allow: Sequence[str] = (),
                 deny: Sequence[str] = (), c_only: bool = True, timeout: float = 60,
                 max_bytes: int = DEFAULT_MAX_BYTES, deadline: float = DEFAULT_DEADLINE):
        if not mirror or not suite or not components:
            raise ConfigError("debian fetcher needs a mirror URL, a suite and at least one "
                              "component (got %r, %r, %r)" % (mirror, suite, list(components)))
        self.mirror = mirror.rstrip("/")
        self.memory = PassMemory(state_path)
        self.suite = suite
        self.components = tuple(components)
        self.allow = frozenset(allow)
        self.deny = frozenset(deny)
        self.c_only = c_only
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.deadline = deadline

    @classmethod
    def from_settings(cls, settings) -> "DebianFetcher":
        """The fetcher configured by ``settings`` (a kiskadee.config.Config)."""
        debian, analysis = settings.fetchers.debian, settings.analysis
        return cls(debian.mirror or apt_mirror(), state_path=Path(settings.service.state_dir) / "debian.json",
                   suite=debian.suite, components=debian.components, allow=debian.allow, deny=debian.deny,
                   c_only=debian.c_only, timeout=analysis.download_timeout, max_bytes=analysis.max_download_bytes,
                   deadline=analysis.download_deadline)

    def sources_url(self, component: str) -> str:
        """URL of the ``Sources.xz`` index of ``component``."""
        return "%s/dists/%s/%s/source/Sources.xz" % (self.mirror, self.suite, component)

    def fetch_index(self, component: str) -> Dict[str, SourcePackage]:
        """Download, decompress and parse the index of one component, streaming."""
        url = self.sources_url(component)
        log.info("reading %s", url)
        try:
            with open_url(url, self.timeout, self.deadline) as response, lzma.open(response) as unpacked:
                return parse_sources(io.TextIOWrapper(unpacked, encoding="utf-8", errors="replace"))
        except (lzma.LZMAError, EOFError) as exc:
            raise SourceError("%s is not a complete xz file (%s); the mirror may be syncing"
                              % (url, exc)) from exc
        except OSError as exc:
            raise SourceError("reading %s failed: %s" % (url, exc)) from exc

    def wanted(self, package: SourcePackage) -> bool:
        """Whether the allow/deny lists and the C/C++ filter let ``package`` through."""
        if self.allow and package.name not in self.allow:
            return False
        if package.name in self.deny:
            return False
        return looks_like_c(package) if self.c_only else True

    def _selected(self) -> Dict[str, Tuple[str, SourcePackage]]:
        """{name: (component, package)} of the newest wanted version of each package."""
        selected: Dict[str, Tuple[str, SourcePackage]] = {}
        for component in self.components:
            for name, package in self.fetch_index(component).items():
                known = selected.get(name)
                if known is not None and versions.compare(
                        "debian", package.version, known[1].version) <= 0:
                    continue
                selected[name] = (component, package)
        return {name: pair for name, pair in selected.items() if self.wanted(pair[1])}

    def poll(self) -> Iterator[SourceEvent]:
        """Yield an event per package whose version changed; once exhausted, ``commit`` may save the state."""
        selected = self._selected()
        previous = self.memory.read().get("packages")
        previous = previous if isinstance(previous, dict) else {}
        changed = [name for name in sorted(selected)
                   if previous.get(name) != selected[name][1].version]
        log.info("%s/%s: %d packages watched, %d changed since the last pass",
                 self.suite, ",".join(self.components), len(selected), len(changed))
        for name in changed:
            component, package = selected[name]
            event = self._event(package, component)
            if event is not None:
                yield event
        self.memory.stage({"mirror": self.mirror, "suite": self.suite,
                           "packages": {name: pair[1].version for name, pair in selected.items()}})

    def commit(self) -> None:
        """Remember the versions of the last complete pass (see ``Fetcher.commit``)."""
        self.memory.commit()

    def _event(self, package: SourcePackage, component: str) -> Optional[SourceEvent]:
        """The event announcing ``package``, or None (logged) if the index lacks its .dsc."""
        dsc = package.dsc
        if dsc is None or not package.directory:
            log.warning("skipping %s %s: the index gives no .dsc or Directory for it",
                        package.name, package.version)
            return None
        return SourceEvent(
            fetcher=self.name, package=package.name, version=package.version,
            source_url=self._pool_url(package.directory, dsc.name), sha256=dsc.sha256,
            meta={"directory": package.directory, "suite": self.suite, "component": component,
                  "files": [dataclasses.asdict(entry) for entry in package.files]},
        )

    def _pool_url(self, directory: str, file_name: str) -> str:
        """URL of a file of the pool."""
        return _join_url("%s/%s" % (self.mirror, directory.strip("/")), file_name)

    def download(self, event: SourceEvent, dest: Path) -> DownloadedSource:
        """Download the .dsc and all its files into ``dest``, each checked against its SHA-256.

        Returns the upstream tarball (``.orig.tar.*``, or the only tarball of a
        native package).  SourceError names the URL or file that failed.
        """
        if not event.source_url or not event.sha256:
            raise SourceError("event for %s %s carries no .dsc URL and checksum: poll again"
                              % (event.package, event.version))
        dest = Path(dest)
        base_url, _, quoted_name = event.source_url.rpartition("/")
        dsc_name = _safe_file_name(urllib.parse.unquote(quoted_name), event.source_url)
        self._fetch(event.source_url, dest / dsc_name, event.sha256)
        files = dsc_files(dest / dsc_name, event.source_url)
        try:
            main = main_tarball([entry.name for entry in files])
        except ValueError as exc:
            raise SourceError("%s: %s" % (event.source_url, exc)) from exc
        for entry in files:
            self._fetch(_join_url(base_url, entry.name), dest / entry.name, entry.sha256)
        sha256 = next(entry.sha256 for entry in files if entry.name == main)
        return DownloadedSource(path=dest / main, url=_join_url(base_url, main), sha256=sha256)

    def _fetch(self, url: str, target: Path, sha256: str) -> None:
        download_url(url, target, max_bytes=self.max_bytes, timeout=self.timeout, sha256=sha256,
                     deadline=self.deadline)
