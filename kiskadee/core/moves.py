"""Findings that moved, within their file or to another: the second pass of a release diff.

Fingerprints hold the path, so a finding in a renamed or moved file
(``examples/printVersion.c`` -> ``examples/print_version.c``, ``lib.cpp`` ->
``lib.c``, a function moved into another file) matches nothing by
fingerprint. This pass takes what the first left unmatched on both sides
and pairs, first, findings of one file on the same line text that are
repeated in one version and not in the other, or whose neighbouring lines
changed (their fingerprints share the base part: ``findings.SHARED``).
Then findings in different files whose analyzer, check id, message (numbers
normalized) and function agree, in files that plausibly are one file moved or
that share moved code:

- both paths have the same name stem, compared without case, separators or
  extension (``printVersion.c`` and ``print_version.c``; ``lib.cpp`` and
  ``lib.c``), the old path with no unmatched findings in the new version and
  the new path none in the old one, as when a file is renamed, or
- at least ``BLOCK`` of the unmatched findings of the two files agree (a
  block of code moved, bringing its findings along; a key left unmatched in
  more than ``SPREAD`` files is not counted: it tells nothing, and would cost
  files times files), or
- the tool names the function, and it is the same.

The stored findings have no source line text, so a lone finding that left
one file and an alike one that appeared in an unrelated file, with no
function name, stay fixed and new: pairing them would hide a real change.

Pairs are chosen deterministically: file pairs of the same name stem first,
then those with more agreeing findings, then more alike paths, then by path; within a file pair, the alike
findings of each key pair up in line order. A pair is the same finding,
unchanged, moved from the old path to the new one.
"""

import collections
import dataclasses
import functools
import os.path
import re
from typing import Counter, Dict, Iterable, List, Mapping, Sequence, Tuple

from kiskadee.core.findings import SHARED

BLOCK = 2       # agreeing findings that make two unrelated-looking files a move
SPREAD = 64     # a key left unmatched in more files than this, on either side, tells no file pair apart
_NUMBER = re.compile(r"\d+")
_SEPARATORS = re.compile(r"[-_.\s]+")
_DIGEST = re.compile(f"[0-9a-f]{{{2 * SHARED}}}")     # as kiskadee.core.findings makes them


FIELDS = ("id", "analyzer", "path", "line", "check_id", "message", "function", "fingerprint")


@dataclasses.dataclass(frozen=True)
class Located:
    """What the second pass knows of one unmatched finding."""

    id: int
    analyzer: str
    path: str
    line: int
    check_id: str
    message: str
    function: str = ""
    fingerprint: str = ""

    @property
    def key(self) -> Tuple[str, str, str, str]:
        return (self.analyzer, self.check_id, _NUMBER.sub("N", self.message), self.function)


def located(detail: Mapping) -> Located:
    """A finding as ``kiskadee.store.findings.details`` gives it, for ``pair``."""
    return Located(*(detail[name] for name in FIELDS))


def pair(old: Sequence[Located], new: Sequence[Located]) -> List[Tuple[Located, Located]]:
    """Pairs (old, new) of the same finding moved within its file or to another, in NEW's order
    (see the module's docstring); ``old`` and ``new`` are what fingerprints left unmatched."""
    used: set = set()
    pairs = _pair_same_line(old, new, used)
    old_files, new_files = _by_file(f for f in old if f.id not in used), _by_file(f for f in new if f.id not in used)
    overlap = _overlap(old_files, new_files)
    plausible = {pair for pair, count in overlap.items() if count >= BLOCK} | _same_stems(old_files, new_files)
    candidates = sorted(((_same_stem(x, y), overlap[(x, y)], _similarity(x, y), x, y) for x, y in plausible),
                        key=lambda c: (not c[0], -c[1], -c[2], c[3], c[4]))
    for *_, x, y in candidates:
        pairs += _pair_in_order(old_files[x], new_files[y], used)
    pairs += _pair_by_function(old, new, used)
    return sorted(pairs, key=lambda p: (p[1].path, p[1].line, p[1].id))


def _pair_same_line(old: Sequence[Located], new: Sequence[Located], used: set) -> List[Tuple[Located, Located]]:
    """Findings on the same line text of the same file, the nearest lines first: their fingerprints share a half
    (``kiskadee.core.findings``: a lone finding's first half is a repeated one's second)."""
    waiting: Dict[tuple, List[Located]] = collections.defaultdict(list)
    for finding in sorted(new, key=lambda f: (f.path, f.line, f.id)):
        for half in _halves(finding):
            waiting[(finding.analyzer, finding.path, finding.check_id, half)].append(finding)
    pairs = []
    for finding in sorted(old, key=lambda f: (f.path, f.line, f.id)):
        alike = [n for half in _halves(finding)
                 for n in waiting.get((finding.analyzer, finding.path, finding.check_id, half), ())
                 if n.id not in used]
        if alike:
            partner = min(alike, key=lambda f: (abs(f.line - finding.line), f.line, f.id))    # order: last resort
            used.update((finding.id, partner.id))
            pairs.append((finding, partner))
    return pairs


def _halves(finding: Located) -> Tuple[str, ...]:
    fingerprint = finding.fingerprint
    return (fingerprint[:SHARED], fingerprint[SHARED:]) if _DIGEST.fullmatch(fingerprint) else ()


def _by_file(findings: Iterable[Located]) -> Dict[str, List[Located]]:
    files: Dict[str, List[Located]] = collections.defaultdict(list)
    for finding in sorted(findings, key=lambda f: (f.path, f.line, f.id)):
        if finding.path:
            files[finding.path].append(finding)
    return files


def _overlap(old_files: Dict[str, List[Located]], new_files: Dict[str, List[Located]]) -> Counter:
    """For each (old path, new path) with findings alike, how many could pair."""
    new_keys = {path: collections.Counter(f.key for f in found) for path, found in new_files.items()}
    files_with: Dict[tuple, List[str]] = collections.defaultdict(list)
    for path, keys in new_keys.items():
        for key in keys:
            files_with[key].append(path)
    old_spread = collections.Counter(key for found in old_files.values() for key in {f.key for f in found})
    overlap: Counter = collections.Counter()
    for x, found in old_files.items():
        for key, count in collections.Counter(f.key for f in found).items():
            if old_spread[key] > SPREAD or len(files_with.get(key, ())) > SPREAD:
                continue        # e.g. churn all over a large tree: counting it would cost files x files
            for y in files_with.get(key, ()):
                if y != x:
                    overlap[(x, y)] += min(count, new_keys[y][key])
    return overlap


def _pair_in_order(old: List[Located], new: List[Located], used: set) -> List[Tuple[Located, Located]]:
    """The unused alike findings of two files, paired key by key in line order."""
    waiting: Dict[tuple, List[Located]] = collections.defaultdict(list)
    for finding in new:
        if finding.id not in used:
            waiting[finding.key].append(finding)
    pairs = []
    for finding in old:
        if finding.id in used or not waiting.get(finding.key):
            continue
        partner = waiting[finding.key].pop(0)
        used.update((finding.id, partner.id))      # ids of the two sides are distinct rows
        pairs.append((finding, partner))
    return pairs


def _pair_by_function(old: Sequence[Located], new: Sequence[Located], used: set) -> List[Tuple[Located, Located]]:
    """What is left, where the tool names the same function: the most alike paths first."""
    named: Dict[tuple, List[Located]] = collections.defaultdict(list)
    for finding in new:
        if finding.function and finding.id not in used:
            named[finding.key].append(finding)
    candidates = sorted(((-_similarity(o.path, n.path), o.path, o.line, n.path, n.line, o, n)
                         for o in old if o.function and o.id not in used
                         for n in named.get(o.key, ()) if n.path != o.path), key=lambda c: c[:5])
    pairs = []
    for *_, o, n in candidates:
        if o.id not in used and n.id not in used:
            used.update((o.id, n.id))
            pairs.append((o, n))
    return pairs


def _same_stems(old_files: Dict[str, List[Located]], new_files: Dict[str, List[Located]]) -> set:
    """(old path, new path) of files with the same name stem, the old one without unmatched findings in NEW
    and the new one without any in OLD, as when a file is renamed (a stem shared by more than SPREAD files
    on a side, like main.c, is left out)."""
    old_by_stem: Dict[str, List[str]] = collections.defaultdict(list)
    for x in old_files:
        old_by_stem[_stem(x)].append(x)
    new_by_stem: Dict[str, List[str]] = collections.defaultdict(list)
    for y in new_files:
        new_by_stem[_stem(y)].append(y)
    return {(x, y) for stem, xs in old_by_stem.items() if stem and len(xs) <= SPREAD
            and len(new_by_stem.get(stem, ())) <= SPREAD for x in xs for y in new_by_stem.get(stem, ())
            if x not in new_files and y not in old_files}


@functools.lru_cache(maxsize=4096)
def _stem(path: str) -> str:
    name = path.rpartition("/")[2]
    return _SEPARATORS.sub("", name.split(".", 1)[0]).lower()


def _same_stem(x: str, y: str) -> bool:
    return bool(_stem(x)) and _stem(x) == _stem(y)


def _similarity(x: str, y: str) -> float:
    """How much of the two paths their common beginning and end make up: 0 to 1."""
    prefix = len(os.path.commonprefix([x, y]))
    suffix = len(os.path.commonprefix([x[prefix:][::-1], y[prefix:][::-1]]))
    return 2 * (prefix + suffix) / (len(x) + len(y))
