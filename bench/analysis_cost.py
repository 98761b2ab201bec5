"""Per-package analysis cost: ``kiskadee analyze --analyzers NAME`` of real packages, one analyzer at a time.

Each run is the real command with a fresh database in a fresh temporary
directory (so the analysis cache beside it starts cold, as for a package
seen for the first time), the local sandbox and the configuration's
defaults except the per-analyzer ``analysis.timeout`` given here. It prints,
per package and analyzer: the wall time, the CPU time of the command and
everything it started (user + system, from the children's rusage), what
the database holds (status, findings, and for the compiling analyzers the
mode and files analyzed/failed), and the package's size packed and
unpacked (what a runner downloads and what it writes to disk).

These are the measured inputs of the README's capacity model. Not part of
the test suite; run it on an otherwise idle machine and note ``uptime``.

Run: .venv/bin/python bench/analysis_cost.py [--analyzers flawfinder,cppcheck,gcc,clang,framac]
                                             [--packages PATH,...] [--timeout 240] [--deadline 1500]
"""

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import List, Optional

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
PACKAGES = [FIXTURES / "hello_2.10.orig.tar.gz", FIXTURES / "releases" / "cjson_1.7.15.orig.tar.gz",
            FIXTURES / "releases" / "lz4_1.10.0.orig.tar.gz"]
ANALYZERS = "flawfinder,cppcheck,gcc,clang,framac"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--analyzers", default=ANALYZERS, help=f"analyzers, one run each (default {ANALYZERS})")
    parser.add_argument("--packages", default=",".join(map(str, PACKAGES)), help="tarballs to analyze")
    parser.add_argument("--timeout", type=float, default=240.0, help="analysis.timeout per run (default 240 s)")
    parser.add_argument("--deadline", type=float, default=1500.0, help="seconds for all runs; later ones are skipped")
    return parser.parse_args(argv)


def unpacked_bytes(tarball: Path) -> int:
    with tarfile.open(tarball) as archive:
        return sum(member.size for member in archive.getmembers() if member.isfile())


def c_files(tarball: Path) -> int:
    with tarfile.open(tarball) as archive:
        return sum(1 for member in archive.getmembers() if member.isfile() and member.name.endswith((".c", ".h")))


def one_run(tarball: Path, analyzer: str, timeout: float) -> str:
    """Analyze ``tarball`` with ``analyzer`` alone; one line of the table."""
    with tempfile.TemporaryDirectory(prefix="kkcost") as tmp:
        root = Path(tmp)
        config = root / "kiskadee.toml"
        config.write_text(f'[database]\npath = "{root / "k.db"}"\n\n[analysis]\ntimeout = {timeout}\n'
                          f'work_dir = "{root}"\n\n[fetchers.debian]\nenabled = false\n')
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "kiskadee", "-q", "-c", str(config), "analyze",
                               "--analyzers", analyzer, str(tarball)], capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rows = []
        if (root / "k.db").exists():
            with sqlite3.connect(root / "k.db") as connection:
                rows = connection.execute("SELECT a.status, a.finding_count, a.duration, a.mode, a.files_analyzed, "
                                          "a.files_failed FROM analysis a "
                                          "JOIN analyzer z ON z.id = a.analyzer_id").fetchall()
    status, findings, duration, mode, analyzed, failed = rows[0] if rows else (
        f"exit {done.returncode}", 0, 0.0, "", None, None)
    files = f"{mode or '-'} {analyzed}/{failed}" if analyzed is not None else (mode or "-")
    return (f"{tarball.name:<28} {analyzer:<10} {wall:8.1f} {cpu:8.1f} {duration or 0:8.1f} "
            f"{status:<8} {findings:6} {files}")


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    packages = [Path(path) for path in args.packages.split(",") if path]
    analyzers = [name.strip() for name in args.analyzers.split(",") if name.strip()]
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
          f"{os.cpu_count()} CPUs, analysis.timeout {args.timeout:g} s")
    for tarball in packages:
        print(f"{tarball.name}: {tarball.stat().st_size / 1024:.0f} KiB packed, "
              f"{unpacked_bytes(tarball) / 1024**2:.1f} MiB unpacked, {c_files(tarball)} .c/.h files")
    print(f"{'package':<28} {'analyzer':<10} {'wall s':>8} {'cpu s':>8} {'stored s':>8} {'status':<8} {'found':>6} mode files ok/failed")
    deadline = time.monotonic() + args.deadline
    for analyzer in analyzers:          # cheap analyzers first, so a deadline cuts the dear ones
        for tarball in packages:
            if time.monotonic() > deadline:
                print(f"{tarball.name:<28} {analyzer:<10} skipped: --deadline reached")
                continue
            print(one_run(tarball, analyzer, args.timeout), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
