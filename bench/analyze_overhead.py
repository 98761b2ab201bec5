"""Overhead of ``kiskadee analyze`` over running its two analyzers by hand.

What it measures, side by side on one real Debian source package (default:
libsodium from bookworm, some 53,000 lines of C):

  A  ``kiskadee -q analyze ORIG_TARBALL --db <fresh temp db>`` as a subprocess
     (``-q`` is a global option, so it goes before the subcommand):
     everything a user pays for (start-up, safe unpacking, language
     detection, ``--version`` probes, both analyzers, parsing, fingerprints,
     ranking, storing in SQLite, summary).
  B  the same two analyzers with the arguments kiskadee uses, sequentially,
     cppcheck then flawfinder, cwd = an already unpacked copy of the tree,
     output to a temp dir, with the environment kiskadee's local sandbox gives
     them (PATH, LANG/LC_ALL=C.UTF-8, HOME/TMPDIR = the output dir).

A and B are interleaved (ABBA...) and repeated; it prints every timing, the
medians and the ratio median(A)/median(B). Target: ratio <= 1.05. It also
prints A's own time (A minus the analyzer durations kiskadee stored), which
is far less noisy than A - B on a busy machine, and the CPU time (user+sys)
of each variant's processes, with its ratio, which load on the machine
inflates much less than wall-clock time.

The orig tarball is downloaded once from the Debian mirror apt uses (the
first ``URIs:`` line of /etc/apt/sources.list.d/debian.sources), checked
against the sha256 of the bookworm Sources index, and cached with the index
under ~/.cache/kiskadee-bench/. kiskadee runs with its defaults, the
analyzers and sandbox pinned by a config file given through KISKADEE_CONFIG.

Run:  .venv/bin/python bench/analyze_overhead.py [--repeat 3] [--package libsodium]
With the default package one repetition of A+B takes some 2.5 minutes on an idle
2-CPU machine, several times that on a loaded one.
"""

import argparse
import hashlib
import lzma
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

CACHE = Path.home() / ".cache" / "kiskadee-bench"
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
SOURCES_PATH = "dists/bookworm/main/source/Sources.xz"
LOCAL_SOURCES = Path("/tmp/Sources.xz")
TARGET = 1.05
CPPCHECK = ["--xml-version=2", "--quiet", "--enable=warning,style,performance,portability",
            "-j1", "--output-file={out}/cppcheck.xml", "."]
FLAWFINDER = ["--csv", "--minlevel=1", "."]


def mirror() -> str:
    for line in APT_SOURCES.read_text().splitlines():
        if line.startswith("URIs:"):
            return line.split()[1].rstrip("/")
    sys.exit(f"no URIs: line in {APT_SOURCES}")


def fetch(url: str, dest: Path) -> None:
    print(f"downloading {url}", file=sys.stderr)
    tmp = dest.with_suffix(dest.suffix + ".part")
    with urllib.request.urlopen(url, timeout=120) as response, open(tmp, "wb") as out:
        shutil.copyfileobj(response, out)
    tmp.rename(dest)


def sources_entry(base: str, package: str) -> dict:
    """The bookworm Sources paragraph of ``package`` as a dict of fields."""
    index = CACHE / "bookworm-main-Sources.xz"
    if not index.exists():
        if LOCAL_SOURCES.exists():
            shutil.copy(LOCAL_SOURCES, index)
        else:
            fetch(f"{base}/{SOURCES_PATH}", index)
    with lzma.open(index, "rt", encoding="utf-8") as stream:
        for paragraph in stream.read().split("\n\n"):
            if paragraph.startswith(f"Package: {package}\n"):
                fields, key = {}, None
                for line in paragraph.splitlines():
                    if line.startswith(" ") and key:
                        fields[key] += "\n" + line.strip()
                    else:
                        key, _, value = line.partition(":")
                        fields[key] = value.strip()
                return fields
    sys.exit(f"{package} is not in {index}")


def orig_tarball(base: str, package: str):
    """Download (or reuse) the package's orig tarball; return (path, version)."""
    entry = sources_entry(base, package)
    origs = [line.split() for line in entry["Checksums-Sha256"].splitlines()
             if ".orig.tar." in line and not line.endswith(".asc")]
    if not origs:
        sys.exit(f"no orig tarball in the Sources entry of {package}")
    digest, _size, name = origs[0]
    path = CACHE / name
    if not path.exists() or sha256(path) != digest:
        fetch(f"{base}/{entry['Directory']}/{name}", path)
    if sha256(path) != digest:
        sys.exit(f"{path}: sha256 does not match the Sources entry ({digest})")
    print(f"sha256 of {name} matches the Sources entry: {digest}")
    return path, entry["Version"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unpack(tarball: Path, dest: Path) -> Path:
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    tops = list(dest.iterdir())
    return tops[0] if len(tops) == 1 and tops[0].is_dir() else dest


def c_lines(root: Path) -> int:
    paths = (Path(d, n) for d, _, names in os.walk(root) for n in names if n.endswith((".c", ".h")))
    return sum(p.read_bytes().count(b"\n") for p in paths if p.is_file() and not p.is_symlink())


def program(name: str) -> str:
    """Looked up the way kiskadee's local sandbox does: PATH, the venv's bin, the system."""
    found = shutil.which(name, path=os.pathsep.join(
        [os.environ.get("PATH", ""), str(Path(sys.executable).parent), "/usr/local/bin:/usr/bin:/bin"]))
    return found or sys.exit(f"{name} is not installed")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_a(tarball: Path, work: Path, config: Path):
    """Time one ``kiskadee analyze``; return (wall time, CPU time, wall time minus analyzer durations)."""
    db = Path(tempfile.mkdtemp(dir=work)) / "bench.db"
    kiskadee = Path(sys.executable).parent / "kiskadee"
    argv = [str(kiskadee)] if kiskadee.exists() else [sys.executable, "-m", "kiskadee"]
    env = dict(os.environ, KISKADEE_CONFIG=str(config))
    cpu, started = children_cpu(), time.perf_counter()
    done = subprocess.run([*argv, "-q", "analyze", str(tarball), "--db", str(db)], env=env)
    elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT z.name, a.status, a.duration, a.finding_count FROM analysis a "
                            "JOIN analyzer z ON z.id = a.analyzer_id ORDER BY a.id").fetchall() \
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'analysis'").fetchone() else []
    if not rows:
        sys.exit(f"kiskadee analyze exited with status {done.returncode} and stored no analysis")
    runs = ", ".join(f"{n} {s} {d:.1f} s {c} findings" for n, s, d, c in rows)
    own = elapsed - sum(row[2] for row in rows)
    print(f"  A kiskadee analyze  {elapsed:8.2f} s  cpu {cpu:7.2f} s  (exit {done.returncode}; {runs}; "
          f"own {own:.2f} s)")
    shutil.rmtree(db.parent)
    return elapsed, cpu, own


def run_b(root: Path, work: Path, cppcheck: str, flawfinder: str) -> float:
    out = Path(tempfile.mkdtemp(dir=work))
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "HOME": str(out), "TMPDIR": str(out)}
    cpu, started = children_cpu(), time.perf_counter()
    first = subprocess.run([cppcheck, *(a.format(out=out) for a in CPPCHECK)], cwd=root, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    with open(out / "flawfinder.csv", "wb") as csv:
        second = subprocess.run([flawfinder, *FLAWFINDER], cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=csv)
    elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu
    errors = (out / "cppcheck.xml").read_text(errors="replace").count("<error ")
    rows = (out / "flawfinder.csv").read_bytes().count(b"\n") - 1
    print(f"  B analyzers alone   {elapsed:8.2f} s  cpu {cpu:7.2f} s  (exit {first.returncode}/{second.returncode}; "
          f"cppcheck {errors} errors, flawfinder {rows} CSV lines)")
    shutil.rmtree(out)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each variant (default 3)")
    parser.add_argument("--package", default="libsodium", help="bookworm source package (default libsodium)")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball, version = orig_tarball(mirror(), args.package)
    cppcheck, flawfinder = program("cppcheck"), program("flawfinder")
    with tempfile.TemporaryDirectory(prefix="kk-bench-") as tmp:
        work = Path(tmp)
        config = work / "kiskadee.toml"
        config.write_text('[analysis]\nanalyzers = ["cppcheck", "flawfinder"]\n'
                          '[sandbox]\nbackend = "local"\n')
        root = unpack(tarball, work / "tree")
        print(f"package: {args.package} {version} ({tarball.name}), {c_lines(root):,} lines in *.c/*.h")
        print(f"cppcheck: {cppcheck}, flawfinder: {flawfinder}; {args.repeat} repetitions, interleaved; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        times = {"A": [], "B": [], "own": [], "cpu A": [], "cpu B": []}
        for i in range(args.repeat):
            print(f"repetition {i + 1}")
            for variant in ("AB" if i % 2 == 0 else "BA"):
                if variant == "A":
                    for name, value in zip(("A", "cpu A", "own"), run_a(tarball, work, config)):
                        times[name].append(value)
                else:
                    for name, value in zip(("B", "cpu B"), run_b(root, work, cppcheck, flawfinder)):
                        times[name].append(value)
    a, b, own, cpu_a, cpu_b = (statistics.median(times[k]) for k in ("A", "B", "own", "cpu A", "cpu B"))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(f"median A (kiskadee analyze): {a:.2f} s")
    print(f"median B (analyzers alone):  {b:.2f} s")
    print(f"median own time of kiskadee (A minus its analyzer runs): {own:.2f} s")
    print(f"median CPU time: A {cpu_a:.2f} s, B {cpu_b:.2f} s, ratio A/B {cpu_a / cpu_b:.3f}")
    print(f"ratio A/B: {a / b:.3f}   target: <= {TARGET:.2f}   "
          f"{'MET' if a / b <= TARGET else 'NOT MET'}   (overhead {a - b:+.2f} s)")


if __name__ == "__main__":
    main()
