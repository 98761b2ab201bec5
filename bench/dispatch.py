"""Dispatch throughput: how many small jobs one monitor hands out and stores per second, on SQLite
and on PostgreSQL.

A real monitor (``kiskadee monitor``, its own process on ipc sockets, a
fresh database, default verbosity) serves 1, 8 and 32 runner
processes. Jobs are tiny tarballs (one C file each, every one different so
no cached result applies) put in the spool as ``kiskadee submit`` does and
announced through kiskadee.service.intake.IntakeSender as ``local`` source
events, once every runner has said it is ready. Two kinds of runner:

  real  ``kiskadee runner`` with the local sandbox and one cheap analyzer
        (--analyzer, flawfinder by default): fetch from the spool, unpack,
        analyze, send the result. On a 2-CPU machine the runners, not the
        monitor, are then the bottleneck, so the monitor's CPU per job is
        the figure to read: one core divided by it is the monitor's ceiling.
  wire  a process that speaks the runner's side of the work protocol
        (ready, then the result for each job, then ready again; the same
        kiskadee.service.wire messages) and answers every job at once with
        the result a real runner produced for one of these tarballs (its
        findings included), so the monitor is the bottleneck and its
        dispatch-and-store rate is measured directly. It is a stand-in for
        ``kiskadee runner`` only at the analysis: the monitor, its socket,
        its database and every message are the real ones.

For each kind and runner count it prints: jobs dispatched per second
(first lease to last lease, from the database's started_at), results
stored per second (first lease to last finished_at), the end-to-end rate
(events sent to every job finished, by this script's clock), the monitor's
CPU share of one core and its CPU milliseconds per job (utime + stime from
/proc/PID/stat over that window), and the runners' CPU per job (their own
and their analyzers'). Separately, an intake stream: --events new versions
sent to a monitor with no runners, events recorded per second and the
monitor's CPU. With --profile the monitor of the largest wire run runs
under cProfile and the top entries are printed.

Every figure is taken on each database of --databases: a fresh SQLite file,
and a fresh database of a throw-away PostgreSQL server on a unix socket
(tests/postgresql_server.py, as the tests start it; fsync off, like SQLite's
synchronous=normal in WAL mode not syncing each commit). The monitor's CPU
share is its own process only; the PostgreSQL server's CPU is printed beside
it (its backends' CPU over the same window).

The target (issue 17): at least 200 small jobs dispatched and stored per
second on SQLite. The machine's load (``os.getloadavg``) is printed with
every figure: other sessions share the CPUs, so read the figures side by side.

Run: .venv/bin/python bench/dispatch.py [--databases sqlite,postgresql] [--kinds real,wire]
                                        [--runners 1,8,32] [--real-jobs 150]
                                        [--wire-jobs 2000] [--wire-source TARBALL] [--events 20000]
                                        [--profile] [--keep]
"""

import argparse
import datetime
import io
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import postgresql_server  # noqa: E402  (the tests' throw-away server)
from harness import other_connection  # noqa: E402

from kiskadee import config  # noqa: E402
from kiskadee.core.events import SourceEvent  # noqa: E402
from kiskadee.service import wire  # noqa: E402
from kiskadee.service.intake import IntakeSender  # noqa: E402
from kiskadee.sources import spool  # noqa: E402

C_SOURCE = "#include <string.h>\nvoid copy(char *out, const char *in) { strcpy(out, in); }  /* job {n} */\n"
FINISHED = ("done", "failed", "unresolved")
TICKS = os.sysconf("SC_CLK_TCK")
DEADLINE = 240.0    # seconds one run may take before it is cut short and reported as such


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="sqlite, postgresql (default both)")
    parser.add_argument("--kinds", default="real,wire", help="runner kinds: real, wire (default both)")
    parser.add_argument("--runners", default="1,8,32", help="runner counts (default 1,8,32)")
    parser.add_argument("--analyzer", default="flawfinder", help="the real runners' analyzer (default flawfinder)")
    parser.add_argument("--real-jobs", type=int, default=150, help="jobs per real run (default 150)")
    parser.add_argument("--wire-jobs", type=int, default=2000, help="jobs per wire run (default 2000)")
    parser.add_argument("--events", type=int, default=20000, help="intake stream events (default 20000; 0: none)")
    parser.add_argument("--wire-source", default="",
                        help="the tarball whose real result the wire runners send (default: the tiny one)")
    parser.add_argument("--profile", action="store_true", help="cProfile the monitor of the largest wire run")
    parser.add_argument("--keep", action="store_true", help="keep the working directories (logs, databases)")
    return parser.parse_args(argv)


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def cpu_seconds(pid: int, children: bool = False) -> float:
    """utime + stime of ``pid`` (and of its waited-for children) from /proc, in seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / TICKS


def tarball(n: int) -> bytes:
    """A tiny .tar.gz of one C file that differs from every other job's."""
    data = C_SOURCE.replace("{n}", str(n)).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"job{n}-1.0/copy.c")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Site:
    """A monitor on a fresh database in a short temporary directory, and the runners started on it."""

    def __init__(self, analyzer: str, keep: bool, server: Optional["postgresql_server.Server"] = None):
        self.root = Path(tempfile.mkdtemp(prefix="kkd"))    # short: ipc paths must stay under 107 bytes
        self.keep = keep
        self.db = server.fresh_database(schema=False) if server else str(self.root / "k.db")
        self.config = self.root / "kiskadee.toml"
        database = f'url = "{self.db}"' if server else f'path = "{self.db}"'
        self.config.write_text(
            f'[database]\n{database}\n\n'
            f'[service]\nruntime_dir = "{self.root / "run"}"\nstate_dir = "{self.root / "state"}"\n\n'
            f'[analysis]\nanalyzers = ["{analyzer}"]\nwork_dir = "{self.root / "work"}"\n\n'
            "[fetchers.debian]\nenabled = false\n")
        (self.root / "work").mkdir()
        self.settings = config.load(str(self.config))
        self.monitor: Optional[subprocess.Popen] = None
        self.runners: List[subprocess.Popen] = []
        self.profile = self.root / "monitor.prof"

    def command(self, *args: str) -> List[str]:
        return [sys.executable, "-m", "kiskadee", "-c", str(self.config), *args]

    def _log(self, name: str):
        return open(self.root / f"{name}.log", "ab")

    def start_monitor(self, profile: bool = False) -> None:
        prefix = [sys.executable, "-m", "cProfile", "-o", str(self.profile)] if profile else [sys.executable]
        with self._log("monitor") as log:
            self.monitor = subprocess.Popen(prefix + self.command("monitor")[1:], stdout=log,
                                            stderr=subprocess.STDOUT)
        wait_for(lambda: (self.root / "run" / "work.sock").exists(), 30, "the monitor's sockets")

    def start_runners(self, kind: str, count: int, result: Path) -> None:
        endpoint = self.settings.service.work_endpoint
        for number in range(1, count + 1):
            name = f"r{number}"
            args = (self.command("runner", "--name", name) if kind == "real" else
                    [sys.executable, __file__, "wire-runner", endpoint, name, str(result)])
            with self._log(name) as log:
                self.runners.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        wait_for(lambda: self.count("SELECT COUNT(*) FROM runner WHERE state = 'idle'") >= count, 120,
                 f"{count} runners to say they are ready")

    def spool(self, jobs: int) -> List[SourceEvent]:
        """``jobs`` tarballs copied into the spool as ``kiskadee submit`` does; their events."""
        folder = self.root / "sources"
        folder.mkdir(exist_ok=True)
        events = []
        for n in range(jobs):
            path = folder / f"job{n}-1.0.tar.gz"
            path.write_bytes(tarball(n))
            entry, _ = spool.add(path, Path(self.settings.service.spool), self.settings.analysis.max_download_bytes)
            events.append(SourceEvent("local", f"job{n}", "1.0", source_url=str(entry), sha256=entry.name))
        return events

    def count(self, sql: str) -> int:
        try:
            with other_connection(self.db) as connection:
                return connection.rows(sql)[0][0] or 0
        except Exception as exc:                # not created or not migrated yet
            if "no such table" in str(exc) or "does not exist" in str(exc):
                return 0
            raise

    def rows(self, sql: str) -> list:
        with other_connection(self.db) as connection:
            return connection.rows(sql)

    def stop(self) -> None:
        for process in self.runners:
            if process.poll() is None:
                process.terminate()
        for process in self.runners:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.monitor is not None and self.monitor.poll() is None:
            self.monitor.send_signal(signal.SIGTERM)    # a clean stop, so cProfile writes its file
            try:
                self.monitor.wait(30)
            except subprocess.TimeoutExpired:
                self.monitor.kill()
                self.monitor.wait()

    def remove(self) -> None:
        if self.keep:
            print(f"    kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def send_all(site: Site, events: List[SourceEvent]) -> None:
    with IntakeSender(site.settings.service.intake_endpoint) as sender:
        for event in events:
            sender.send(event)
        if not sender.flush(120):
            raise SystemExit(f"the monitor did not acknowledge {sender.pending} events")


def stamp(value) -> float:
    """A timestamp as SQLite (text) or PostgreSQL (datetime) gives it, in seconds."""
    return (value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(value)).timestamp()


def job_run(kind: str, runners: int, jobs: int, args, result: Path, profile: bool, server) -> Dict[str, float]:
    """One run: ``runners`` of ``kind`` drain ``jobs`` jobs; the figures."""
    site = Site(args.analyzer, args.keep, server)
    try:
        events = site.spool(jobs)
        site.start_monitor(profile)
        site.start_runners(kind, runners, result)
        pid = site.monitor.pid
        runners_before = sum(cpu_seconds(p.pid, children=True) for p in site.runners)
        cpu0, t0, load_then, server0 = cpu_seconds(pid), time.perf_counter(), load(), server_cpu(server)
        send_all(site, events)
        finished = drain(site, jobs)
        cpu1, t1, server1 = cpu_seconds(pid), time.perf_counter(), server_cpu(server)
        runners_cpu = sum(cpu_seconds(p.pid, children=True) for p in site.runners) - runners_before
        figures = rates(site, finished)
        figures.update({"jobs": jobs, "finished": finished, "end-to-end/s": finished / (t1 - t0), "wall": t1 - t0,
                        "monitor cpu %": 100 * (cpu1 - cpu0) / (t1 - t0),
                        "monitor ms/job": 1000 * (cpu1 - cpu0) / max(1, finished),
                        "runner ms/job": 1000 * runners_cpu / max(1, finished), "load": load_then,
                        "server ms/job": 1000 * (server1 - server0) / max(1, finished)})
    finally:
        site.stop()
    if profile:
        print_profile(site.profile)
    site.remove()
    return figures


def drain(site: Site, jobs: int) -> int:
    """Wait until ``jobs`` versions are finished, or DEADLINE seconds; how many are."""
    deadline = time.monotonic() + DEADLINE
    finished = 0
    while finished < jobs and time.monotonic() < deadline:
        time.sleep(0.2)
        finished = site.count("SELECT COUNT(*) FROM version WHERE state IN ('done', 'failed', 'unresolved')")
    return finished


def rates(site: Site, finished: int) -> Dict[str, float]:
    """Jobs dispatched per second (first to last lease) and stored per second (first lease to last
    stored result), by the timestamps the monitor wrote; and how many ended done and failed."""
    ((first, last_lease, last_done, done, failed),) = site.rows(
        "SELECT MIN(started_at), MAX(started_at), MAX(finished_at), SUM(CASE WHEN state = 'done' THEN 1 END), "
        "SUM(CASE WHEN state != 'done' THEN 1 END) FROM version WHERE state IN ('done', 'failed', 'unresolved')")
    if not finished:
        return {"dispatched/s": 0.0, "stored/s": 0.0, "done": 0, "failed": 0}
    return {"dispatched/s": finished / max(1e-3, stamp(last_lease) - stamp(first)),
            "stored/s": finished / max(1e-3, stamp(last_done) - stamp(first)),
            "done": done or 0, "failed": failed or 0}


def intake_run(events_count: int, args, server) -> Dict[str, float]:
    """A monitor with no runners records ``events_count`` new versions; the figures."""
    site = Site(args.analyzer, args.keep, server)
    try:
        path = site.root / "one.tar.gz"
        path.write_bytes(tarball(0))
        entry, _ = spool.add(path, Path(site.settings.service.spool), site.settings.analysis.max_download_bytes)
        frames = [wire.encode("source", fetcher="local", package=f"pkg{n}", version="1.0", source_url=str(entry),
                              sha256=entry.name) for n in range(events_count)]
        site.start_monitor()
        pid = site.monitor.pid
        cpu0, t0, load_then, server0 = cpu_seconds(pid), time.perf_counter(), load(), server_cpu(server)
        with IntakeSender(site.settings.service.intake_endpoint) as sender:
            for frame in frames:
                sender.send_frame(frame)
            if not sender.flush(120):
                raise SystemExit(f"the monitor did not acknowledge {sender.pending} events")
        cpu1, t1, server1 = cpu_seconds(pid), time.perf_counter(), server_cpu(server)
        queued = site.count("SELECT COUNT(*) FROM version WHERE state = 'queued'")
    finally:
        site.stop()
    site.remove()
    return {"events": events_count, "queued": queued, "events/s": events_count / (t1 - t0),
            "monitor cpu %": 100 * (cpu1 - cpu0) / (t1 - t0),
            "monitor us/event": 1e6 * (cpu1 - cpu0) / events_count, "load": load_then,
            "server us/event": 1e6 * (server1 - server0) / events_count}


def real_result(analyzer: str, source: str) -> Path:
    """The result a real runner sends for ``source`` (else one of the tiny tarballs), its runs as on the wire,
    in a file."""
    from kiskadee.analysis.analyzers import make_analyzers
    from kiskadee.analysis.pipeline import analyze_source
    from kiskadee.analysis.sandbox import make_sandbox
    from kiskadee.analysis.sandbox.base import Limits
    from kiskadee.sources.local import LocalFetcher

    site = Site(analyzer, keep=False)
    try:
        settings, path = site.settings, Path(source).resolve() if source else site.root / "job0-1.0.tar.gz"
        if not source:
            path.write_bytes(tarball(0))
        analysis = settings.analysis
        analyzed = analyze_source(SourceEvent("local", "job0", "1.0", source_url=str(path)),
                                  LocalFetcher.for_command_line(settings),
                                  make_analyzers(analysis.analyzers, settings.analyzers),
                                  make_sandbox(settings.sandbox.backend, settings.sandbox),
                                  Limits(analysis.timeout, analysis.memory_limit_mb, analysis.max_output_bytes),
                                  analysis)
        runs = [run.to_wire() for run in analyzed.runs]
    finally:
        site.remove()
    handle, name = tempfile.mkstemp(prefix="kkd-result", suffix=".json")
    with os.fdopen(handle, "w") as out:
        json.dump(runs, out)
    described = ", ".join(f"{run['status']}, {len(run['findings'])} findings" for run in runs)
    print(f"wire runners answer with {analyzer}'s real result for {Path(source).name if source else 'a tiny tarball'}: "
          f"{described}")
    return Path(name)


def wire_runner(endpoint: str, name: str, result: str) -> int:
    """The runner's side of the work protocol, answering each job at once with the recorded ``result``."""
    runs = json.loads(Path(result).read_text())
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, name.encode())
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    ready = wire.encode("ready", runner=name)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sock.send(ready)
    while True:
        if not sock.poll(5000):
            sock.send(ready)            # as a real idle runner re-announces itself
            continue
        message = wire.decode(sock.recv())
        if message.type == "job":
            sock.send(wire.encode("result", runner=name, job=message.fields["job"], lease=message.fields["lease"],
                                  runs=runs, source_url=message.fields["source_url"], sha256=message.fields["sha256"]))
        else:                           # ack or reject: ask for the next job
            sock.send(ready)


def print_profile(path: Path) -> None:
    if not path.exists():
        print("    (no profile written: the monitor did not stop cleanly)")
        return
    for order, count in (("tottime", 20), ("cumulative", 25)):
        out = io.StringIO()
        pstats.Stats(str(path), stream=out).strip_dirs().sort_stats(order).print_stats(count)
        text = out.getvalue()
        print(f"    monitor profile, top {count} by {order}:")
        print("\n".join("      " + line for line in text[text.find("   ncalls"):].rstrip().splitlines()))


def report_job(kind: str, runners: int, figures: Dict[str, float]) -> None:
    print(f"{kind:<5} {runners:>3} runners: {figures['finished']}/{figures['jobs']} jobs finished "
          f"({figures['done']} done, {figures['failed']} failed) in {figures['wall']:.1f} s; "
          f"dispatched {figures['dispatched/s']:.0f}/s, stored {figures['stored/s']:.0f}/s, "
          f"end-to-end {figures['end-to-end/s']:.0f}/s; monitor CPU {figures['monitor cpu %']:.0f}% of a core, "
          f"{figures['monitor ms/job']:.2f} ms/job (ceiling {1000 / max(1e-6, figures['monitor ms/job']):.0f} jobs/s "
          f"per core); database server {figures['server ms/job']:.2f} CPU ms/job; "
          f"runners {figures['runner ms/job']:.1f} CPU ms/job; {figures['load']}", flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    if argv is None and sys.argv[1:2] == ["wire-runner"]:
        return wire_runner(*sys.argv[2:5])
    args = parse_args(argv)
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    counts = [int(count) for count in args.runners.split(",")]
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    print(f"dispatch: {os.cpu_count()} CPUs, {' and '.join(databases)}, real runners analyze with"
          f" {args.analyzer}; {load()}")
    result = real_result(args.analyzer, args.wire_source) if "wire" in kinds else None
    server = start_server() if "postgresql" in databases else None
    try:
        for kind in kinds:
            jobs = args.real_jobs if kind == "real" else args.wire_jobs
            for runners in counts:
                for database in databases:
                    profile = args.profile and kind == "wire" and runners == max(counts)
                    on = server if database == "postgresql" else None
                    print(f"{database:<10}", end=" ")
                    report_job(kind, runners, job_run(kind, runners, jobs, args, result, profile, on))
        for database in databases if args.events else ():
            figures = intake_run(args.events, args, server if database == "postgresql" else None)
            print(f"{database:<10} intake: {figures['events']} events ({figures['queued']} queued) at"
                  f" {figures['events/s']:,.0f}/s; monitor CPU {figures['monitor cpu %']:.0f}% of a core,"
                  f" {figures['monitor us/event']:.0f} us/event; database server {figures['server us/event']:.0f}"
                  f" us/event; {figures['load']}", flush=True)
    finally:
        if result is not None:
            result.unlink()
        if server is not None:
            server.stop()
            shutil.rmtree(server.root, ignore_errors=True)
    return 0


def start_server():
    """A throw-away PostgreSQL server, as the tests start it (tests/postgresql_server.py)."""
    server = postgresql_server.Server(Path(tempfile.mkdtemp(prefix="kkpg")))
    server.start()
    return server


def server_cpu(server) -> float:
    """CPU seconds of every process of the PostgreSQL server (0 without one): its backends included."""
    if server is None:
        return 0.0
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return cpu_seconds(postmaster) + sum(cpu_seconds(int(pid)) for pid in children)


if __name__ == "__main__":
    sys.exit(main())
