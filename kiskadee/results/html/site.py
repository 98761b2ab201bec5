"""Where the report's pages go, and writing them: atomically, and only what changed.

The directory holds::

    index.html, report.css, report.js        the packages, and what every page links to
    FETCHER/PACKAGE/index.html               a package's versions
    FETCHER/PACKAGE/VERSION/index.html       a version's analyses and findings
    FETCHER/PACKAGE/VERSION/diff.html        what it changed since the analyzed version before it
    FETCHER/PACKAGE/VERSION/summary.json     what the index shows of it, so the index needs no diff
    .kiskadee-report.json                    the last pass of 'kiskadee report --changed'

Names come from packages and are hostile: each becomes a ``slug`` that is a
plain file name (no '/', never '.' or '..', bounded in length). Links are
relative, so the directory can be served by any web server or opened from
disk. Every file is written aside and renamed into place, so a reader never
sees half a page.
"""

import contextlib
import datetime
import fcntl
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Set, Tuple

from kiskadee.core import reportpaths
from kiskadee.core.findings import SEVERITIES
from kiskadee.core.reportpaths import slug
from kiskadee.errors import KiskadeeError
from kiskadee.results import diff
from kiskadee.results.export.collect import collect
from kiskadee.results.html import findings, markup, pages, source
from kiskadee.store import findings as stored
from kiskadee.store import lineage, queries
from kiskadee.store.models import Package, Version

log = logging.getLogger(__name__)

STATE_FILE = ".kiskadee-report.json"
LOCK_FILE = ".kiskadee-report.lock"
# Versions finished this long before the newest one seen are looked at again by the next pass:
# a store that began before that one may commit after the pass read it.
OVERLAP = datetime.timedelta(minutes=10)
ASSETS = {"report.css": markup.STYLE, "report.js": findings.SCRIPT}     # at the top, every page links them


def write_atomic(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` through a temporary file in the same directory renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)     # as a plain open() would: readable by the web server
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _iso(moment: Optional[datetime.datetime]) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


class Site:
    """A report directory, written page by page; ``now`` stamps the pages (tests pass it in)."""

    def __init__(self, out: Path, now: datetime.datetime):
        self.out, self.generated = Path(out), _iso(now) + " UTC"
        self.packages: Set[int] = set()     # packages whose page is due

    @staticmethod
    def package_dir(fetcher: str, package: str) -> str:
        return reportpaths.package_dir(fetcher, package)

    def version_dir(self, version: Version) -> str:
        package = version.package
        return f"{self.package_dir(package.fetcher.name, package.name)}/{slug(version.number)}"

    def write_assets(self) -> None:
        for name, content in ASSETS.items():
            write_atomic(self.out / name, content)

    def write_version(self, version: Version) -> None:
        """The version's page, its diff page when it has a previous analyzed version, and its summary."""
        where = self.out / self.version_dir(version)
        previous = lineage.previous_analyzed(version)
        export = collect(version) if stored.analyses(version.id) else None
        found = export.findings if export else []
        context, note = source.context(export, found) if found else ({}, "")
        links = {"root": "../../../", "package": "../index.html"}
        if previous is not None and export is not None:
            links.update(previous=f"../{slug(previous.number)}/index.html", diff="diff.html")
            self._write_diff(previous, version, where, context)
        facts = {"package": version.package.name, "fetcher": version.package.fetcher.name,
                 "version": version.number, "state": version.state, "error": version.error,
                 "finished_at": _iso(version.finished_at), "source_url": version.source_url, "sha256": version.sha256}
        write_atomic(where / "index.html",
                     pages.version_page(facts, export, context, note, links, self.generated))
        write_atomic(where / "summary.json", json.dumps(_summary_of(facts, export, previous), sort_keys=True))
        self.packages.add(version.package_id)

    def _write_diff(self, previous: Version, version: Version, where: Path, context: Dict) -> None:
        data = diff.as_data(diff.compare(previous, version))
        listed = [f for key, _ in pages.DIFF_SECTIONS for f in data[key]]
        context = {**source.stored(listed[:source.MOST_FINDINGS]), **context}   # the fixed ones' lines too
        links = {"root": "../../../", "package": "../index.html", "new": "index.html",
                 "old": f"../{slug(previous.number)}/index.html"}
        write_atomic(where / "diff.html", pages.diff_page(data, context, links, self.generated))

    def write_package(self, package: Package) -> None:
        """A package's page: its finished versions, the latest first."""
        rows = []
        for version in (Version.select().where((Version.package == package) & Version.finished_at.is_null(False))
                        .order_by(Version.finished_at.desc(), Version.id.desc())):
            summary = self._summary(version)
            href = f"{slug(version.number)}/index.html" if summary else None
            diff_href = f"{slug(version.number)}/diff.html" if summary and summary.get("previous") else None
            rows.append({"version": version.number, "state": version.state, "finished_at": _iso(version.finished_at),
                         "findings": sum((summary or {}).get("by_severity", {}).values()), "href": href,
                         "new": (summary or {}).get("new"), "previous": (summary or {}).get("previous"),
                         "diff_href": diff_href})
        write_atomic(self.out / self.package_dir(package.fetcher.name, package.name) / "index.html",
                     pages.package_page(package.name, package.fetcher.name, rows, "../../", self.generated))

    def write_index(self) -> None:
        """The index of every package, from the summaries its latest versions' pages left (no query per page)."""
        rows = []
        for entry in queries.package_summaries():
            row = {"package": entry["package"], "fetcher": entry["fetcher"], "latest": entry["latest"]}
            package_dir = self.package_dir(entry["fetcher"], entry["package"])
            if (self.out / package_dir / "index.html").exists():
                row["package_href"] = f"{package_dir}/index.html"
            where = f"{package_dir}/{slug(entry['latest'])}"
            summary = self._read_summary(where) if entry["latest"] else None
            if summary:
                row.update(href=f"{where}/index.html", analyzers=summary["analyzers"],
                           by_severity=summary["by_severity"], new=summary["new"],
                           diff_href=f"{where}/diff.html" if summary["previous"] else None)
            rows.append(row)
        write_atomic(self.out / "index.html", pages.index_page(rows, self.generated))

    def _summary(self, version: Version) -> Optional[Dict]:
        return self._read_summary(self.version_dir(version))

    def _read_summary(self, where: str) -> Optional[Dict]:
        try:
            return json.loads((self.out / where / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def finish(self) -> None:
        """The pages of the packages whose versions were written, the index and the assets."""
        for package in Package.select().where(Package.id.in_(sorted(self.packages))):
            self.write_package(package)
        self.write_index()
        self.write_assets()


def _summary_of(facts: Dict, export, previous: Optional[Version]) -> Dict:
    """What the index and the package page show of a version."""
    found = export.findings if export else []
    return {**{key: facts[key] for key in ("package", "fetcher", "version", "state", "finished_at")},
            "analyzers": [(a["analyzer"], a["status"]) for a in export.analyses] if export else [],
            "by_severity": {s: sum(1 for f in found if f["severity"] == s) for s in SEVERITIES},
            "previous": previous.number if previous and export else None,
            "new": sum(1 for f in found if f.get("baseline_state") == "new") if previous and export else None}


# passes ------------------------------------------------------------------------------

class ReportIncomplete(KiskadeeError):
    """Some versions' pages could not be written; the others were, and the next pass tries these again."""


def write(out: Path, versions: Iterable[Version], now: datetime.datetime) -> int:
    """Write the pages of ``versions``, their packages' pages and the index; how many versions."""
    with _locked(out):
        written, failed = _write(Site(out, now), versions)
    _raise_for(failed)
    return written


def write_all(out: Path, now: datetime.datetime) -> int:
    """Every finished version, and the state a later ``write_changed`` starts from."""
    with _locked(out):
        rows = _finished_since(None)
        written, failed = _write(Site(out, now), (Version.get_by_id(i) for i, _ in rows))
        _save_state(out, rows, _load_state(out), failed)
    _raise_for(failed)
    return written


def write_changed(out: Path, now: datetime.datetime) -> int:
    """The versions finished since the last pass (all of them on the first), the versions after them
    (their diff changed) and those the last pass failed on; how many were written. Nothing is written
    when nothing changed."""
    with _locked(out):
        state = _load_state(out)
        rows = _finished_since(state["watermark"])
        done = {tuple(pair) for pair in state["recent"]}
        changed = [i for i, finished in rows if (i, finished) not in done]
        if not changed and not state["failed"] and (out / "index.html").exists():
            return 0
        later = [v.id for v in Version.select(Version.id).where(Version.previous.in_(changed))]
        ids = sorted(set(changed) | set(later) | set(state["failed"]))
        written, failed = _write(Site(out, now), Version.select().where(Version.id.in_(ids)).order_by(Version.id))
        _save_state(out, rows, state, failed)
    _raise_for(failed)
    return written


def _write(site: Site, versions: Iterable[Version]) -> Tuple[int, List[Version]]:
    """Each version's pages, then the packages' and the index; a version that fails is logged and skipped:
    one bad version must not keep the report of the others from being written."""
    written, failed = 0, []
    for version in versions:
        try:
            site.write_version(version)
            written += 1
        except Exception:
            log.exception("%s %s: its pages were not written", version.package.name, version.number)
            failed.append(version)
    site.finish()
    return written, failed


def _raise_for(failed: List[Version]) -> None:
    if failed:
        names = ", ".join(f"{v.package.name} {v.number}" for v in failed[:10])
        more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
        raise ReportIncomplete(f"the pages of {names}{more} were not written (errors logged above); "
                               "the next pass tries them again")


def _finished_since(watermark: Optional[str]) -> List[Tuple[int, str]]:
    """(id, finish time) of the versions finished since ``watermark`` less OVERLAP; every finished one for None."""
    query = Version.select(Version.id, Version.finished_at).where(Version.finished_at.is_null(False))
    if watermark:
        query = query.where(Version.finished_at >= datetime.datetime.fromisoformat(watermark) - OVERLAP)
    return [(i, finished.isoformat()) for i, finished in query.order_by(Version.id).tuples()]


def _load_state(out: Path) -> Dict:
    try:
        state = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
        return {"watermark": str(state["watermark"]), "recent": list(state["recent"]),
                "failed": [int(i) for i in state.get("failed", [])]}
    except (OSError, ValueError, KeyError, TypeError):
        return {"watermark": "", "recent": [], "failed": []}


def _save_state(out: Path, rows: List[Tuple[int, str]], state: Dict, failed: List[Version]) -> None:
    """The newest finish time seen, the versions within OVERLAP of it, and those to try again."""
    watermark = max([finished for _, finished in rows] + ([state["watermark"]] if state["watermark"] else []),
                    default="")
    if not watermark:
        return
    floor = (datetime.datetime.fromisoformat(watermark) - OVERLAP).isoformat()
    recent = sorted({(i, finished) for i, finished in rows if finished >= floor})
    write_atomic(out / STATE_FILE, json.dumps({"watermark": watermark, "recent": recent,
                                               "failed": sorted(v.id for v in failed)}))


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One pass at a time in a directory (the timer's and one by hand)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
