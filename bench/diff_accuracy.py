"""How often ``kiskadee diff`` calls a finding new or fixed when the code did not change.

For each pair of releases (two tarballs), both are analyzed into a fresh
database by the real ``kiskadee analyze`` and compared by ``kiskadee diff
--format json``; then each finding called new (or fixed) is judged against
the two source trees, not against kiskadee:

  a new finding is false when the text of its line (whitespace removed)
  occurs at least as often anywhere in the old tree, in any file, as in the
  new tree: the code was there before, perhaps in another file;
  a fixed finding is false likewise with the trees swapped.

Findings that the diff pairs as moved (unchanged, in another file or on
other lines around them) are checked the other way: a pair whose two line
texts differ hid a real change, and is counted as "moved, changed".

Counting occurrences rather than asking "is it there at all" keeps a real
new copy of an existing line (a second ``memcpy(_out, &iv, sizeof(iv));``)
from being judged false. A finding without a path or line is not judged.

By default the two pairs of tests/fixtures/releases are measured; give
others as OLD.tar.gz NEW.tar.gz pairs (e.g. Python sdists with C code).
``--kiskadee DIR`` runs the kiskadee package found in DIR instead of this
tree's, to measure an older copy (before and after a change).

Run:  .venv/bin/python bench/diff_accuracy.py [--analyzers flawfinder] [OLD NEW ...]
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Counter, Dict, List, Sequence

ROOT = Path(__file__).resolve().parent.parent
RELEASES = ROOT / "tests" / "fixtures" / "releases"
DEFAULT_PAIRS = [(RELEASES / "lz4_1.9.4.orig.tar.gz", RELEASES / "lz4_1.10.0.orig.tar.gz"),
                 (RELEASES / "cjson_1.7.14.orig.tar.gz", RELEASES / "cjson_1.7.15.orig.tar.gz")]
_SPACE = re.compile(r"\s+")
_VERSION = re.compile(r"[-_](\d[^-_/]*?)(\.orig)?\.(tar\.gz|tar\.bz2|tar\.xz|tgz|zip)$")


def kiskadee(package_dir: Path, *args, config: Path = None) -> str:
    env = dict(os.environ, PYTHONPATH=str(package_dir))
    env.pop("KISKADEE_CONFIG", None)
    if config is not None:
        env["KISKADEE_CONFIG"] = str(config)
    result = subprocess.run([sys.executable, "-m", "kiskadee", *map(str, args)], capture_output=True,
                            text=True, env=env, cwd=package_dir)
    if result.returncode != 0:
        raise SystemExit(f"kiskadee {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result.stdout


def version_of(tarball: Path) -> str:
    match = _VERSION.search(tarball.name)
    if match is None:
        raise SystemExit(f"cannot tell the version of {tarball.name}")
    return match.group(1)


def unpacked(tarball: Path, dest: Path) -> Path:
    from kiskadee.sources.unpack import unpack

    dest.mkdir(parents=True)
    return unpack(tarball, dest)


def tree_lines(tree: Path) -> Counter[str]:
    """How often each whitespace-free line occurs in the tree's files."""
    counts: Counter[str] = collections.Counter()
    for path in tree.rglob("*"):
        if path.is_file() and path.stat().st_size < 4_000_000:
            counts.update(_SPACE.sub("", line) for line in path.read_text(errors="replace").splitlines())
    return counts


def line_text(tree: Path, path: str, line: int) -> str:
    try:
        lines = (tree / path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return _SPACE.sub("", lines[line - 1]) if 0 < line <= len(lines) else ""


def false_ones(findings: List[Dict], here: Path, there: Counter[str], here_counts: Counter[str]) -> List[Dict]:
    """The findings whose line text the other tree has at least as often as this one."""
    wrong = []
    for f in findings:
        text = line_text(here, f["path"], f["line"]) if f["path"] and f["line"] > 0 else ""
        if text and there[text] >= here_counts[text]:
            wrong.append(f)
    return wrong


def measure(package_dir: Path, old: Path, new: Path, analyzers: str, work: Path, config: Path) -> Dict:
    db = work / "kiskadee.db"
    for tarball in (old, new):
        kiskadee(package_dir, "analyze", tarball, "--db", db, "--name", "bench", "--version", version_of(tarball),
                 "--analyzers", analyzers, "--top", "0", config=config)
    data = json.loads(kiskadee(package_dir, "diff", "bench", version_of(old), version_of(new), "--db", db,
                               "--format", "json"))
    old_tree, new_tree = unpacked(old, work / "old"), unpacked(new, work / "new")
    old_lines, new_lines = tree_lines(old_tree), tree_lines(new_tree)
    false_new = false_ones(data["new_findings"], new_tree, old_lines, new_lines)
    false_fixed = false_ones(data["fixed_findings"], old_tree, new_lines, old_lines)
    changed = [f for f in data.get("moved_findings", [])
               if line_text(old_tree, f["moved_from"]["path"], f["moved_from"]["line"])
               != line_text(new_tree, f["path"], f["line"])]
    return {"pair": f"{old.name} -> {new.name}", "moved": data["counts"].get("moved", 0),
            "moved_changed": len(changed), "new": data["counts"]["new"], "fixed": data["counts"]["fixed"],
            "unchanged": data["counts"]["unchanged"], "false_new": len(false_new),
            "false_fixed": len(false_fixed),
            "examples": [f"false: {f['version']} {f['path']}:{f['line']} {f['check_id']}"
                         for f in (false_new + false_fixed)[:5]]
            + [f"moved, changed: {f['moved_from']['path']}:{f['moved_from']['line']} -> {f['path']}:{f['line']}"
               for f in changed[:3]]}


def pairs_of(paths: Sequence[str]):
    if len(paths) % 2:
        raise SystemExit("give tarballs in pairs: OLD NEW [OLD NEW ...]")
    return [(Path(a).resolve(), Path(b).resolve()) for a, b in zip(paths[::2], paths[1::2])] or DEFAULT_PAIRS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tarballs", nargs="*", metavar="OLD NEW")
    parser.add_argument("--analyzers", default="flawfinder,cppcheck")
    parser.add_argument("--kiskadee", type=Path, default=ROOT, metavar="DIR",
                        help="directory holding the kiskadee package to measure (default: this tree)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="kk-diff-accuracy-") as scratch:
        config = Path(scratch) / "kiskadee.toml"
        # cppcheck on every preprocessor configuration and on bundled test harnesses takes minutes.
        config.write_text('[analyzers.cppcheck]\nextra_args = ["--max-configs=1", "-itests", "-ifuzzing"]\n')
        for number, (old, new) in enumerate(pairs_of(args.tarballs)):
            results.append(measure(args.kiskadee.resolve(), old, new, args.analyzers,
                                   Path(scratch) / str(number), config))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'PAIR':56} {'NEW':>5} {'FIXED':>5} {'UNCH':>5} {'MOVED':>5} {'F.NEW':>5} {'F.FIX':>5} {'M.CHG':>5}")
    for r in results:
        print(f"{r['pair']:56} {r['new']:5} {r['fixed']:5} {r['unchanged']:5} {r['moved']:5} {r['false_new']:5}"
              f" {r['false_fixed']:5} {r['moved_changed']:5}")
        for example in r["examples"]:
            print(f"    {example}")
    total = [sum(r[k] for r in results) for k in ("new", "fixed", "false_new", "false_fixed")]
    print(f"total: {total[0]} new, {total[1]} fixed reported; {total[2]} false new, {total[3]} false fixed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
