"""Suite overhead: a batch of real Debian packages through monitor and runners vs the bare analyzers.

Measures, side by side in one run on the same tarballs:
  A. the real suite: a monitor and 2 runners (one per core) started as
     processes on ipc sockets with a fresh SQLite database; every tarball is
     given with ``kiskadee submit NAME VERSION PATH``; the time runs from the
     first submit until the last version's state is 'done'. This includes
     what the suite does around the analyzers: unpacking each tarball, the
     analyzers' --version probes, parsing and fingerprinting the reports,
     sending the findings over ZeroMQ and storing them in SQLite.
  B. the same analyzers run directly: the tarballs are unpacked beforehand
     (not timed), then a pool of 2 worker processes runs, per package,
     ``cppcheck --xml-version=2 --quiet --enable=warning,style,performance,portability
     -j1 --output-file=OUT/cppcheck.xml .`` and then ``flawfinder --csv --minlevel=1 .``
     with the source root as working directory, each in its own session as the
     runner starts them; the time is that of the whole pool.
Target: median A / median B <= 1.05. A and B alternate (A B, then B A, ...);
medians over --repeat runs. Both variants must agree on the finding counts.
Since one cppcheck run alone varies by up to 20 % here, it also prints A over
the time a pool would take for A's own analyzer durations (from the
database), in submission order: the suite's own cost without that spread.
Each run also says how much of the cores other processes used meanwhile
(machine-wide busy time from /proc/stat minus the run's own CPU time): on a
shared machine that, not kiskadee, decides most of the spread.

Packages: orig (or native) tarballs of bookworm main from the Debian mirror
apt uses here, cached under ~/.cache/kiskadee-bench/ and checked against the
Checksums-Sha256 of the Sources index. The default batch is 4 C packages
whose cppcheck times are 9-14 s each here, ordered so that two workers taking
jobs in order finish together (see DEFAULT_PACKAGES).

Run: .venv/bin/python bench/suite_overhead.py [--repeat N] [--packages a,b,c] [--workers N]
"""

import argparse
import csv
import datetime
import heapq
import multiprocessing
import os
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from intake import CACHE, bookworm_index  # noqa: E402  (the cached, parsed bookworm Sources index)

from kiskadee.analysis.sandbox.local import resolve_program  # noqa: E402
from kiskadee.config import AnalysisConfig  # noqa: E402
from kiskadee.sources.debian import SourceFile, SourcePackage, apt_mirror  # noqa: E402
from kiskadee.sources.download import download  # noqa: E402
from kiskadee.sources.fetcher import sha256_file  # noqa: E402
from kiskadee.sources.prepare import unpack_source  # noqa: E402

# Submission order matters: jobs are leased oldest first, so with two runners
# the 1st and 2nd go out at once and the 3rd and 4th to whichever frees first.
# Job times (cppcheck + flawfinder + the suite's work) on this machine when
# quiet: dash 13.8 s, diffstat 12.2 s, http-parser 10.4 s, bc 10.3 s. In this
# order one runner gets dash + bc (24.1 s), the other diffstat + http-parser
# (22.6 s). The packages the task suggested are too fast (libyaml 2 s, hello
# 4 s of cppcheck) or too slow here (mawk 44 s, jq 49 s, less 84 s, lz4 117 s;
# zlib, expat, lua5.4, gzip over 40 s); 4 packages of 10-14 s keep both
# scripts well within 10 minutes, even with other work on the cores.
DEFAULT_PACKAGES = ("dash", "diffstat", "http-parser", "bc")
CPPCHECK_ENABLE = "warning,style,performance,portability"
WAIT_SECONDS = 900


# --- the batch: real tarballs from the mirror, checked -------------------------------------------

class Tarball:
    """One package's main tarball on local disk."""

    def __init__(self, name: str, version: str, path: Path):
        self.name, self.version, self.path = name, version, path


def main_tarball(package: SourcePackage) -> SourceFile:
    """The orig tarball of a package, or its only tarball for a native one (a SourceFile)."""
    files = [f for f in package.files if ".tar." in f.name and not f.name.endswith(".asc")]
    orig = [f for f in files if ".orig.tar." in f.name and ".orig-" not in f.name]
    native = [f for f in files if ".debian.tar." not in f.name and ".orig" not in f.name]
    chosen = orig or native
    if len(chosen) != 1:
        raise SystemExit(f"{package.name}: cannot tell its main tarball among {[f.name for f in files]}")
    return chosen[0]


def fetch_batch(names: Sequence[str]) -> List[Tarball]:
    """The main tarball of each named bookworm main package, downloaded once and sha256-checked."""
    index = bookworm_index()
    mirror = None
    batch = []
    for name in names:
        package = index.get(name)
        if package is None:
            raise SystemExit(f"{name}: not a source package of bookworm main")
        wanted = main_tarball(package)
        path = CACHE / wanted.name
        if not path.exists() or sha256_file(path) != wanted.sha256:
            mirror = mirror or apt_mirror()
            path.unlink(missing_ok=True)
            print(f"downloading {wanted.name} ({wanted.size:,} bytes)", flush=True)
            download(f"{mirror}/{package.directory}/{wanted.name}", path,
                     max_bytes=wanted.size + 1, timeout=300, sha256=wanted.sha256)
        batch.append(Tarball(name, package.version, path))
    return batch


def describe(batch: Sequence[Tarball]) -> str:
    return ", ".join(f"{t.name} {t.version} ({t.path.stat().st_size / 1e6:.1f} MB)" for t in batch)


# --- variant A: the real suite ---------------------------------------------------------------------

class Suite:
    """A monitor and runners started as processes on one fresh configuration and database."""

    def __init__(self, root: Path, analyzers=("cppcheck", "flawfinder")):
        self.root, self.db = root, root / "k.db"
        self.config = root / "kiskadee.toml"
        (root / "work").mkdir()
        analyzer_list = ", ".join(f'"{a}"' for a in analyzers)
        self.config.write_text(
            f'[database]\npath = "{self.db}"\n'
            f'[service]\nruntime_dir = "{root / "run"}"\nstate_dir = "{root / "state"}"\n'
            f'[analysis]\nanalyzers = [{analyzer_list}]\nwork_dir = "{root / "work"}"\n')
        self.processes: Dict[str, subprocess.Popen] = {}
        self.cpu_used: Dict[str, float] = {}
        self.other = 0.0

    def _start(self, name: str, *args: str) -> None:
        with open(self.root / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "kiskadee", "-c", str(self.config), *args],
                stdout=log, stderr=subprocess.STDOUT)

    def start(self, runners: int) -> None:
        """Start the monitor, then the runners; return once every runner has said it is ready."""
        self._start("monitor", "monitor")
        self._wait(lambda: (self.root / "run" / "work.sock").exists(), 30, "the monitor's sockets")
        for number in range(1, runners + 1):
            self._start(f"r{number}", "runner", "--name", f"r{number}")
        self._wait(lambda: self.scalar("SELECT COUNT(*) FROM runner WHERE state = 'idle'") == runners,
                   30, f"{runners} idle runners")

    def _wait(self, predicate, timeout: float, what: str, interval: float = 0.05) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise SystemExit(f"{name} exited with {process.returncode} while waiting for {what}:\n"
                                     + self.log_tail(name))
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out after {timeout} s waiting for {what}")
            time.sleep(interval)

    def log_tail(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]

    def rows(self, sql: str, *params) -> list:
        if not self.db.exists():
            return []
        connection = sqlite3.connect(self.db, timeout=30)
        try:
            return connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError:        # schema not created yet
            return []
        finally:
            connection.close()

    def scalar(self, sql: str, *params):
        found = self.rows(sql, *params)
        return found[0][0] if found else None

    def submit(self, tarball: Tarball) -> None:
        result = subprocess.run([sys.executable, "-m", "kiskadee", "-q", "-c", str(self.config), "submit",
                                 tarball.name, tarball.version, str(tarball.path)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"submit {tarball.name} failed ({result.returncode}): {result.stderr}")

    def cpu_by_process(self) -> Dict[str, float]:
        """CPU time so far of the monitor and of each runner with the analyzers it has reaped."""
        return {name: process_cpu(p.pid) for name, p in self.processes.items()}

    def run_batch(self, batch: Sequence[Tarball]) -> "tuple[float, float]":
        """Submit every tarball, wait until all are done.

        Returns the seconds from the first submit to the last done, and the CPU
        seconds the suite (monitor, runners, analyzers, submit commands) used meanwhile.
        """
        cpu_before, children_before, self_before = self.cpu_by_process(), children_cpu(), self_cpu()
        busy_before = machine_busy()
        self.submitted_at = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        started = time.perf_counter()
        for tarball in batch:
            self.submit(tarball)

        def finished() -> bool:
            counts = dict(self.rows("SELECT state, COUNT(*) FROM version GROUP BY state"))
            if counts.get("failed"):
                raise SystemExit(f"a version failed: {self.rows('SELECT number, error FROM version')}\n"
                                 + "".join(self.log_tail(n) for n in self.processes))
            return counts.get("done", 0) == len(batch)

        self._wait(finished, WAIT_SECONDS, "every version done", interval=0.02)
        seconds = time.perf_counter() - started
        cpu_after = self.cpu_by_process()
        self.cpu_used = {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
        self.cpu_used["submit"] = children_cpu() - children_before
        cpu = sum(self.cpu_used.values())
        self.other = other_share(busy_before, seconds, cpu + self_cpu() - self_before)
        return seconds, cpu

    def report(self) -> dict:
        """What the database says about the batch: per job and per analyzer."""
        jobs = self.rows(
            "SELECT p.name, v.leased_by, v.started_at, v.finished_at, "
            "  (SELECT SUM(a.duration) FROM analysis a WHERE a.version_id = v.id) "
            "FROM version v JOIN package p ON p.id = v.package_id ORDER BY v.id")
        analyses = self.rows("SELECT package, analyzer, status, duration, finding_count FROM analysis_detail")
        bad = [row for row in analyses if row[2] != "ok"]
        if bad:
            raise SystemExit(f"analyses not ok: {bad}")
        first = min(s for _, _, s, _, _ in jobs)
        last = max(f for _, _, _, f, _ in jobs)
        return {"jobs": [dict(package=p, runner=r, wall=_seconds(s, f), analyzers=a or 0.0,
                              start=_seconds(first, s), end=_seconds(first, f))
                         for p, r, s, f, a in jobs],
                "first_lease": _seconds(str(self.submitted_at), first),
                "last_done": _seconds(str(self.submitted_at), last),
                "cpu": dict(self.cpu_used),
                "other": self.other,
                "findings": {(p, a): n for p, a, _, _, n in analyses},
                "analyzer_seconds": {(p, a): d for p, a, _, d, _ in analyses}}

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process and of the children it has reaped (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds every process on the machine has used since boot (/proc/stat, all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]                # idle and iowait
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK")


def other_share(busy_before: float, seconds: float, ours: float) -> float:
    """The share of all cores that other processes used during a run of ``seconds`` that used ``ours``."""
    others = machine_busy() - busy_before - ours
    return max(0.0, others) / (seconds * (os.cpu_count() or 1))


def self_cpu() -> float:
    """User + system CPU seconds of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    """User + system CPU seconds of this process's reaped children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _seconds(start: str, end: str) -> float:
    return (datetime.datetime.fromisoformat(str(end)) - datetime.datetime.fromisoformat(str(start))).total_seconds()


def run_suite(batch: Sequence[Tarball], runners: int) -> "tuple[float, float, dict]":
    """One batch through a fresh monitor and ``runners`` runners: (seconds, CPU seconds, report)."""
    root = Path(tempfile.mkdtemp(prefix="kkb"))
    suite = Suite(root)
    try:
        suite.start(runners)
        seconds, cpu = suite.run_batch(batch)
        return seconds, cpu, suite.report()
    finally:
        suite.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- variant B: the analyzers alone ----------------------------------------------------------------

def _direct_job(task: tuple) -> "tuple[str, float, float]":
    """cppcheck then flawfinder on one unpacked tree, as the runner runs them; their seconds.

    Each analyzer gets its own session, as kiskadee's local sandbox gives it
    (start_new_session): with the kernel's autogroup scheduling a session is
    also a scheduling group, so on a shared machine this decides the share of
    CPU the analyzer gets. Without it, with other work on the cores, B took
    1.6 times as long as A here.
    """
    name, tree, out, cppcheck, flawfinder = task
    started = time.perf_counter()
    with open(os.path.join(out, "cppcheck.stdout"), "wb") as stdout, \
            open(os.path.join(out, "cppcheck.stderr"), "wb") as stderr:
        subprocess.run([cppcheck, "--xml-version=2", "--quiet", f"--enable={CPPCHECK_ENABLE}", "-j1",
                        f"--output-file={out}/cppcheck.xml", "."],
                       cwd=tree, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, check=True,
                       start_new_session=True)
    middle = time.perf_counter()
    with open(os.path.join(out, "flawfinder.csv"), "wb") as stdout, \
            open(os.path.join(out, "flawfinder.stderr"), "wb") as stderr:
        subprocess.run([flawfinder, "--csv", "--minlevel=1", "."],
                       cwd=tree, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, check=True,
                       start_new_session=True)
    return name, middle - started, time.perf_counter() - middle


class DirectBatch:
    """The batch unpacked once (as kiskadee unpacks it), ready for the analyzers to run directly."""

    def __init__(self, batch: Sequence[Tarball]):
        self.root = Path(tempfile.mkdtemp(prefix="kkb"))
        self.trees = []
        for tarball in batch:
            work = self.root / tarball.name
            work.mkdir()
            self.trees.append((tarball.name, unpack_source(tarball.path, work, AnalysisConfig())))
        self.cppcheck, self.flawfinder = resolve_program("cppcheck"), resolve_program("flawfinder")

    def run(self, workers: int) -> "tuple[float, float, dict]":
        """All packages through a pool of ``workers`` processes, in batch order: (seconds, CPU seconds, report)."""
        outputs = Path(tempfile.mkdtemp(prefix="kkb", dir=self.root))
        tasks = []
        for name, tree in self.trees:
            out = outputs / name
            out.mkdir()
            tasks.append((name, str(tree), str(out), self.cppcheck, self.flawfinder))
        cpu_before, self_before, busy_before = children_cpu(), self_cpu(), machine_busy()
        started = time.perf_counter()
        pool = multiprocessing.get_context("fork").Pool(workers)
        timings = list(pool.imap_unordered(_direct_job, tasks, chunksize=1))
        seconds = time.perf_counter() - started
        pool.close()
        pool.join()                 # the workers exit and are reaped: their CPU time is counted
        cpu = children_cpu() - cpu_before
        other = other_share(busy_before, time.perf_counter() - started, cpu + self_cpu() - self_before)
        findings = {}
        for name, _tree in self.trees:
            errors = ElementTree.parse(outputs / name / "cppcheck.xml").getroot().find("errors")
            findings[(name, "cppcheck")] = len(list(errors.iter("error")))
            with open(outputs / name / "flawfinder.csv", newline="", errors="replace") as stream:
                findings[(name, "flawfinder")] = sum(1 for _ in csv.DictReader(stream))
        shutil.rmtree(outputs, ignore_errors=True)
        return seconds, cpu, {"findings": findings, "other": other,
                         "analyzer_seconds": {(n, a): t for n, c, f in timings
                                              for a, t in (("cppcheck", c), ("flawfinder", f))}}

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# --- reporting -------------------------------------------------------------------------------------

def list_schedule(durations: Sequence[float], workers: int) -> float:
    """Makespan when ``workers`` take the jobs in order, each the next job as soon as it is free."""
    free = [0.0] * workers
    for duration in durations:
        heapq.heapreplace(free, free[0] + duration)
    return max(free)


def analyzers_only_makespan(batch: Sequence[Tarball], report: dict, workers: int) -> float:
    """The time ``workers`` processes would need for this run's own analyzer durations, taken in order."""
    seconds = report["analyzer_seconds"]
    return list_schedule([sum(v for (package, _), v in seconds.items() if package == t.name) for t in batch],
                         workers)


def per_package_table(batch: Sequence[Tarball], a_reports: List[dict], b_reports: List[dict]) -> None:
    """Median per package: analyzer seconds inside the suite vs direct, and the job's wall time."""
    print("\nper package (medians): cppcheck / flawfinder seconds, suite vs direct; suite job wall time")
    print(f"  {'package':<12} {'cppcheck A':>10} {'B':>6} {'flawfinder A':>12} {'B':>6} "
          f"{'job wall A':>10} {'outside analyzers':>17} {'findings':>9}")
    for tarball in batch:
        name = tarball.name

        def med(reports, analyzer):
            return statistics.median(r["analyzer_seconds"][(name, analyzer)] for r in reports)

        jobs = [j for r in a_reports for j in r["jobs"] if j["package"] == name]
        wall = statistics.median(j["wall"] for j in jobs)
        outside = statistics.median(j["wall"] - j["analyzers"] for j in jobs)
        findings = sum(a_reports[0]["findings"][(name, a)] for a in ("cppcheck", "flawfinder"))
        print(f"  {name:<12} {med(a_reports, 'cppcheck'):>10.2f} {med(b_reports, 'cppcheck'):>6.2f} "
              f"{med(a_reports, 'flawfinder'):>12.2f} {med(b_reports, 'flawfinder'):>6.2f} "
              f"{wall:>10.2f} {outside:>17.2f} {findings:>9,}")


def check_same_findings(a_report: dict, b_report: dict) -> None:
    if a_report["findings"] != b_report["findings"]:
        raise SystemExit(f"finding counts differ: suite {a_report['findings']}, direct {b_report['findings']}")


def package_list(text: str) -> List[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError("a package is named twice")
    return names


def common_arguments(parser: argparse.ArgumentParser, packages: Sequence[str] = DEFAULT_PACKAGES) -> None:
    parser.add_argument("--repeat", type=int, default=2, help="runs of each variant (default 2)")
    parser.add_argument("--packages", type=package_list, default=list(packages), metavar="A,B,...",
                        help="bookworm main source packages, in submission order "
                             f"(default {','.join(packages)})")


def interference(report: dict) -> str:
    """How much other work shared the cores during a run, for the per-run line."""
    return f"other processes used {report['other']:.0%} of the cores meanwhile"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Run: .venv/bin/python bench/suite_overhead.py")
    common_arguments(parser)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="runners in A and pool processes in B (default: the number of cores, "
                             f"{os.cpu_count()})")
    args = parser.parse_args()
    batch = fetch_batch(args.packages)
    print(f"batch in submission order: {describe(batch)}")
    print(f"{args.workers} runners (A) vs a pool of {args.workers} processes (B), {os.cpu_count()} cores, "
          f"{args.repeat} runs each, interleaved")
    print("note: A includes what the suite adds around the analyzers (submit, unpacking, --version "
          "probes, report parsing, fingerprints, ZeroMQ, storing in SQLite); B's trees are unpacked "
          "beforehand, untimed", flush=True)
    direct = DirectBatch(batch)
    times: Dict[str, List[float]] = {"A": [], "B": []}
    cpus: Dict[str, List[float]] = {"A": [], "B": []}
    reports: Dict[str, List[dict]] = {"A": [], "B": []}
    try:
        for attempt in range(args.repeat):
            for variant in (("A", "B") if attempt % 2 == 0 else ("B", "A")):
                if variant == "A":
                    seconds, cpu, report = run_suite(batch, args.workers)
                    detail = (f"\n    first job leased {report['first_lease']:.2f} s after the first submit; "
                              f"last stored at {report['last_done']:.2f} s") + \
                        "\n    jobs (seconds from the first lease): " + ", ".join(
                        f"{j['package']} {j['runner']} {j['start']:.1f}-{j['end']:.1f}" for j in report["jobs"])
                else:
                    seconds, cpu, report = direct.run(args.workers)
                    detail = ""
                times[variant].append(seconds)
                cpus[variant].append(cpu)
                reports[variant].append(report)
                label = "A suite " if variant == "A" else "B direct"
                print(f"run {attempt + 1} {label}: {seconds:7.2f} s wall, {cpu:7.2f} s CPU "
                      f"({interference(report)}){detail}", flush=True)
        for a_report, b_report in zip(reports["A"], reports["B"]):
            check_same_findings(a_report, b_report)
    finally:
        direct.close()
    per_package_table(batch, reports["A"], reports["B"])
    a, b = statistics.median(times["A"]), statistics.median(times["B"])
    a_cpu, b_cpu = statistics.median(cpus["A"]), statistics.median(cpus["B"])
    print(f"\nmedian A (suite, first submit to last done): {a:.2f} s wall, {a_cpu:.2f} s CPU")
    print(f"median B (analyzers directly, pool of {args.workers}): {b:.2f} s wall, {b_cpu:.2f} s CPU")
    print(f"A/B wall = {a / b:.3f} (target <= 1.05); per-run ratios "
          + ", ".join(f"{x / y:.3f}" for x, y in zip(times["A"], times["B"])))
    print(f"A/B CPU  = {a_cpu / b_cpu:.3f} (the CPU time the suite adds; steadier than wall time but not "
          "immune to other load); per-run ratios " + ", ".join(f"{x / y:.3f}" for x, y in zip(cpus["A"], cpus["B"])))
    own = [x / analyzers_only_makespan(batch, r, args.workers) for x, r in zip(times["A"], reports["A"])]
    pool = [x / analyzers_only_makespan(batch, r, args.workers) for x, r in zip(times["B"], reports["B"])]
    print(f"A / (the same analyzer runs, as a pool would schedule them) = {statistics.median(own):.3f}; "
          "per run " + ", ".join(f"{x:.3f}" for x in own) + " (B measured the same way: "
          + ", ".join(f"{x:.3f}" for x in pool) + ")")
    print("  (the suite's own cost: submit, lease, unpack, --version probes, parsing, storing; free of the "
          "analyzers' run-to-run spread: the same cppcheck run varied by 20 % here on an idle machine)")
    print(f"finding counts identical in A and B: {sum(reports['A'][0]['findings'].values()):,} findings")


if __name__ == "__main__":
    main()
