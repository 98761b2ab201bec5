"""Per-run overhead of the docker sandbox backend against the local one, on the same package.

Measures, side by side in one run, on GNU hello 2.10 (tests/fixtures):
  - one short command ('cppcheck --version', as analysis.tool_version runs it)
    through each backend, N times: the median wall time per run, and the
    difference, which is what one container run costs (target <= 1 s on overlay2);
  - the whole analysis (cppcheck and flawfinder, two runs each: version and
    analysis) through each backend: wall time, and the difference per container run.
Both backends run Debian's cppcheck 2.10; the local flawfinder is whichever is on PATH.

Run: .venv/bin/python bench/docker_overhead.py [--runs N] [--url unix:///PATH]
Without --url it starts a private dockerd as the tests do (tests/docker_engine.py),
building the images if its cached data root lacks them.
"""

import argparse
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from kiskadee.analysis.analyzers.cppcheck import Cppcheck  # noqa: E402
from kiskadee.analysis.analyzers.flawfinder import Flawfinder  # noqa: E402
from kiskadee.analysis.pipeline import analyze_tree  # noqa: E402
from kiskadee.analysis.sandbox.base import Limits  # noqa: E402
from kiskadee.analysis.sandbox.docker import DockerSandbox  # noqa: E402
from kiskadee.analysis.sandbox.local import LocalSandbox  # noqa: E402
from kiskadee.config import CppcheckConfig, DockerSandboxConfig, FlawfinderConfig  # noqa: E402

LIMITS = Limits(timeout=600, memory_mb=2048, max_output_bytes=256 * 1024**2)


def per_run(sandbox, tree: Path, runs: int) -> float:
    """Median seconds of one 'cppcheck --version' through ``sandbox``."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as output:
            started = time.perf_counter()
            execution = sandbox.run(["cppcheck", "--version"], tree, Path(output), LIMITS)
            times.append(time.perf_counter() - started)
            assert execution.returncode == 0, execution.tail
    return statistics.median(times)


def whole(sandbox, tree: Path) -> float:
    """Seconds to analyze ``tree`` with cppcheck and flawfinder through ``sandbox``."""
    started = time.perf_counter()
    runs = analyze_tree(tree, [Cppcheck(CppcheckConfig()), Flawfinder(FlawfinderConfig())], sandbox, LIMITS)
    assert all(run.status == "ok" for run in runs), [(run.analyzer, run.error) for run in runs]
    return time.perf_counter() - started


def measure(url: str, runs: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        with tarfile.open(ROOT / "tests" / "fixtures" / "hello_2.10.orig.tar.gz") as archive:
            archive.extractall(root)
        tree = Path(root) / "hello-2.10"
        docker = DockerSandbox(DockerSandboxConfig(url=url, cpus=1.0)).for_analyzer("cppcheck")
        local = LocalSandbox()
        per_run(docker, tree, 1)                        # connect, warm the image's pages
        docker_run, local_run = per_run(docker, tree, runs), per_run(local, tree, runs)
        print(f"one short command, median of {runs}: docker {docker_run:.3f} s, local {local_run:.3f} s, "
              f"overhead {docker_run - local_run:.3f} s per container run")
        docker_whole = whole(DockerSandbox(DockerSandboxConfig(url=url, cpus=1.0)), tree)
        local_whole = whole(local, tree)
        print(f"hello 2.10, cppcheck and flawfinder (4 sandbox runs): docker {docker_whole:.1f} s, "
              f"local {local_whole:.1f} s, overhead {(docker_whole - local_whole) / 4:.2f} s per container run")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--url", help="a docker engine with the analyzer images (default: start one)")
    args = parser.parse_args()
    if args.url:
        measure(args.url, args.runs)
        return 0
    import docker_engine

    engine = docker_engine.shared_engine()
    try:
        measure(engine.url, args.runs)
    finally:
        docker_engine.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
