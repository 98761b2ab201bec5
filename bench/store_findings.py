"""Findings stored per second into SQLite through kiskadee's own code path.

What it measures: the rate (findings/s) at which kiskadee stores one large
analysis, and, side by side, what plain ``sqlite3`` achieves for the same rows.

  kiskadee  open_database(fresh file) (not timed), then timed:
            ``queue.record_analysis(VersionKey(...), [AnalyzerRun(findings)], db=db)``,
            i.e. one transaction: get_version, Analyzer/Analysis rows,
            store.insert_findings (Finding -> tuple -> executemany), version update, commit.
  kiskadee+ (with --added-analyzer) the same, but into a version that already holds another
            analyzer's results of the same size (``kiskadee analyze --analyzers flawfinder``
            after ``--analyzers cppcheck``): the stored findings are read back and every
            finding of the version ranked again, the stored ones' ranks updated (not timed:
            storing the first analyzer).
  sqlite3   a fresh file with kiskadee's schema (the statements of its migrations,
            so an identical ``finding`` table with its indexes and foreign key)
            and the same pragmas (WAL, synchronous=normal, foreign_keys=1);
            timed: BEGIN, the parent rows, ``executemany`` of the same row
            tuples (built beforehand, not timed), COMMIT.

The synthetic load (default one million findings: varied paths, lines, check
ids, messages of 60-100 characters, 32-hex fingerprints, some 40% without
CWE) is built in memory first and not timed. The variants are interleaved and
repeated; it prints each rate, the medians and their ratio, by wall-clock
time and by this process's CPU time (which load on the machine inflates less).
Target: kiskadee stores at least 100,000 findings per second.

Run:  .venv/bin/python bench/store_findings.py [--count 1000000] [--repeat 3] [--added-analyzer]
Takes a few minutes with the defaults on an idle 2-CPU machine, about ten under
heavy load; --count 200000 is quicker.
"""

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kiskadee.core.findings import SEVERITIES, Finding
from kiskadee.core.runs import AnalyzerRun
from kiskadee.store import queue
from kiskadee.store import results as store
from kiskadee.store.db import open_database
from kiskadee.store.migrations import MIGRATIONS
from kiskadee.store.results import FINDING_COLUMNS, VersionKey

TARGET = 100_000
DIRS = ["src", "lib", "src/core", "src/net", "lib/compat", "tests", "tools", "src/crypto",
        "src/util", "contrib/zlib", "include", "src/parser", "plugins/audio", "ext/json"]
STEMS = ["main", "util", "buffer", "parse", "alloc", "io", "hash", "list", "string", "config",
         "socket", "file", "log", "thread", "map", "codec", "crc32", "inflate", "lexer", "stream"]
CHECKS = {  # check id -> (cwe or None, message template)
    "nullPointer": (476, "Possible null pointer dereference: {v} (checked at line {n})"),
    "uninitvar": (457, "Uninitialized variable: {v} used in expression before assignment"),
    "memleak": (401, "Memory leak: {v} is not freed on the error path returning at line {n}"),
    "arrayIndexOutOfBounds": (788, "Array '{v}[{n}]' accessed at index {n}, which is out of bounds"),
    "variableScope": (None, "The scope of the variable '{v}' can be reduced to the inner block"),
    "constParameter": (None, "Parameter '{v}' can be declared as pointer to const for clarity"),
    "unusedFunction": (None, "The function '{v}' is never used anywhere in this translation unit"),
    "buffer.strcpy": (120, "Does not check for buffer overflows when copying to {v} (CWE-120)."),
    "buffer.memcpy": (120, "Does not check for buffer overflows when copying {n} bytes to {v}."),
    "buffer.char": (119, "Statically-sized array '{v}' can be improperly restricted, leading to overflow"),
    "format.snprintf": (134, "If format strings can be influenced by an attacker ({v}), they can be exploited"),
    "shadowVariable": (None, "Local variable '{v}' shadows outer variable declared at line {n}"),
}
NAMES = ["buf", "len", "ctx", "node", "p", "state", "header", "out", "tmp", "entry", "session"]


def make_findings(count: int, seed: int = 1) -> list:
    """``count`` realistic findings (the analyzers' output after fingerprinting and ranking)."""
    rnd = random.Random(seed)
    paths = [f"{rnd.choice(DIRS)}/{rnd.choice(STEMS)}{i}.{rnd.choice('cch')}" for i in range(2000)]
    checks = list(CHECKS.items())
    findings = []
    for _ in range(count):
        check_id, (cwe, template) = rnd.choice(checks)
        message = template.format(v=f"{rnd.choice(NAMES)}_{rnd.randrange(1000)}", n=rnd.randrange(1, 5000))
        findings.append(Finding(
            path=rnd.choice(paths), line=rnd.randrange(1, 5000), column=rnd.randrange(0, 80),
            check_id=check_id, severity=rnd.choice(SEVERITIES), message=message.ljust(60, "."),
            cwe=cwe if rnd.random() > 0.15 else None, function=rnd.choice(["", "", "parse_header"]),
            fingerprint=f"{rnd.getrandbits(128):032x}", rank=round(rnd.uniform(-1, 6), 3)))
    return findings


def time_kiskadee(findings: list, directory: Path, number: int) -> float:
    db = open_database(str(directory / f"kiskadee-{number}.db"))
    run = AnalyzerRun("cppcheck", "2.10", "ok", duration=1.0, findings=findings)
    key = VersionKey("bench", "synthetic", f"1.{number}")
    started, cpu = time.perf_counter(), time.process_time()
    queue.record_analysis(key, [run], db=db)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    stored = db.execute_sql("SELECT count(*) FROM finding").fetchone()[0]
    db.close()
    assert stored == len(findings), (stored, len(findings))
    return elapsed, cpu


def time_kiskadee_added(findings: list, directory: Path, number: int) -> float:
    """Store ``findings`` as flawfinder's into a version that has as many of cppcheck's."""
    db = open_database(str(directory / f"kiskadee+-{number}.db"))
    key = VersionKey("bench", "synthetic", f"1.{number}")
    queue.record_analysis(key, [AnalyzerRun("cppcheck", "2.10", "ok", duration=1.0,
                                            findings=make_findings(len(findings), seed=2))], db=db)
    run = AnalyzerRun("flawfinder", "2.0.19", "ok", duration=1.0, findings=findings)
    started, cpu = time.perf_counter(), time.process_time()
    queue.record_analysis(key, [run], db=db)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    stored = db.execute_sql("SELECT count(*) FROM finding").fetchone()[0]
    db.close()
    assert stored == 2 * len(findings), (stored, len(findings))
    return elapsed, cpu


def time_sqlite3(rows: list, directory: Path, number: int) -> float:
    conn = sqlite3.connect(directory / f"sqlite3-{number}.db", isolation_level=None)
    for pragma in ("journal_mode = wal", "foreign_keys = 1", "synchronous = normal"):
        conn.execute(f"PRAGMA {pragma}")
    for statement in (s for migration in MIGRATIONS for s in migration.statements):
        conn.execute(statement)
    columns = ", ".join(f'"{name}"' for name in FINDING_COLUMNS)
    marks = ", ".join("?" * len(FINDING_COLUMNS))
    now = "2024-01-01 00:00:00"
    started, cpu = time.perf_counter(), time.process_time()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO fetcher (id, name, created_at) VALUES (1, 'bench', ?)", (now,))
    conn.execute("INSERT INTO package (id, fetcher_id, name, created_at) VALUES (1, 1, 'synthetic', ?)", (now,))
    conn.execute("INSERT INTO version (id, package_id, number, created_at) VALUES (1, 1, '1', ?)", (now,))
    conn.execute("INSERT INTO analyzer (id, name, version) VALUES (1, 'cppcheck', '2.10')")
    conn.execute("INSERT INTO analysis (id, version_id, analyzer_id, status, started_at) "
                 "VALUES (1, 1, 1, 'ok', ?)", (now,))
    conn.executemany(f"INSERT INTO finding ({columns}) VALUES ({marks})", rows)
    conn.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    stored = conn.execute("SELECT count(*) FROM finding").fetchone()[0]
    conn.close()
    assert stored == len(rows), (stored, len(rows))
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000, help="findings per run (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each variant (default 3)")
    parser.add_argument("--dir", help="where the database files go (default: a temp dir)")
    parser.add_argument("--added-analyzer", action="store_true",
                        help="also time storing a second analyzer into a version that has one (ranked again)")
    args = parser.parse_args()
    print(f"building {args.count:,} findings in memory (not timed)...", file=sys.stderr)
    findings = make_findings(args.count)
    rows = [store._row(1, f) for f in findings]     # the same tuples kiskadee builds
    lengths = sorted(len(f.message) for f in findings)
    print(f"{args.count:,} findings, {len({f.path for f in findings}):,} paths, "
          f"{len({f.check_id for f in findings})} check ids, messages {lengths[0]}-{lengths[-1]} chars, "
          f"{sum(f.cwe is None for f in findings) / args.count:.0%} without CWE")
    print(f"SQLite {sqlite3.sqlite_version}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    timers = {"kiskadee": time_kiskadee, "sqlite3": time_sqlite3}
    if args.added_analyzer:
        timers["kiskadee+"] = time_kiskadee_added
    rates = {variant: [] for variant in timers}
    cpu_rates = {variant: [] for variant in timers}
    with tempfile.TemporaryDirectory(prefix="kk-store-", dir=args.dir) as tmp:
        for i in range(args.repeat):
            for variant in (list(timers) if i % 2 == 0 else list(reversed(timers))):
                seconds, cpu = timers[variant](rows if variant == "sqlite3" else findings, Path(tmp), i)
                rates[variant].append(args.count / seconds)
                cpu_rates[variant].append(args.count / cpu)
                print(f"  repetition {i + 1} {variant:9} {seconds:7.3f} s {args.count / seconds:11,.0f} findings/s"
                      f"   cpu {cpu:7.3f} s {args.count / cpu:11,.0f} findings/s")
                for path in Path(tmp).glob(f"{variant}-{i}.db*"):
                    path.unlink()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    for label, table in (("wall-clock", rates), ("CPU time", cpu_rates)):
        k, s = statistics.median(table["kiskadee"]), statistics.median(table["sqlite3"])
        print(f"by {label}: median kiskadee (record_analysis) {k:11,.0f} findings/s, "
              f"sqlite3 executemany {s:11,.0f} findings/s, ratio kiskadee/sqlite3 {k / s:.3f}")
        if "kiskadee+" in table:
            added = statistics.median(table["kiskadee+"])
            print(f"by {label}: median kiskadee+ (a second analyzer, ranked again) {added:11,.0f} findings/s,"
                  f" ratio kiskadee+/kiskadee {added / k:.3f}")
    k = statistics.median(rates["kiskadee"])
    print(f"target: >= {TARGET:,} findings/s through kiskadee (wall-clock): {'MET' if k >= TARGET else 'NOT MET'}")


if __name__ == "__main__":
    main()
