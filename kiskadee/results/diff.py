"""What a release changed: new, fixed and unchanged findings between two analyzed versions.

Findings are matched by fingerprint (``kiskadee.core.findings``), which leaves out
line numbers and the version-bearing top directory, so code that only moved
stays unchanged. An analyzer is compared only where it completed (``ok``,
``kiskadee.core.states.COMPLETED``) on both versions: the findings of an
analyzer that failed, timed out, skipped (none of its files) or did not run on
either side are "not analyzed", never new or fixed. An
analyzer whose tool version differs between the two runs is compared but
flagged, since its new and fixed findings may come from the tool rather than
from the code. Likewise, file by file, for the analyzers that compile the
code: a finding in a file that one side could not analyze (it did not
compile, or ran out of time; the analysis's ``failed_files``) is "not
analyzed" rather than new or fixed.

A second pass (``kiskadee.core.moves``) takes the findings left new and
fixed and pairs those that moved to another file (a renamed file, code moved
between files), which fingerprints, holding the path, cannot match: such a
pair is unchanged, listed as moved with its old and new location, and the
old finding's waiver shows on the new one.

SQLite compares the fingerprints, from an index (``kiskadee.store.findings``);
the details of the findings to show are read afterwards by id, so unchanged
findings cost little. ``kiskadee.results.render.diff_text`` writes the result
for people.
"""

import dataclasses
import logging
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple

from kiskadee.core import moves
from kiskadee.core.states import COMPLETED
from kiskadee.errors import NotFoundError, UsageError
from kiskadee.store import findings as stored
from kiskadee.store import lineage, queries, waivers
from kiskadee.store.models import Version

log = logging.getLogger(__name__)



@dataclasses.dataclass(frozen=True)
class Run:
    """One analyzer's run on one side of the comparison."""

    analysis_id: int
    status: str
    tool_version: str
    error: str
    unanalyzed: FrozenSet[str] = frozenset()    # the files it could not analyze


    @property
    def completed(self) -> bool:
        return self.status in COMPLETED


@dataclasses.dataclass(frozen=True)
class Comparison:
    """How one analyzer ran on the old and on the new version (None: it did not run)."""

    analyzer: str
    old: Optional[Run]
    new: Optional[Run]

    @property
    def compared(self) -> bool:
        return bool(self.old and self.new and self.old.completed and self.new.completed)

    @property
    def version_changed(self) -> bool:
        return bool(self.old and self.new and self.old.tool_version != self.new.tool_version)

    def note(self, old_number: str, new_number: str) -> str:
        """Why this analyzer's results need care, '' when they need none."""
        notes = [f"{_state(run)} on {number}" for run, number in ((self.old, old_number), (self.new, new_number))
                 if run is None or not run.completed]
        if notes:
            return "not compared: " + ", ".join(notes)
        if self.version_changed:
            notes.append(f"tool version changed ({self.old.tool_version} -> {self.new.tool_version}):"
                         " new and fixed findings may come from the tool")
        unanalyzed = [f"{len(run.unanalyzed)} on {number}" for run, number in
                      ((self.old, old_number), (self.new, new_number)) if run.unanalyzed]
        if unanalyzed:
            notes.append(f"files not analyzed: {', '.join(unanalyzed)}; findings in them are neither new nor fixed")
        return "; ".join(notes)


def _state(run: Optional[Run]) -> str:
    return "did not run" if run is None else run.status


@dataclasses.dataclass
class VersionDiff:
    """Finding ids by category: new ones of NEW, fixed ones of OLD, and the findings of
    either side whose analyzer did not complete on the other; unchanged ones are
    counted, and their ids (of NEW) read on demand by ``unchanged_ids``. ``moved``
    pairs (OLD's id, NEW's id) are unchanged findings that moved to another file."""

    old: Version
    new: Version
    comparisons: List[Comparison] = dataclasses.field(default_factory=list)
    new_ids: List[int] = dataclasses.field(default_factory=list)
    fixed_ids: List[int] = dataclasses.field(default_factory=list)
    unchanged: int = 0
    not_analyzed_ids: List[int] = dataclasses.field(default_factory=list)
    moved: List[Tuple[int, int]] = dataclasses.field(default_factory=list)

    def counts(self) -> Dict[str, int]:
        return {"new": len(self.new_ids), "fixed": len(self.fixed_ids), "unchanged": self.unchanged,
                "moved": len(self.moved), "not_analyzed": len(self.not_analyzed_ids)}

    def unchanged_ids(self) -> List[int]:
        """The ids of NEW's findings that OLD had too, moved ones included."""
        return [finding_id for c in self.comparisons if c.compared
                for finding_id in _matching(c.new, c.old, present=True)] + [new for _, new in self.moved]


def resolve(package: str, numbers: Sequence[str], fetcher: Optional[str] = None) -> Tuple[Version, Version]:
    """OLD and NEW from ``[OLD] NEW`` (of ``fetcher``'s package when given); OLD defaults to the analyzed
    version before NEW."""
    if not 1 <= len(numbers) <= 2:
        raise UsageError("give NEW, or OLD and NEW")
    new = queries.find_version(package, numbers[-1], fetcher)
    if len(numbers) == 2:
        old = queries.other_version(new, numbers[0])
        if old is None:
            raise NotFoundError(f"no version {numbers[0]} of {package} in the database")
    else:
        old = lineage.previous_analyzed(new)
        if old is None:
            raise NotFoundError(f"no analyzed version of {package} before {new.number} to compare with")
    return old, new


def compare(old: Version, new: Version) -> VersionDiff:
    """Classify the findings of ``old`` and ``new`` by fingerprint, analyzer by analyzer."""
    old_runs, new_runs = _runs(old), _runs(new)
    for version, runs in ((old, old_runs), (new, new_runs)):
        if not runs:
            raise NotFoundError(f"{version.package.name} {version.number} has not been analyzed")
    diff = VersionDiff(old, new)
    for name in sorted(old_runs.keys() | new_runs.keys()):
        comparison = Comparison(name, old_runs.get(name), new_runs.get(name))
        diff.comparisons.append(comparison)
        _classify(diff, comparison)
    return diff


def _classify(diff: VersionDiff, comparison: Comparison) -> None:
    if not comparison.compared:
        diff.not_analyzed_ids += _ids(comparison.old) + _ids(comparison.new)
        return
    new_ids, new_unseen = _partition(_matching(comparison.new, comparison.old, present=False),
                                     comparison.old.unanalyzed)
    fixed_ids, fixed_unseen = _partition(_matching(comparison.old, comparison.new, present=False),
                                         comparison.new.unanalyzed)
    moved = moved_pairs(fixed_ids, new_ids)
    gone = {finding_id for pair in moved for finding_id in pair}
    new_ids = [i for i in new_ids if i not in gone]
    diff.new_ids += new_ids
    diff.fixed_ids += [i for i in fixed_ids if i not in gone]
    diff.moved += moved
    diff.not_analyzed_ids += new_unseen + fixed_unseen
    diff.unchanged += stored.count(comparison.new.analysis_id) - len(new_ids) - len(new_unseen)


def moved_pairs(old_ids: List[int], new_ids: List[int]) -> List[Tuple[int, int]]:
    """(old id, new id) of the findings among these, unmatched by fingerprint, that moved to another file."""
    if not old_ids or not new_ids:
        return []
    found = {f["id"]: moves.located(f) for f in stored.details(old_ids + new_ids)}
    pairs = moves.pair([found[i] for i in old_ids], [found[i] for i in new_ids])
    return [(old.id, new.id) for old, new in pairs]


def _runs(version: Version) -> Dict[str, Run]:
    return {name: Run(*rest, unanalyzed=_files(failed)) for name, *rest, failed in stored.analyses(version.id)}


def _files(failed_files: str) -> FrozenSet[str]:
    """The paths of an analysis's 'path: reason' lines."""
    return frozenset(line.split(": ", 1)[0] for line in failed_files.splitlines())


def _partition(ids: List[int], unanalyzed: FrozenSet[str]) -> Tuple[List[int], List[int]]:
    """``ids`` split into the findings outside the ``unanalyzed`` files and those in them."""
    if not unanalyzed or not ids:
        return ids, []
    inside = {finding_id for finding_id, path in stored.paths(ids).items() if path in unanalyzed}
    return [i for i in ids if i not in inside], [i for i in ids if i in inside]


def _ids(run: Optional[Run]) -> List[int]:
    return [] if run is None else stored.of_analysis(run.analysis_id)


def _matching(run: Run, other: Run, present: bool) -> List[int]:
    """Ids of ``run``'s findings whose fingerprint ``other`` has (``present``) or lacks."""
    return stored.matching(run.analysis_id, other.analysis_id, present)


def findings(ids: Iterable[int], waived: Dict[str, Dict]) -> List[Dict]:
    """The findings with these ids, best ranked first, each with its waiver or None."""
    found = stored.details(ids)
    for finding in found:
        finding["waiver"] = waived.get(finding["fingerprint"])
    return sorted(found, key=lambda f: (-f["rank"], f["path"], f["line"], f["id"]))


def as_data(diff: VersionDiff, unchanged: bool = False) -> Dict:
    """The diff as plain data: analyzers, counts and the findings of each category."""
    old, new = diff.old.number, diff.new.number
    waived = waivers.for_package(diff.new.package_id)
    moved = _moved_findings(diff.moved, waived)
    data = {
        "package": diff.new.package.name,
        "fetcher": diff.new.package.fetcher.name,
        "old": old,
        "new": new,
        "analyzers": [_comparison_data(c, old, new) for c in diff.comparisons],
        "counts": diff.counts(),
        "new_findings": findings(diff.new_ids, waived),
        "fixed_findings": findings(diff.fixed_ids, waived),
        "not_analyzed_findings": findings(diff.not_analyzed_ids, waived),
        "moved_findings": moved,
    }
    if unchanged:
        data["unchanged_findings"] = findings(diff.unchanged_ids(), waived)
    return data


def _moved_findings(pairs: List[Tuple[int, int]], waived: Dict[str, Dict]) -> List[Dict]:
    """NEW's moved findings, each with ``moved_from`` (OLD's path, line and fingerprint).

    A moved finding has a new fingerprint; until it has a waiver of its own, the
    old finding's shows on it, here and (added to ``waived``) in every list of
    this diff.
    """
    if not pairs:
        return []
    by_id = {f["id"]: f for f in stored.details([i for pair in pairs for i in pair])}
    moved = []
    for old_id, new_id in pairs:
        before, after = by_id[old_id], by_id[new_id]
        if after["fingerprint"] not in waived and before["fingerprint"] in waived:
            waived[after["fingerprint"]] = waived[before["fingerprint"]]
        after["moved_from"] = {key: before[key] for key in ("path", "line", "fingerprint", "version")}
        after["waiver"] = waived.get(after["fingerprint"])
        moved.append(after)
    return sorted(moved, key=lambda f: (-f["rank"], f["path"], f["line"], f["id"]))


def _comparison_data(comparison: Comparison, old: str, new: str) -> Dict:
    def side(run: Optional[Run]) -> Optional[Dict]:
        return None if run is None else {"status": run.status, "tool_version": run.tool_version,
                                         "error": run.error}

    return {"analyzer": comparison.analyzer, "old": side(comparison.old), "new": side(comparison.new),
            "compared": comparison.compared, "version_changed": comparison.version_changed,
            "note": comparison.note(old, new)}
