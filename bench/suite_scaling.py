"""Suite scaling: the same batch of real Debian packages with 1 runner and with 2 runners.

Measures, side by side in one run: the time from the first ``kiskadee submit``
to the last version 'done' for a batch of bookworm main packages, each time
with a fresh monitor and database (processes on ipc sockets, as in
bench/suite_overhead.py), once with 1 runner and once with 2 (one per core
on this 2-core machine). Target: speed-up (median 1-runner time / median
2-runner time) >= 1.8.

Besides the wall-clock speed-up it prints what limits it:
  - the machine's own speed-up: the same analyzers run directly (no
    kiskadee) by a pool of 1 and of 2 processes, as in bench/suite_overhead.py's
    variant B (skip with --no-reference). On this virtual machine two cppcheck
    processes at once each took 10-30 % more CPU time than one alone, so
    2.0 is out of reach for anything;
  - the batch's own balance: the best speed-up list scheduling in submission
    order can reach with each job's duration as measured in the 1-runner runs
    (jobs are leased oldest first, so two runners can only split the batch
    that way);
  - the CPU bound: the CPU seconds of the whole 1-runner run over those of the
    busiest runner (with its analyzers) in the 2-runner run; it moves less
    than wall time when other work shares the cores.
Each run also says how much of the cores other processes used meanwhile
(machine-wide busy time from /proc/stat minus the run's own CPU time).
Variants alternate (suite 1, suite 2, direct 1, direct 2, then the reverse,
...); medians over --repeat runs.

Packages: the main tarballs of bookworm main from the Debian mirror apt uses
here, cached under ~/.cache/kiskadee-bench/ and checked against the Sources
index's Checksums-Sha256; the default batch is that of bench/suite_overhead.py
and two small packages more, which let two runners finish closer together
(see PACKAGES).

Run: .venv/bin/python bench/suite_scaling.py [--repeat N] [--packages a,b,c] [--runners N] [--no-reference]
"""

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite_overhead import (DEFAULT_PACKAGES, DirectBatch, common_arguments, describe, fetch_batch,  # noqa: E402
                            interference, list_schedule, run_suite)

# The batch of bench/suite_overhead.py (cppcheck 10-17 s each) and two small
# packages at the end (figlet, cmatrix: about 6 s of cppcheck each) that fill
# the gap left when the runners' first two jobs end apart. With the 4 alone
# the job times allowed at most 1.83-1.87 with two runners taking them in
# order; with the 6, 1.90.
PACKAGES = DEFAULT_PACKAGES + ("figlet", "cmatrix")


def runner_loads(report: dict) -> Dict[str, float]:
    """Seconds each runner spent on its jobs (lease to stored result)."""
    loads: Dict[str, float] = {}
    for job in report["jobs"]:
        loads[job["runner"]] = loads.get(job["runner"], 0.0) + job["wall"]
    return loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Run: .venv/bin/python bench/suite_scaling.py")
    common_arguments(parser, PACKAGES)
    parser.add_argument("--runners", type=int, default=os.cpu_count() or 2,
                        help=f"runners to compare with one runner (default: the number of cores, {os.cpu_count()})")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="skip the analyzers-only runs with 1 and N processes (the machine's own speed-up)")
    args = parser.parse_args()
    many = args.runners
    batch = fetch_batch(args.packages)
    print(f"batch in submission order: {describe(batch)}")
    print(f"1 runner vs {many} runners, {os.cpu_count()} cores, fresh monitor and database each run, "
          f"{args.repeat} runs each, interleaved", flush=True)
    variants = [("suite", 1), ("suite", many)] + ([("direct", 1), ("direct", many)] if args.reference else [])
    times: Dict[tuple, List[float]] = {v: [] for v in variants}
    cpus: Dict[tuple, List[float]] = {v: [] for v in variants}
    reports: Dict[tuple, List[dict]] = {v: [] for v in variants}
    direct = DirectBatch(batch) if args.reference else None
    try:
        for attempt in range(args.repeat):
            for variant in (variants if attempt % 2 == 0 else variants[::-1]):
                kind, runners = variant
                if kind == "suite":
                    seconds, cpu, report = run_suite(batch, runners)
                else:
                    seconds, cpu, report = direct.run(runners)
                times[variant].append(seconds)
                cpus[variant].append(cpu)
                reports[variant].append(report)
                label = f"{runners} runner{'s' if runners > 1 else ' '}" if kind == "suite" else \
                    f"analyzers only, {runners} process{'es' if runners > 1 else '  '}"
                print(f"run {attempt + 1}, {label}: {seconds:7.2f} s wall, {cpu:7.2f} s CPU "
                      f"({interference(report)})", flush=True)
                if kind == "suite":
                    loads = runner_loads(report)
                    jobs = ", ".join(f"{j['package']} {j['runner']} {j['start']:.1f}-{j['end']:.1f}"
                                     for j in report["jobs"])
                    busy = ", ".join(f"{name} busy {loads[name]:.1f}s / CPU {report['cpu'][name]:.1f}s"
                                     for name in sorted(loads))
                    print(f"    first job leased {report['first_lease']:.2f} s after the first submit\n"
                          f"    jobs (seconds from the first lease): {jobs}\n"
                          f"    {busy}, monitor CPU {report['cpu']['monitor']:.1f}s", flush=True)
    finally:
        if direct is not None:
            direct.close()

    def median(variant, what=times):
        return statistics.median(what[variant])

    one, two = median(("suite", 1)), median(("suite", many))
    speedup = one / two
    print(f"\nmedian with 1 runner: {one:.2f} s; with {many} runners: {two:.2f} s")
    print(f"speed-up = {speedup:.2f} (target >= 1.8); per run "
          + ", ".join(f"{x / y:.2f}" for x, y in zip(times[("suite", 1)], times[("suite", many)])))
    if args.reference:
        d1, d2 = median(("direct", 1)), median(("direct", many))
        print(f"the analyzers alone (no kiskadee), 1 vs {many} processes: {d1:.2f} s vs {d2:.2f} s, "
              f"speed-up {d1 / d2:.2f}: the most this machine gives now; the suite reaches "
              f"{speedup / (d1 / d2):.0%} of it")
        print(f"suite vs analyzers alone: 1 runner {one / d1:.3f}x, {many} runners {two / d2:.3f}x the time")
    durations = [statistics.median(j["wall"] for r in reports[("suite", 1)] for j in r["jobs"]
                                   if j["package"] == t.name) for t in batch]
    best = sum(durations) / list_schedule(durations, many)
    print("balance of this batch in this order: job times with 1 runner "
          + ", ".join(f"{t.name} {d:.1f}s" for t, d in zip(batch, durations))
          + f"; {many} runners taking them in order can reach at most {best:.2f}")
    cpu_one, cpu_many = median(("suite", 1), cpus), median(("suite", many), cpus)
    print(f"CPU seconds for the whole batch: {cpu_one:.1f} with 1 runner, {cpu_many:.1f} with {many} "
          f"({cpu_many / cpu_one - 1:+.0%}"
          + ("; on this virtual machine the same work can take more CPU time when all cores are busy)"
             if cpu_many > cpu_one * 1.02 else ")"))
    busiest = statistics.median(max(v for k, v in r["cpu"].items() if k.startswith("r"))
                                for r in reports[("suite", many)])
    print(f"CPU bound: {cpu_one:.1f} s CPU for the whole 1-runner run / {busiest:.1f} s CPU of the busiest "
          f"of {many} runners = {cpu_one / busiest:.2f}")


if __name__ == "__main__":
    main()
