"""Per-file mode against build mode for the analyzers that compile the code.

For each analyzer (default: clang, gcc, framac) and each mode, on the same
unpacked real package (default: GNU hello 2.10, the Debian archive's orig
tarball in tests/fixtures), it runs the analyzer exactly as a runner would
(``kiskadee.analysis.pipeline.analyze_tree``, local sandbox, kiskadee's default limits
and analyzer settings but the mode) and prints:

  WALL    wall-clock seconds of the run (configure and build included in build mode)
  CPU     user+sys seconds of every process the run started (less sensitive to load)
  UNITS   translation units analyzed / units the mode considered
  SHARE   that ratio, and ``TREE``: units analyzed / C and C++ files in the tree
  FINDINGS and, for build mode, why it fell back to per-file mode if it did.

Run:  .venv/bin/python bench/analyzers.py [--tarball PATH] [--analyzers clang,gcc] [--jobs N]
On GNU hello with the three analyzers it takes about 2 minutes on 2 idle CPUs (6 to 13 under load).
"""

import argparse
import resource
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from kiskadee.analysis.analyzers import make_analyzers
from kiskadee.analysis.driver.units import scan_tree
from kiskadee.analysis.pipeline import analyze_tree
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.analysis.sandbox.local import LocalSandbox
from kiskadee.config import Config, from_mapping

HELLO = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "hello_2.10.orig.tar.gz"
MODES = (("per-file", "per-file"), ("build", "auto"))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(tree: Path, analyzer: str, mode: str, jobs: int) -> dict:
    """One analyzer run over ``tree`` in ``mode``; its timings and coverage."""
    settings = from_mapping({"analyzers": {analyzer: {"mode": mode, "jobs": jobs}}})
    defaults = Config().analysis
    limits = Limits(defaults.timeout, defaults.memory_limit_mb, defaults.max_output_bytes)
    cpu, started = children_cpu(), time.monotonic()
    (run,) = analyze_tree(tree, make_analyzers([analyzer], settings.analyzers), LocalSandbox(), limits)
    wall, cpu = time.monotonic() - started, children_cpu() - cpu
    considered = (run.files_analyzed or 0) + (run.files_failed or 0)
    return {"analyzer": analyzer, "status": run.status, "mode": run.mode or "-", "wall": wall, "cpu": cpu,
            "analyzed": run.files_analyzed or 0, "considered": considered, "findings": len(run.findings),
            "fallback": run.fallback}


def row(result: dict, tree_units: int) -> str:
    share = result["analyzed"] / result["considered"] if result["considered"] else 0.0
    return (f"{result['analyzer']:<10}{result['mode']:<11}{result['status']:<9}{result['wall']:>7.1f}"
            f"{result['cpu']:>7.1f}{result['analyzed']:>6}/{result['considered']:<5}{share:>7.0%}"
            f"{result['analyzed'] / tree_units:>7.0%}{result['findings']:>9}  {result['fallback']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, default=HELLO)
    parser.add_argument("--analyzers", default="clang,gcc,framac")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kk-bench-") as work:
        with tarfile.open(args.tarball) as archive:
            archive.extractall(work)
        (tree,) = [p for p in Path(work).iterdir() if p.is_dir()]
        tree_units = len(scan_tree(tree)[0])
        print(f"{args.tarball.name}: {tree_units} C/C++ files; jobs={args.jobs}")
        print(f"{'ANALYZER':<10}{'MODE':<11}{'STATUS':<9}{'WALL':>7}{'CPU':>7}{'UNITS':>12}{'SHARE':>7}"
              f"{'TREE':>7}{'FINDINGS':>9}  FALLBACK")
        for analyzer in args.analyzers.split(","):
            for _label, mode in MODES:
                print(row(measure(tree, analyzer, mode, args.jobs), tree_units), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
