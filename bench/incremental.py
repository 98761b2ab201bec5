"""A release analyzed in full against the same release analyzed after the one before it.

For each release pair it unpacks both, lets the old release fill an empty
per-unit cache (``kiskadee.analysis.cache``, a real SQLite file), then
analyzes the new release twice as a runner would
(``kiskadee.analysis.pipeline.analyze_tree``, local sandbox, kiskadee's
default limits): in full, without the cache (what every release cost before
it), and incrementally, with the cache the old release filled. It checks that
both store the same findings and coverage, and prints per pair:

  CHANGED   files of the analyzers' languages that differ or are new / those in the new release
  REUSED    units taken from the cache / units of the new release, over the analyzers
  FULL      wall and CPU seconds (CPU: user+sys of this process and every process it started)
  INCR      the same for the incremental analysis
  RATIO     incremental / full, wall and CPU

Pairs: lz4 1.9.4 -> 1.10.0 and cJSON 1.7.14 -> 1.7.15 (tests/fixtures/releases); a Debian minor
update, cJSON 1.7.15 -> Debian bookworm's 1.7.15-1+deb12u4 (both unpacked by dpkg-source from the
same .dsc, without and with its security patches, which change four C files and no header); and
lz4 1.10.0 -> a copy with 5% of its C files changed (one function added at the end of each, every
20th .c file in path order): the kind of release the target is about (at most 15% of a full run).

Then (``--builds``) one build against two: GNU hello 2.10 (tests/fixtures) analyzed by gcc and
clang in build mode (local sandbox with ``build_on_host``), both in one analysis sharing one
configure and make, against each in an analysis of its own (two builds); wall and CPU time, the
ratio (target: at most 60%), and whether they store the same.

Run:  .venv/bin/python bench/incremental.py [--analyzers flawfinder,gcc] [--jobs 2]
                                            [--pairs lz4,cjson,cjson-deb,lz4-5%]
                                            [--builds]
With flawfinder and gcc (per-file mode) it takes about 20 minutes on 2 CPUs under load.
cppcheck is re-run whole (see the README's "Analysis cache"): it is not in the default set here.
"""

import argparse
import math
import os
import re
import resource
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from kiskadee.analysis.analyzers import make_analyzers
from kiskadee.analysis.analyzers.flawfinder import SOURCE_SUFFIXES
from kiskadee.analysis.cache import UnitCache
from kiskadee.analysis.pipeline import Reuse, analyze_tree
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.analysis.sandbox.local import LocalSandbox
from kiskadee.config import Config, from_mapping

RELEASES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "releases"


class DebianSource(NamedTuple):
    """A Debian source package of tests/fixtures/releases, unpacked with or without its patches."""

    dsc: str
    patched: bool


CJSON_DEBIAN = "cjson_1.7.15-1+deb12u4.dsc"
PAIRS = {
    "lz4": ("lz4_1.9.4.orig.tar.gz", "lz4_1.10.0.orig.tar.gz"),
    "cjson": ("cjson_1.7.14.orig.tar.gz", "cjson_1.7.15.orig.tar.gz"),
    "cjson-deb": (DebianSource(CJSON_DEBIAN, patched=False), DebianSource(CJSON_DEBIAN, patched=True)),
    "lz4-5%": ("lz4_1.10.0.orig.tar.gz", None),
}
CHANGED_SHARE = 0.05


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def unpack(name: str, into: Path) -> Path:
    into.mkdir(parents=True)
    with tarfile.open(RELEASES / name) as archive:
        archive.extractall(into)
    (tree,) = into.iterdir()
    return tree


def dpkg_source(source: DebianSource, into: Path) -> Path:
    """The tree dpkg-source unpacks: the orig and debian/, the patches applied if ``source.patched``."""
    tree = into / "tree"
    into.mkdir(parents=True)
    subprocess.run(["dpkg-source", "--no-copy", *([] if source.patched else ["--skip-patches"]), "-x",
                    str(RELEASES / source.dsc), str(tree)], check=True, capture_output=True, timeout=120)
    # quilt's copies of the files before each patch: no build reads them.
    shutil.rmtree(tree / ".pc", ignore_errors=True)
    return tree


def prepare(source, into: Path) -> Path:
    return dpkg_source(source, into) if isinstance(source, DebianSource) else unpack(source, into)


def five_percent_changed(tree: Path, into: Path) -> Path:
    """A copy of ``tree`` with one function added to every 20th .c file: 5% of its C files changed."""
    copy = into / (tree.name + "+5pct")
    shutil.copytree(tree, copy, symlinks=True)
    sources = sorted(path for path in c_files(copy) if path.endswith(".c"))
    wanted = math.ceil(len(c_files(copy)) * CHANGED_SHARE)
    for number, path in enumerate(sources[::20][:wanted]):
        with open(copy / path, "a") as stream:
            stream.write(f"\nint kiskadee_bench_{number}(int x)\n{{\n    return x * {number + 2};\n}}\n")
    return copy


def c_files(tree: Path) -> list:
    return [os.path.relpath(os.path.join(d, f), tree) for d, _, files in os.walk(tree) for f in files
            if os.path.splitext(f)[1] in SOURCE_SUFFIXES]


def changed_files(old: Path, new: Path) -> int:
    before = {path: (old / path).read_bytes() for path in c_files(old)}
    return sum(1 for path in c_files(new) if before.get(path) != (new / path).read_bytes())


def timed(tree: Path, names, settings, reuse=None):
    defaults = Config().analysis
    limits = Limits(defaults.timeout, defaults.memory_limit_mb, defaults.max_output_bytes)
    cpu, started = cpu_seconds(), time.monotonic()
    runs = analyze_tree(tree, make_analyzers(names, settings.analyzers), LocalSandbox(), limits, reuse=reuse)
    return runs, time.monotonic() - started, cpu_seconds() - cpu


def stored(runs) -> list:
    # Numbers left out of the reasons files failed: gcc out of memory says how many bytes it had, and
    # that differs from one run of the same file to the next.
    return [(run.analyzer, run.status, run.files_analyzed, run.files_failed, re.sub(r"\d+", "N", run.failed_files),
             sorted((f.fingerprint, f.path, f.line, f.check_id, f.message, f.function, f.cwes)
                    for f in run.findings)) for run in runs]


def measure(name: str, names, settings, work: Path) -> dict:
    old_name, new_name = PAIRS[name]
    old = prepare(old_name, work / "old")
    new = prepare(new_name, work / "new") if new_name else five_percent_changed(old, work / "new")
    cache = UnitCache(str(work / "cache.db"), 1 << 32)
    timed(old, names, settings, Reuse(cache, f"bench/{name}"))
    full, full_wall, full_cpu = timed(new, names, settings)
    reuse = Reuse(cache, f"bench/{name}")
    incremental, wall, cpu = timed(new, names, settings, reuse)
    for whole, reused in zip(stored(full), stored(incremental)):
        if whole != reused:
            print(f"{name}: {whole[0]} differs:\n  full        {whole[:5]}\n  incremental {reused[:5]}\n"
                  f"  findings only in full: {sorted(set(whole[5]) - set(reused[5]))[:5]}\n"
                  f"  findings only in the incremental run: {sorted(set(reused[5]) - set(whole[5]))[:5]}")
    return {"pair": name, "changed": changed_files(old, new), "files": len(c_files(new)),
            "reused": reuse.reused, "units": reuse.reused + reuse.analyzed, "full": (full_wall, full_cpu),
            "incremental": (wall, cpu), "same": stored(full) == stored(incremental)}


HELLO = RELEASES.parent / "hello_2.10.orig.tar.gz"


def builds(jobs: int) -> str:
    """gcc and clang over GNU hello in build mode: one shared build against one build each."""
    from kiskadee.analysis.sandbox.local import LocalSandbox as Local
    from kiskadee.config import LocalSandboxConfig

    settings = from_mapping({"analyzers": {"gcc": {"jobs": jobs}, "clang": {"jobs": jobs}}})
    sandbox = Local(LocalSandboxConfig(build_on_host=True))
    defaults = Config().analysis
    limits = Limits(defaults.timeout, defaults.memory_limit_mb, defaults.max_output_bytes)
    with tempfile.TemporaryDirectory(prefix="kk-bench-") as work:
        with tarfile.open(HELLO) as archive:
            archive.extractall(work)
        tree = Path(work) / "hello-2.10"
        cpu, started = cpu_seconds(), time.monotonic()
        two = [analyze_tree(tree, make_analyzers([name], settings.analyzers), sandbox, limits, work_dir=work)[0]
               for name in ("gcc", "clang")]
        two_wall, two_cpu = time.monotonic() - started, cpu_seconds() - cpu
        cpu, started = cpu_seconds(), time.monotonic()
        one = analyze_tree(tree, make_analyzers(["gcc", "clang"], settings.analyzers), sandbox, limits, work_dir=work)
        one_wall, one_cpu = time.monotonic() - started, cpu_seconds() - cpu
    modes = "/".join(run.mode for run in one)
    return (f"gcc+clang on hello 2.10 ({modes}): two builds {two_wall:.1f} s wall / {two_cpu:.1f} s CPU, "
            f"one shared build {one_wall:.1f} / {one_cpu:.1f}, ratio {one_wall / two_wall:.0%} wall / "
            f"{one_cpu / two_cpu:.0%} CPU; same findings and coverage: {'yes' if stored(one) == stored(two) else 'NO'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--analyzers", default="flawfinder,gcc")
    parser.add_argument("--jobs", type=int, default=2, help="files the compiled analyzers analyze at once")
    parser.add_argument("--pairs", default=",".join(PAIRS), help="'' for none")
    parser.add_argument("--builds", action="store_true", help="also one shared build against two builds")
    args = parser.parse_args()
    names = args.analyzers.split(",")
    settings = from_mapping({"analyzers": {name: {"mode": "per-file", "jobs": args.jobs}
                                           for name in names if name in ("clang", "gcc", "framac")}})
    results = []
    for pair in filter(None, args.pairs.split(",")):
        with tempfile.TemporaryDirectory(prefix="kk-bench-") as work:
            results.append(measure(pair, names, settings, Path(work)))
            print(f"{pair}: done", flush=True)
    built = builds(args.jobs) if args.builds else ""
    print(f"\nanalyzers: {', '.join(names)} (compiled ones per-file, {args.jobs} jobs); local sandbox\n")
    print(f"{'PAIR':<10}{'CHANGED':>10}{'REUSED':>12}{'FULL wall/cpu':>17}{'INCR wall/cpu':>17}"
          f"{'RATIO wall/cpu':>17}  SAME")
    for r in results:
        (fw, fc), (iw, ic) = r["full"], r["incremental"]
        print(f"{r['pair']:<10}{r['changed']:>5}/{r['files']:<4}{r['reused']:>6}/{r['units']:<5}"
              f"{fw:>8.1f}/{fc:<8.1f}{iw:>8.1f}/{ic:<8.1f}{iw / fw:>8.0%}/{ic / fc:<8.0%}  "
              f"{'yes' if r['same'] else 'NO'}")
    if built:
        print(f"\n{built}")
    return 0 if all(r["same"] for r in results) and "NO" not in built else 1


if __name__ == "__main__":
    raise SystemExit(main())
