"""Chaos: kill -9 the monitor and the runners at random while jobs go through; nothing lost, doubled or stuck.

A real monitor and N runners (processes on ipc sockets, the local sandbox, a
fresh SQLite database) analyze --jobs tiny C tarballs sent with the real
``kiskadee submit`` (a submit that fails is run again, as a person would).
Meanwhile the monitor or a runner, picked at random, is killed with SIGKILL
--kills times, at random intervals averaging --gap seconds, and restarted at
once with the same name (as systemd restarts a unit); while work remains, a
runner kill waits up to PATIENCE seconds for a runner holding a lease, so
kills land mid-job. Then the queue is left to drain for up to --drain seconds and
the database is audited:

  lost     submitted, but no version row, or a row that did not end 'done'
           with one analysis per analyzer (and not queued or leased: stuck)
  doubled  a version stored twice, two analyses of one analyzer for one
           version, or an analysis whose finding rows differ from its count
           or from the other analyses of that analyzer (every tarball holds
           the same code)
  failed   the version ended 'failed' (max_attempts is set above --kills,
           so killing alone cannot exhaust it), or an analysis is not 'ok'
           (killing must not make an analyzer fail)
  stuck    still queued or leased when the drain deadline passed
  crashed  a monitor or runner that ended without being killed (restarted
           at once, as systemd would)
  integrity  PRAGMA integrity_check once every process is gone

It exits 1 if anything is lost, doubled, failed, stuck or crashed or the
integrity check fails, 0 otherwise; --deadline bounds the whole run. Not
part of the test suite (about a minute with the defaults on 2 cores).

Run: .venv/bin/python bench/chaos.py [--jobs 150] [--kills 50] [--runners 2] [--seed S] [--analyzers a,b] [--keep]
"""

import argparse
import io
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

# Findings for both default analyzers (flawfinder: strcpy; cppcheck: the null dereference).
C_SOURCE = b"""#include <string.h>
void copy(char *out, const char *in) { char buf[16]; strcpy(buf, in); strcpy(out, buf); }
int deref(void) { int *p = 0; return *p; }
"""
FINISHED = ("done", "failed", "seen", "unresolved")
VERSIONS = "version v JOIN package p ON p.id = v.package_id"
ANALYSES = ("analysis a JOIN version v ON v.id = a.version_id JOIN package p ON p.id = v.package_id "
            "JOIN analyzer z ON z.id = a.analyzer_id")
Job = Tuple[str, str, Path]         # package, version, tarball


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=150, help="versions submitted (default 150)")
    parser.add_argument("--kills", type=int, default=50, help="kill -9 of the monitor or a runner (default 50)")
    parser.add_argument("--runners", type=int, default=2, help="runner processes (default 2)")
    parser.add_argument("--gap", type=float, default=0.7,
                        help="mean seconds between kills (default 0.7: the kills end about when the jobs do)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock, printed)")
    parser.add_argument("--analyzers", default="flawfinder,cppcheck", help="analyzers per job")
    parser.add_argument("--drain", type=float, default=180.0,
                        help="seconds the queue may take to drain after the last kill (default 180)")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds the whole run may take")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, database)")
    return parser.parse_args(argv)


def c_tarball(path: Path, top: str) -> Path:
    """A tiny real .tar.gz holding ``top/src/copy.c``, written at ``path``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"{top}/src/copy.c")
        info.size, info.mode = len(C_SOURCE), 0o644
        tar.addfile(info, io.BytesIO(C_SOURCE))
    path.write_bytes(buffer.getvalue())
    return path


def make_jobs(root: Path, count: int) -> List[Job]:
    """``count`` versions: 50 packages with several versions each, so lineage is exercised too."""
    folder = root / "sources"
    folder.mkdir()
    jobs = []
    for index in range(count):
        package, version = f"chaos{index % 50:02d}", f"1.{index // 50}"
        jobs.append((package, version, c_tarball(folder / f"{package}-{version}.tar.gz", f"{package}-{version}")))
    return jobs


class Cluster:
    """A monitor and runners as real processes on one configuration, each restartable by name."""

    def __init__(self, root: Path, runners: int, analyzers: List[str], max_attempts: int):
        self.root, self.db = root, root / "k.db"
        self.runners = [f"r{number}" for number in range(1, runners + 1)]
        self.config = root / "kiskadee.toml"
        self.config.write_text(
            f'[database]\npath = "{self.db}"\n\n'
            f'[service]\nruntime_dir = "{root / "run"}"\nstate_dir = "{root / "state"}"\n\n'
            f"[analysis]\nanalyzers = {json.dumps(analyzers)}\n\n"
            # Short leases and backoffs so a killed runner's job comes back within seconds.
            + f'[monitor]\nanalyze = "every"\nlease_seconds = 3\nbackoff_seconds = 0.2\n'
              f"max_attempts = {max_attempts}\n\n"
            + "[runner]\nheartbeat_seconds = 1\n")
        self.processes: Dict[str, subprocess.Popen] = {}
        self.crashes: List[str] = []        # processes that ended without being killed

    def command(self, *args: str) -> List[str]:
        return [sys.executable, "-m", "kiskadee", "-c", str(self.config), *args]

    def start(self, name: str) -> None:
        args = ("monitor",) if name == "monitor" else ("runner", "--name", name)
        with open(self.root / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(self.command(*args), stdout=log, stderr=subprocess.STDOUT)

    def start_all(self) -> None:
        self.start("monitor")
        deadline = time.monotonic() + 30
        while not (self.root / "run" / "intake.sock").exists():
            if time.monotonic() > deadline:
                raise SystemExit("the monitor did not open its sockets in 30 s; see " + str(self.root / "monitor.log"))
            time.sleep(0.1)
        for name in self.runners:
            self.start(name)

    def kill_and_restart(self, name: str) -> None:
        """SIGKILL ``name``, wait for it, start it again (a process that had already died is just restarted)."""
        process = self.processes[name]
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(30)
        self.start(name)

    def revive(self) -> List[str]:
        """Restart every process that ended by itself (as systemd would); their names."""
        ended = [name for name, process in self.processes.items() if process.poll() is not None]
        for name in ended:
            self.crashes.append(f"{name} exited with {self.processes[name].returncode}: {self.last_error(name)}")
            self.start(name)
        return ended

    def last_error(self, name: str) -> str:
        """The last line of a process's log that names an error, for the report."""
        lines = (self.root / f"{name}.log").read_text(errors="replace").splitlines()
        return next((line for line in reversed(lines) if "Error" in line or "error" in line), "(no error logged)")

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(30)

    def rows(self, sql: str, *params) -> list:
        with sqlite3.connect(self.db, timeout=30) as connection:
            return connection.execute(sql, params).fetchall()

    def leaseholders(self) -> List[str]:
        """The runners holding a lease now, by the database (empty while it cannot be read)."""
        try:
            return sorted({name for (name,) in self.rows("SELECT leased_by FROM version WHERE state = 'leased'")}
                          & set(self.runners))
        except sqlite3.OperationalError:
            return []

    def queue_empty(self) -> bool:
        """Whether no version is queued or leased (so no runner will hold a lease soon)."""
        try:
            return not self.rows("SELECT 1 FROM version WHERE state IN ('queued', 'leased') LIMIT 1")
        except sqlite3.OperationalError:
            return False

    def states(self) -> Dict[Tuple[str, str], str]:
        """(package, version) -> state of every version in the database."""
        try:
            return {(name, number): state for name, number, state in self.rows(
                "SELECT p.name, v.number, v.state FROM version v JOIN package p ON p.id = v.package_id")}
        except sqlite3.OperationalError:        # not created or not migrated yet
            return {}


class Submitter:
    """Runs ``kiskadee submit`` for each job, at most two at a time, again for one that failed."""

    def __init__(self, cluster: Cluster, jobs: List[Job]):
        self.cluster, self.waiting = cluster, list(jobs)
        self.running: List[Tuple[Job, subprocess.Popen]] = []
        self.retries = 0

    @property
    def finished(self) -> bool:
        return not self.waiting and not self.running

    def step(self) -> None:
        """Reap finished submits (queueing failed ones again) and start the next one if two are not running."""
        for entry in list(self.running):
            job, process = entry
            if process.poll() is None:
                continue
            self.running.remove(entry)
            if process.returncode != 0:
                self.retries += 1
                self.waiting.insert(0, job)
        if self.waiting and len(self.running) < 2:
            job = self.waiting.pop(0)
            command = self.cluster.command("submit", job[0], job[1], str(job[2]))
            self.running.append((job, subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                                       stderr=subprocess.DEVNULL)))

    def stop(self) -> None:
        for _, process in self.running:
            process.kill()
            process.wait(30)


PATIENCE = 10.0     # seconds a due runner kill waits for a runner to hold a lease while work remains


def target(cluster: Cluster, role: str, rng: random.Random, patient: bool) -> Tuple[Optional[str], bool]:
    """The process to kill for ``role`` ("monitor" or "runner") and whether it holds a lease; None: wait a bit."""
    if role == "monitor":
        return "monitor", False
    busy = cluster.leaseholders()
    if busy:
        return rng.choice(busy), True
    return (None, False) if patient else (rng.choice(cluster.runners), False)


def chaos(cluster: Cluster, submitter: Submitter, args, rng: random.Random, deadline: float) -> Dict[str, int]:
    """Kill -9 a random process --kills times while the submits go on; the kills per process, and mid-job."""
    kills = dict.fromkeys(["monitor"] + cluster.runners, 0)
    kills["mid-job"] = 0                    # runner kills that hit a runner holding a lease
    roles = ["monitor"] + ["runner"] * len(cluster.runners)
    role, due = rng.choice(roles), time.monotonic() + rng.uniform(0.2, 2 * args.gap)
    while kills["monitor"] + sum(kills[name] for name in cluster.runners) < args.kills and time.monotonic() < deadline:
        submitter.step()
        cluster.revive()
        now = time.monotonic()
        patient = now - due < PATIENCE and not (submitter.finished and cluster.queue_empty())
        victim, mid_job = target(cluster, role, rng, patient) if now >= due else (None, False)
        if victim is not None:
            cluster.kill_and_restart(victim)
            kills[victim] += 1
            kills["mid-job"] += mid_job
            role, due = rng.choice(roles), now + rng.uniform(0.2, 2 * args.gap)
        time.sleep(0.05)
    return kills


def drain(cluster: Cluster, submitter: Submitter, jobs: List[Job], deadline: float) -> None:
    """Until every job's version is finished, or ``deadline``; submits still due go on meanwhile."""
    expected = {(package, version) for package, version, _ in jobs}
    while time.monotonic() < deadline:
        submitter.step()
        cluster.revive()
        states = cluster.states()
        if submitter.finished and all(states.get(key) in FINISHED for key in expected):
            return
        time.sleep(0.5)


def doubled(cluster: Cluster) -> List[str]:
    """Every sign of something stored twice, one line each."""
    problems = [f"version {name} {number} stored {count} times" for name, number, count in cluster.rows(
        f"SELECT p.name, v.number, COUNT(*) FROM {VERSIONS} GROUP BY v.package_id, v.number HAVING COUNT(*) > 1")]
    problems += [f"{name} {number}: {count} {analyzer} analyses" for name, number, analyzer, count in cluster.rows(
        f"SELECT p.name, v.number, z.name, COUNT(*) FROM {ANALYSES} GROUP BY a.version_id, z.name HAVING COUNT(*) > 1")]
    rows = cluster.rows(f"SELECT p.name, v.number, z.name, a.finding_count, "
                        f"(SELECT COUNT(*) FROM finding f WHERE f.analysis_id = a.id) "
                        f"FROM {ANALYSES} WHERE a.status = 'ok'")
    counts: Dict[str, List[int]] = {}
    for _, _, analyzer, _, stored in rows:
        counts.setdefault(analyzer, []).append(stored)
    # Every tarball holds the same code: an analyzer's usual count is what each of its analyses should hold.
    usual = {analyzer: max(set(stored), key=stored.count) for analyzer, stored in counts.items()}
    problems += [f"{name} {number}: {analyzer} has {stored} finding rows, count {count}, usually {usual[analyzer]}"
                 for name, number, analyzer, count, stored in rows if stored != count or stored != usual[analyzer]]
    return problems


def version_problems(cluster: Cluster, jobs: List[Job], analyzers: List[str]) -> Dict[str, List[str]]:
    """The submitted versions that are lost, failed or stuck, one line each."""
    states = cluster.states()
    errors = {(name, number): error for name, number, error in cluster.rows(
        f"SELECT p.name, v.number, v.error FROM {VERSIONS} WHERE v.state = 'failed'")}
    complete = {(name, number) for name, number in cluster.rows(
        f"SELECT p.name, v.number FROM {VERSIONS} JOIN analysis a ON a.version_id = v.id "
        "GROUP BY v.id HAVING COUNT(DISTINCT a.analyzer_id) >= ?", len(analyzers))}
    found: Dict[str, List[str]] = {"lost": [], "failed": [], "stuck": []}
    for package, version, _ in jobs:
        state = states.get((package, version))
        if state in ("queued", "leased"):
            found["stuck"].append(f"{package} {version} ({state})")
        elif state == "failed":
            found["failed"].append(f"{package} {version}: {errors[(package, version)]}")
        elif state != "done" or (package, version) not in complete:
            found["lost"].append(f"{package} {version} ({state or 'no version row'})")
    return found


def audit(cluster: Cluster, jobs: List[Job], analyzers: List[str]) -> Dict[str, List[str]]:
    """What went wrong, by kind: lost, doubled, failed, stuck, crashed (one line per version or problem)."""
    found = version_problems(cluster, jobs, analyzers)
    found["failed"] += [f"{name} {number}: {analyzer} {status}: {error[:200]}" for name, number, analyzer, status, error
                        in cluster.rows(f"SELECT p.name, v.number, z.name, a.status, a.error FROM {ANALYSES} "
                                        "WHERE a.status != 'ok'")]
    found["doubled"] = doubled(cluster)
    found["crashed"] = cluster.crashes
    return found


def integrity(db: Path) -> str:
    with sqlite3.connect(db, timeout=30) as connection:
        return ", ".join(row[0] for row in connection.execute("PRAGMA integrity_check"))


def report(args, seed: int, cluster: Cluster, kills: Dict[str, int], found: Dict[str, List[str]], checked: str,
           submitter: Submitter, times: Tuple[float, float, float]) -> None:
    runner_kills = sum(kills[name] for name in cluster.runners)
    ((leases, versions),) = cluster.rows("SELECT COALESCE(SUM(attempts), 0), COUNT(*) FROM version")
    print(f"chaos: {args.runners} runners, analyzers {args.analyzers}, seed {seed}")
    print(f"kills      {kills['monitor'] + runner_kills} (monitor {kills['monitor']}, runners {runner_kills}, "
          f"{kills['mid-job']} of them holding a lease by the database)")
    print(f"jobs       {args.jobs} (submits run again after a failure: {submitter.retries}; "
          f"leased again after a runner went silent: {leases - versions})")
    for kind in ("lost", "doubled", "failed", "stuck", "crashed"):
        print(f"{kind:<10} {len(found[kind])}")
        for line in found[kind][:10]:
            print(f"    {line}")
    print(f"integrity  {checked}")
    total, in_chaos, in_drain = times
    print(f"time       {total:.1f} s (chaos {in_chaos:.1f} s, drain {in_drain:.1f} s)")


def run(args, seed: int, root: Path) -> bool:
    """One chaos run in ``root``, reported on stdout; True if nothing went wrong."""
    analyzers = [name.strip() for name in args.analyzers.split(",") if name.strip()]
    cluster = Cluster(root, args.runners, analyzers, max_attempts=args.kills + 3)
    jobs = make_jobs(root, args.jobs)
    submitter = Submitter(cluster, jobs)
    started = time.monotonic()
    deadline = started + args.deadline
    try:
        cluster.start_all()
        kills = chaos(cluster, submitter, args, random.Random(seed), deadline)
        chaos_over = time.monotonic()
        drain(cluster, submitter, jobs, min(deadline, chaos_over + args.drain))
        drained = time.monotonic()
    finally:
        submitter.stop()
        cluster.stop_all()
    found = audit(cluster, jobs, analyzers)
    checked = integrity(cluster.db)
    report(args, seed, cluster, kills, found, checked, submitter,
           (drained - started, chaos_over - started, drained - chaos_over))
    return not any(found.values()) and checked == "ok"


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % 1_000_000
    root = Path(tempfile.mkdtemp(prefix="kkchaos"))     # short: ipc paths must stay under 107 bytes
    try:
        clean = run(args, seed, root)
    finally:
        if args.keep:
            print(f"kept       {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
