"""Intake throughput: the real bookworm Sources index fed to a real monitor as source events.

Measures, with the monitor running as its own process on ipc sockets and a
fresh SQLite database:
  - first pass: every source package of bookworm main (about 34,000) as an
    event, until all are recorded: events per second (target >= 20,000/s);
  - second pass over the unchanged index: seconds until all are processed
    (target < 1 s; they are all known, so nothing is written).
Events go through kiskadee.service.intake.IntakeSender, the protocol fetchers use: a
pass ends when the monitor has acknowledged (so committed) every event of
it. The original kiskadee slept two seconds per package.

Run: .venv/bin/python bench/intake.py [--repeat N]
The index comes from the Debian mirror apt uses here and is cached under
~/.cache/kiskadee-bench/.
"""

import argparse
import lzma
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from kiskadee.service import wire
from kiskadee.service.intake import IntakeSender
from kiskadee.sources.debian import apt_mirror, parse_sources

CACHE = Path.home() / ".cache" / "kiskadee-bench"


def bookworm_index() -> dict:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "bookworm-main-Sources.xz"
    if not path.exists():
        urllib.request.urlretrieve(f"{apt_mirror()}/dists/bookworm/main/source/Sources.xz", path)
    return parse_sources(lzma.open(path, "rt", encoding="utf-8"))


def start_monitor(root: Path) -> subprocess.Popen:
    config = root / "k.toml"
    config.write_text(f'[database]\npath = "{root / "k.db"}"\n[service]\nruntime_dir = "{root / "run"}"\n')
    process = subprocess.Popen([sys.executable, "-m", "kiskadee", "-q", "-c", str(config), "monitor"])
    deadline = time.monotonic() + 30
    while not (root / "run" / "intake.sock").exists():
        if time.monotonic() > deadline:
            raise SystemExit("the monitor did not start")
        time.sleep(0.05)
    return process


def one_pass(intake: IntakeSender, frames: list, sentinel: str) -> float:
    started = time.perf_counter()
    for frame in frames:
        intake.send_frame(frame)
    intake.send_frame(wire.encode("source", fetcher="debian", package=sentinel, version="1"))
    if not intake.flush(300):
        raise SystemExit(f"the monitor did not acknowledge {intake.pending} events")
    return time.perf_counter() - started


def measure(frames: list) -> tuple:
    with tempfile.TemporaryDirectory(prefix="kkb") as tmp:
        root = Path(tmp)
        monitor = start_monitor(root)
        intake = IntakeSender(f"ipc://{root / 'run' / 'intake.sock'}")
        try:
            first = one_pass(intake, frames, "zz-sentinel-1")
            second = one_pass(intake, frames, "zz-sentinel-2")
            with sqlite3.connect(root / "k.db") as connection:
                versions = connection.execute("SELECT COUNT(*) FROM version").fetchone()[0]
        finally:
            intake.close(timeout=0)
            monitor.terminate()
            monitor.wait(30)
    return first, second, versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    packages = bookworm_index()
    frames = [wire.encode("source", fetcher="debian", package=p.name, version=p.version)
              for p in packages.values()]
    print(f"bookworm main: {len(frames)} source packages")
    firsts, seconds = [], []
    for attempt in range(args.repeat):
        first, second, versions = measure(frames)
        assert versions == len(frames) + 2, f"{versions} versions recorded, expected {len(frames) + 2}"
        firsts.append(first)
        seconds.append(second)
        print(f"run {attempt + 1}: first pass {first:.2f} s ({len(frames) / first:,.0f} events/s), "
              f"second pass {second:.3f} s")
    first, second = statistics.median(firsts), statistics.median(seconds)
    print(f"median first pass: {len(frames) / first:,.0f} events/s (target >= 20,000/s)")
    print(f"median second pass: {second:.3f} s (target < 1 s)")
    print(f"original kiskadee at 2 s per package: {2 * len(frames) / 3600:.1f} h per pass; "
          f"ratio {2 * len(frames) / first:,.0f}x")


if __name__ == "__main__":
    main()
