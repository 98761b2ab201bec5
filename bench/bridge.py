"""Bridge throughput: Anitya messages through a real fedmsg-hub and the bridge into the monitor's database.

A real ``kiskadee monitor`` (its own process, ipc sockets, a fresh SQLite
database) and a real ``fedmsg-hub`` that loads ``AnityaConsumer`` through
its entry point with the shipped ``packaging/fedmsg.d/kiskadee.py``. A local
publisher (a ZeroMQ XPUB socket on an ipc path, which the hub lists in its
``endpoints``) sends N fedmsg envelopes built from the real Anitya messages
in ``tests/fixtures/anitya/``, each with its own project name so that every
message is a new version, as fast as the hub takes them. Measured: messages
per second from the first send until the last version is in the database
(target >= 5,000/s), and that none was lost (the database holds N versions
and the bridge's log reports no drop).

Run: .venv/bin/python bench/bridge.py [--messages N] [--kind v1|v2|both] [--repeat R]
"""

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "anitya"
V2_TOPIC = "org.release-monitoring.prod.anitya.project.version.update.v2"
BASE_CONFIG = """\
config = dict(
    endpoints={{"bench": ["{endpoint}"]}},
    zmq_enabled=True, validate_signatures=False, sign_messages=False, environment="dev",
    logging=dict(version=1,
        formatters=dict(bare={{"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}}),
        handlers=dict(console={{"class": "logging.StreamHandler", "formatter": "bare",
                                "stream": "ext://sys.stderr"}}),
        loggers=dict(kiskadee={{"level": "INFO", "propagate": False, "handlers": ["console"]}})),
)
"""


def envelopes(kind: str, count: int) -> list:
    """``count`` fedmsg frames [topic, envelope] of real Anitya messages, one new project each."""
    v1 = json.loads((FIXTURES / "fedmsg-v1-aspell.json").read_text())
    v2 = json.loads((FIXTURES / "v2-fedora_mapping.json").read_text())
    frames = []
    for i in range(count):
        use_v2 = kind == "v2" or (kind == "both" and i % 2)
        if use_v2:
            body = json.loads(json.dumps(v2))
            body["project"]["name"] = body["message"]["project"]["name"] = f"bench-{i}"
            envelope = {"topic": V2_TOPIC, "msg": body, "i": i, "timestamp": time.time(),
                        "msg_id": f"bench-{i}", "username": "anitya"}
        else:
            envelope = dict(v1, msg=dict(v1["msg"], project=dict(v1["msg"]["project"], name=f"bench-{i}")),
                            i=i, msg_id=f"bench-{i}")
        frames.append([envelope["topic"].encode(), json.dumps(envelope).encode()])
    return frames


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def start(root: Path, endpoint: str) -> list:
    """The monitor and the hub, started in ``root``; returns their Popen objects."""
    (root / "kiskadee.toml").write_text(
        f'[database]\npath = "{root / "k.db"}"\n[service]\nruntime_dir = "{root / "run"}"\n'
        '[anitya]\nreport_seconds = 1.0\nqueue_size = 100000\n')
    (root / "fedmsg.d").mkdir()
    (root / "fedmsg.d" / "base.py").write_text(BASE_CONFIG.format(endpoint=endpoint))
    shutil.copy(ROOT / "packaging" / "fedmsg.d" / "kiskadee.py", root / "fedmsg.d" / "kiskadee.py")
    env = dict(os.environ, HOME=str(root), KISKADEE_CONFIG=str(root / "kiskadee.toml"))
    env.pop("VIRTUAL_ENV", None)
    monitor = subprocess.Popen([sys.executable, "-m", "kiskadee", "-q", "monitor"], env=env,
                               stderr=open(root / "monitor.log", "wb"))
    wait_for(lambda: (root / "run" / "intake.sock").exists(), 30, "the monitor's intake socket")
    hub = subprocess.Popen([str(Path(sys.executable).parent / "fedmsg-hub")], cwd=root, env=env,
                           stdout=subprocess.DEVNULL, stderr=open(root / "hub.log", "wb"))
    return [monitor, hub]


def subscribed(publisher: zmq.Socket, timeout: float) -> None:
    """Wait until the hub's subscription reaches the XPUB socket (no message is sent before it)."""
    if not publisher.poll(timeout * 1000):
        raise SystemExit(f"fedmsg-hub did not subscribe within {timeout:.0f} s")
    publisher.recv()


def cpu_seconds(process: subprocess.Popen) -> float:
    """User and system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def versions(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as connection:
            return connection.execute("SELECT COUNT(*) FROM version").fetchone()[0]
    except sqlite3.OperationalError:        # the schema is not there yet
        return 0


def measure(frames: list) -> tuple:
    """Seconds from the first send until every version is recorded, the CPU seconds the monitor and
    the hub used meanwhile, and the bridge's last report."""
    root = Path(tempfile.mkdtemp(prefix="kkb"))
    endpoint = f"ipc://{root / 'pub.sock'}"
    context = zmq.Context()
    publisher = context.socket(zmq.XPUB)
    publisher.setsockopt(zmq.SNDHWM, 0)             # the publisher itself never drops
    publisher.bind(endpoint)
    processes = start(root, endpoint)
    try:
        subscribed(publisher, 60)
        time.sleep(1)                               # let the hub finish starting up
        cpu = [cpu_seconds(process) for process in processes]
        started = time.perf_counter()
        for frame in frames:
            publisher.send_multipart(frame)
        wait_for(lambda: versions(root / "k.db") >= len(frames), 600, f"{len(frames)} versions")
        elapsed = time.perf_counter() - started
        cpu = [cpu_seconds(process) - before for process, before in zip(processes, cpu)]
        time.sleep(1.5)                             # one more report of the bridge's counts
        return elapsed, cpu, versions(root / "k.db"), last_report(root / "hub.log")
    finally:
        publisher.close(linger=0)
        context.term()
        for process in reversed(processes):
            process.terminate()
            process.wait(30)
        shutil.rmtree(root, ignore_errors=True)


def last_report(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if "anitya bridge: received" in line]
    return lines[-1].split("INFO ")[-1].split("WARNING ")[-1] if lines else "(no report)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--kind", choices=("v1", "v2", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    kinds = ("v1", "v2") if args.kind == "both" else (args.kind,)
    for kind in kinds:
        frames = envelopes(kind, args.messages)
        size = statistics.mean(len(frame[1]) for frame in frames)
        rates = []
        for attempt in range(args.repeat):
            elapsed, (monitor_cpu, hub_cpu), recorded, report = measure(frames)
            assert recorded == len(frames), f"{recorded} of {len(frames)} versions recorded: {report}"
            assert " dropped 0," in report, f"the bridge dropped messages: {report}"
            rates.append(len(frames) / elapsed)
            print(f"{kind} run {attempt + 1}: {len(frames)} messages of {size:,.0f} bytes in {elapsed:.2f} s: "
                  f"{rates[-1]:,.0f} messages/s; all {recorded} in the database; CPU per message: hub "
                  f"{hub_cpu / len(frames) * 1e6:.0f} us, monitor {monitor_cpu / len(frames) * 1e6:.0f} us; "
                  f"{report}", flush=True)
        print(f"{kind} median: {statistics.median(rates):,.0f} messages/s (target >= 5,000/s)", flush=True)


if __name__ == "__main__":
    main()
