"""Release diffs and best-ranked findings on large databases.

What it measures, side by side in one run:

  diff  ``diff.compare`` of two versions of --findings findings each (two
        analyzers, 5% of the fingerprints changed between the versions), then
        ``diff.as_data`` (the details of the new, fixed and not-analyzed
        findings, as ``kiskadee diff`` prints them), and a sqlite3 user's
        count of the ``new_finding`` view for NEW; beside them, plain sqlite3
        running the two EXCEPT queries that give the new and fixed fingerprints.
  top   the 20 best-ranked findings of the latest version in a database of
        --versions x --findings findings, as ``kiskadee show --top 20`` reads
        them (``queries._best_ranked``: the best of each analysis and severity
        from the finding_rank index of migration 4, merged), and the whole
        ``show`` report (``queries.version_report``, which also counts each
        analysis's findings by severity); beside them, the single query
        sorting all the version's findings that ``show`` ran before.

Targets: diff under 0.5 s; top 20 under 100 ms. Figures are medians of
wall-clock and of this process's CPU time, which load on the machine
inflates less.

The database is built once through ``store.record_analysis`` (as ``kiskadee
analyze`` stores results, survival included) under ~/.cache/kiskadee-bench/
and reused while its parameters match; building it takes a few minutes.

Run:  .venv/bin/python bench/diff.py [--findings 100000] [--versions 10] [--repeat 5]
"""

import argparse
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from kiskadee.core.findings import SEVERITIES
from kiskadee.core.findings import Finding as NewFinding
from kiskadee.core.runs import AnalyzerRun
from kiskadee.results import diff
from kiskadee.store import queries
from kiskadee.store.db import open_database
from kiskadee.store.migrations import LATEST
from kiskadee.store.models import Analysis, Analyzer, Finding, Version
from kiskadee.store.queue import record_analysis
from kiskadee.store.results import VersionKey

CACHE = Path.home() / ".cache" / "kiskadee-bench"
CHURN = 0.05
CHECKS = [("nullPointer", 476), ("uninitvar", 457), ("memleak", 401), ("variableScope", 398),
          ("buffer.strcpy", 120), ("buffer.char", 119), ("format.printf", 134), ("integer.atoi", 190)]


def findings_of(version: int, count: int, analyzer: str, rng: random.Random):
    """``count`` findings; each version replaces CHURN of the previous one's fingerprints."""
    found = []
    for n in range(count):
        generation = version if rng.random() < CHURN else 0
        check, cwe = CHECKS[n % len(CHECKS)]
        found.append(NewFinding(
            path=f"src/dir{n % 97}/file{n % 1013}.c", line=1 + (n * 7 + version) % 5000,
            check_id=check, severity=SEVERITIES[n % 4], cwe=cwe if n % 3 else None,
            message=f"{check}: something about variable v{n % 500} in this function",
            fingerprint=f"{analyzer[:2]}{n:010d}g{generation:04d}".ljust(32, "0"),
            rank=round(rng.uniform(-1, 8), 3)))
    return found


def build(path: Path, versions: int, count: int) -> None:
    print(f"building {path} ({versions} versions x {count} findings)...", file=sys.stderr, flush=True)
    db = open_database(str(path))
    db.execute_sql("PRAGMA cache_size = -262144")   # 256 MiB: only the build, which is not measured
    rng = random.Random(7)
    for version in range(1, versions + 1):
        runs = [AnalyzerRun(name, "1.0", "ok", findings=findings_of(version, count // 2, name, rng))
                for name in ("cppcheck", "flawfinder")]
        record_analysis(VersionKey("local", "big", f"1.{version}"), runs, db=db)
    db.close()


def timed(function, repeat: int):
    """Median wall-clock and CPU seconds of ``repeat`` calls (CPU time is inflated less by load)."""
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(wall), statistics.median(cpu)


def show(label: str, seconds, target: str = "", baseline=None) -> None:
    wall, cpu = seconds
    ratio = f"   x{wall / baseline[0]:.2f} wall, x{cpu / baseline[1]:.2f} cpu" if baseline else ""
    print(f"  {label:<44} {wall * 1000:8.1f} ms wall {cpu * 1000:8.1f} ms cpu{ratio}{target}")


def plain_diff(path: Path, old_id: int, new_id: int) -> None:
    query = ("SELECT f.fingerprint FROM finding f JOIN analysis a ON a.id = f.analysis_id WHERE a.version_id = ?"
             " EXCEPT SELECT f.fingerprint FROM finding f JOIN analysis a ON a.id = f.analysis_id"
             " WHERE a.version_id = ?")
    with sqlite3.connect(path) as connection:
        connection.execute(query, (new_id, old_id)).fetchall()
        connection.execute(query, (old_id, new_id)).fetchall()


def bench_diff(path: Path, versions: int, repeat: int) -> None:
    old, new = (Version.get(Version.number == f"1.{n}") for n in (versions - 1, versions))
    counts = diff.compare(old, new).counts()
    print(f"diff {old.number} -> {new.number}: new {counts['new']}, fixed {counts['fixed']},"
          f" unchanged {counts['unchanged']} ({versions} versions in the database)")
    plain = timed(lambda: plain_diff(path, old.id, new.id), repeat)
    show("plain sqlite3: the two EXCEPT queries", plain)
    show("kiskadee diff.compare", timed(lambda: diff.compare(old, new), repeat), "", plain)
    show("kiskadee compare + details (as_data)", timed(lambda: diff.as_data(diff.compare(old, new)), repeat),
         "   target < 500 ms", plain)
    show("sqlite3: the new_finding view of NEW", timed(lambda: view_count(path, new.number), repeat), "", plain)


def view_count(path: Path, number: str) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT COUNT(*) FROM new_finding WHERE package = 'big' AND version = ?",
                                  (number,)).fetchone()[0]


def naive_top(version: Version) -> list:
    """One query sorting every finding of the version: what 'show --top' ran before migration 4."""
    return list(Finding.select(Finding, Analysis, Analyzer).join(Analysis).join(Analyzer)
                .where(Analysis.version == version)
                .order_by(Finding.rank.desc(), Finding.path, Finding.line).limit(20))


def bench_top(versions: int, repeat: int) -> None:
    version = Version.get(Version.number == f"1.{versions}")
    total = Version._meta.database.execute_sql("SELECT COUNT(*) FROM finding").fetchone()[0]
    best = [f["fingerprint"] for f in queries.version_report(version, top=20)["findings"]]
    assert set(best) == {f.fingerprint for f in naive_top(version)}
    print(f"top 20 of {version.number} ({total // versions} findings) among {total} findings:")
    naive = timed(lambda: naive_top(version), repeat)
    show("one query sorting the version's findings", naive)
    show("kiskadee's 20 best-ranked findings", timed(lambda: queries._best_ranked(version, 20), repeat),
         "   target < 100 ms", naive)
    show("whole 'show --top 20' report (+ counts)", timed(lambda: queries.version_report(version, top=20), repeat),
         "", naive)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--findings", type=int, default=100_000, help="findings per version")
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"diff-{args.versions}x{args.findings}-schema{LATEST}.db"
    if not path.exists():
        build(path, args.versions, args.findings)
    open_database(str(path), schema="current")
    bench_diff(path, args.versions, args.repeat)
    bench_top(args.versions, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
