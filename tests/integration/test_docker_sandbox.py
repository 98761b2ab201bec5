"""The docker backend against a real dockerd: same findings as the local backend, hostile commands contained.

Hostile commands run through the backend's own ``run()`` in the flawfinder
image (it has python3 and sh), confined exactly as an analyzer would be.
"""

import collections
import contextlib
import hashlib
import io
import re
import shutil
import socket
import sqlite3
import tarfile
import threading
import time
from pathlib import Path

import pytest
from harness import HELLO_TARBALL, run_kiskadee

from kiskadee.analysis.analyzers import make_analyzers
from kiskadee.analysis.analyzers.cppcheck import Cppcheck
from kiskadee.analysis.analyzers.flawfinder import Flawfinder
from kiskadee.analysis.images import SOURCE_CONTAINERS, analyzers_in
from kiskadee.analysis.pipeline import analyze_tree, tool_version
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.analysis.sandbox.docker import DockerSandbox
from kiskadee.analysis.sandbox.local import LocalSandbox
from kiskadee.config import AnalyzersConfig, CppcheckConfig, DockerSandboxConfig, FlawfinderConfig
from kiskadee.errors import SandboxUnavailable

pytestmark = [pytest.mark.slow, pytest.mark.docker]

GENEROUS = Limits(timeout=300, memory_mb=2048, max_output_bytes=64 * 1024**2)
TIGHT = Limits(timeout=60, memory_mb=256, max_output_bytes=8 * 1024**2)


@pytest.fixture
def sandbox(docker_engine):
    """The docker backend on the test engine; after each test, no container of kiskadee may remain."""
    yield DockerSandbox(docker_engine.sandbox_config())
    assert docker_engine.kiskadee_containers() == []


@pytest.fixture
def hostile(sandbox, hello_tree, tmp_path):
    """Run a command in the flawfinder image over the hello tree, as an analyzer runs."""
    bound = sandbox.for_analyzer("flawfinder")

    def run(argv, limits=TIGHT):
        output = tmp_path / f"out-{time.monotonic_ns()}"
        output.mkdir()
        source, out = bound.paths(hello_tree, output)
        assert (source, out) == ("/src", "/out")
        execution = bound.run(argv, hello_tree, output, limits)
        return execution, execution.stdout_path.read_text(errors="replace"), output

    return run


def python(code):
    return ["python3", "-c", code]


def fingerprints(run):
    return collections.Counter(finding.fingerprint for finding in run.findings)


def tree_digest(tree: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(tree.rglob("*")):
        digest.update(str(path.relative_to(tree)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def image_flawfinder(docker_engine, tmp_path_factory):
    """The flawfinder program of the flawfinder image (Debian's 2.0.19), copied out to run on the host."""
    with contextlib.closing(docker_engine.client()) as client:
        container = client.containers.create("kiskadee/flawfinder:latest", ["true"])
        try:
            stream, _ = container.get_archive("/usr/bin/flawfinder")
            data = b"".join(stream)
        finally:
            container.remove(force=True)
    target = tmp_path_factory.mktemp("flawfinder")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(target)
    return target / "flawfinder"


def test_same_tarball_same_findings_in_docker_and_local(sandbox, hello_tree, image_flawfinder):
    # Same tool versions on both sides: Debian's cppcheck 2.10 on the host and in the image, and the
    # image's own flawfinder program (2.0.19) run on the host by the local backend.
    in_docker = analyze_tree(hello_tree, [Cppcheck(CppcheckConfig()), Flawfinder(FlawfinderConfig())],
                             sandbox, GENEROUS)
    local = analyze_tree(hello_tree, [Cppcheck(CppcheckConfig()),
                                      Flawfinder(FlawfinderConfig(program=str(image_flawfinder)))],
                         LocalSandbox(), GENEROUS)
    for docker_run, local_run in zip(in_docker, local):
        assert (docker_run.analyzer, docker_run.status) == (local_run.analyzer, "ok"), docker_run.error
        assert local_run.status == "ok", local_run.error
        assert docker_run.tool_version == local_run.tool_version
        assert fingerprints(docker_run) == fingerprints(local_run)
    assert [(run.tool_version, len(run.findings)) for run in in_docker] == [("2.10", 12), ("2.0.19", 334)]


def test_cli_with_docker_backend_stores_the_versions_inside_the_images(docker_engine, tmp_path):
    # The host's flawfinder is PyPI's 2.0.20; what is stored must be the image's 2.0.19.
    config = tmp_path / "kiskadee.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "k.db"}"\n' + docker_engine.toml())
    result = run_kiskadee("analyze", HELLO_TARBALL, config=config)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "k.db") as db:
        assert db.execute("SELECT name, version FROM analyzer ORDER BY name").fetchall() == [
            ("cppcheck", "2.10"), ("flawfinder", "2.0.19")]
        assert db.execute("SELECT analyzer, status, finding_count FROM analysis_detail ORDER BY analyzer"
                          ).fetchall() == [("cppcheck", "ok", 12), ("flawfinder", "ok", 334)]
    assert docker_engine.kiskadee_containers() == []


def test_images_list_shows_the_tool_version_of_each_image(docker_engine, image_flawfinder, tmp_path):
    # Each image's version is the one its tool reports run here: the host has Debian bookworm's cppcheck,
    # clang, gcc and Frama-C, as the images have; its flawfinder is PyPI's, so the image's own is run.
    listing = docker_engine.kiskadee("images", "list").stdout.splitlines()
    settings = AnalyzersConfig(flawfinder=FlawfinderConfig(program=str(image_flawfinder)))
    expected = []
    for analyzer in make_analyzers(analyzers_in(SOURCE_CONTAINERS), settings):
        (tmp_path / analyzer.name).mkdir()
        version = tool_version(analyzer, tmp_path, LocalSandbox(), GENEROUS, tmp_path / analyzer.name)
        assert re.fullmatch(r"\d+(\.\d+)+(-\w+)?", version), f"{analyzer.name}: {version}"
        expected.append([analyzer.name, version, f"kiskadee/{analyzer.name}:latest"])
    assert [line.split()[:3] for line in listing] == expected


def test_images_build_without_its_base_says_how_to_make_one(docker_engine):
    # A registry on a closed loopback port: the pull fails at once, and no traffic leaves the machine.
    result = run_kiskadee("images", "build", "cppcheck", "--base", "localhost:1/kiskadee-none:x",
                          config=docker_engine.config_file)
    assert result.returncode == 1
    assert "building kiskadee/cppcheck:latest failed" in result.stderr
    assert "make one with 'kiskadee images base' or build with --bootstrap" in result.stderr


def test_no_network_not_even_the_hosts_loopback(hostile):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(listener.accept())
            except socket.timeout:
                pass

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        execution, out, _ = hostile(python(
            "import os, socket\n"
            "print('interfaces', sorted(os.listdir('/sys/class/net')))\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('connected')\n"
            "except OSError as e:\n    print('refused', e.errno)\n"
            "try:\n    socket.getaddrinfo('example.org', 80); print('resolved')\n"
            "except OSError as e:\n    print('no dns', e.errno)\n"))
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert execution.returncode == 0, execution.tail
    assert "interfaces ['lo']" in out
    assert "refused" in out and "connected" not in out
    assert "no dns" in out and "resolved" not in out
    assert accepted == []


def test_source_is_read_only_and_only_output_and_tmp_are_writable(hostile, hello_tree):
    before = tree_digest(hello_tree)
    execution, out, output = hostile(["sh", "-c",
        "for f in /src/configure /src/planted /etc/planted /usr/bin/planted /planted /out/report /tmp/x; do"
        "  if echo hostile >> $f 2>/dev/null; then echo \"wrote $f\"; else echo \"refused $f\"; fi; done;"
        " rm -f /src/README 2>/dev/null && echo 'deleted README' || echo 'kept README'"])
    assert execution.returncode == 0, execution.tail
    assert sorted(line for line in out.splitlines() if line.startswith("wrote")) == [
        "wrote /out/report", "wrote /tmp/x"]
    assert "kept README" in out
    assert tree_digest(hello_tree) == before
    assert (output / "report").read_text() == "hostile\n"


def test_runs_as_nobody_without_capabilities_or_new_privileges(hostile):
    execution, out, _ = hostile(["sh", "-c", "id -u; id -g; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status"])
    assert execution.returncode == 0, execution.tail
    fields = dict(line.split(":\t") for line in out.splitlines()[2:])
    assert out.splitlines()[:2] == ["65534", "65534"]
    assert fields == {"CapEff": "0000000000000000", "CapBnd": "0000000000000000",
                      "NoNewPrivs": "1", "Seccomp": "2"}


def test_forking_is_held_at_the_pids_limit(docker_engine, hello_tree, tmp_path):
    sandbox = DockerSandbox(docker_engine.sandbox_config(pids_limit=32)).for_analyzer("flawfinder")
    (tmp_path / "out").mkdir()
    execution = sandbox.run(python(
        "import os, time\nn = 0\n"
        "try:\n    while True:\n        pid = os.fork()\n        if pid == 0:\n            time.sleep(30); os._exit(0)\n"
        "        n += 1\nexcept OSError as e:\n    print('forked', n, 'then', e.strerror)\n"), hello_tree,
        tmp_path / "out", TIGHT)
    out = execution.stdout_path.read_text()
    assert execution.returncode == 0, execution.tail
    assert out.startswith("forked") and "Resource temporarily unavailable" in out
    assert int(out.split()[1]) < 32
    assert execution.duration < 20                          # the sleeping children died with the container
    assert docker_engine.kiskadee_containers() == []


def test_endless_fork_bomb_is_killed_at_its_timeout(hostile):
    started = time.monotonic()
    execution, _, _ = hostile(python(
        "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)\n"),
        Limits(timeout=4, memory_mb=256, max_output_bytes=1024**2))
    assert execution.timed_out
    assert 4 <= time.monotonic() - started < 30


def test_allocating_past_the_memory_limit_is_killed_and_said(hostile):
    execution, out, _ = hostile(python("b = b'x' * 1024 ** 3\nprint('allocated', len(b))\n"),
                                Limits(timeout=60, memory_mb=128, max_output_bytes=1024**2))
    assert not execution.timed_out
    assert execution.returncode == 137
    assert "allocated" not in out
    assert "out of memory (limit 128 MiB)" in execution.tail


def test_command_that_never_returns_is_killed_and_removed(hostile):
    started = time.monotonic()
    execution, _, _ = hostile(["sleep", "3600"], Limits(timeout=2, memory_mb=64, max_output_bytes=1024**2))
    assert execution.timed_out
    assert time.monotonic() - started < 20


def test_output_is_capped(hostile):
    execution, _, output = hostile(["sh", "-c", "head -c 50000000 /dev/zero"],
                                   Limits(timeout=60, memory_mb=128, max_output_bytes=1024**2))
    assert execution.returncode != 0
    assert (output / "stdout").stat().st_size <= 1024**2
    assert "reached the 1048576 byte limit" in execution.tail


def test_analyzer_timeout_is_recorded_and_the_others_still_run(sandbox, hello_tree, tmp_path):
    # Four copies of hello: cppcheck needs about 9 s on them (under 2 s on one copy, too close
    # to the timeout on a fast machine), flawfinder about one.
    tree = tmp_path / "hellos"
    tree.mkdir(mode=0o755)          # the analyzer runs as nobody; pytest's tmp_path is the test user's only
    for copy in range(4):
        shutil.copytree(hello_tree, tree / f"hello-{copy}")
    runs = analyze_tree(tree, [Cppcheck(CppcheckConfig()), Flawfinder(FlawfinderConfig())], sandbox,
                        Limits(timeout=3, memory_mb=2048, max_output_bytes=64 * 1024**2))
    assert [(run.analyzer, run.status) for run in runs] == [("cppcheck", "timeout"), ("flawfinder", "ok")]
    # cppcheck reports as it goes: what it had found before it was stopped is kept, and the error says so.
    assert runs[0].error.startswith("exceeded its timeout of 3 s; kept the ") and runs[0].tool_version == "2.10"
    assert runs[0].findings and runs[0].error.endswith(f"kept the {len(runs[0].findings)} findings reported "
                                                       "before it was stopped")


def test_program_missing_from_the_image_fails_that_analyzer_only(sandbox, hello_tree):
    runs = analyze_tree(hello_tree, [Cppcheck(CppcheckConfig(program="cppcheck-not-installed")),
                                     Flawfinder(FlawfinderConfig())], sandbox, GENEROUS)
    assert runs[0].status == "failed"
    assert runs[0].error == "'cppcheck-not-installed' is not installed in image kiskadee/cppcheck:latest"
    assert runs[1].status == "ok" and len(runs[1].findings) == 334


def test_missing_image_says_how_to_build_it(docker_engine, hello_tree):
    sandbox = DockerSandbox(docker_engine.sandbox_config(image="kiskadee-none/{analyzer}:latest"))
    (run,) = analyze_tree(hello_tree, [Cppcheck(CppcheckConfig())], sandbox, GENEROUS)
    assert run.status == "failed"
    assert "image kiskadee-none/cppcheck:latest is not in the container engine" in run.error
    assert "kiskadee images build" in run.error


def test_unreachable_engine_is_a_transient_error_not_a_failed_analysis(hello_tree, short_tmp):
    sandbox = DockerSandbox(DockerSandboxConfig(url=f"unix://{short_tmp}/no-engine.sock"))
    with pytest.raises(SandboxUnavailable, match="cannot be reached"):
        analyze_tree(hello_tree, [Cppcheck(CppcheckConfig())], sandbox, GENEROUS)
    config = short_tmp / "kiskadee.toml"
    config.write_text(f'[database]\npath = "{short_tmp / "k.db"}"\n[sandbox]\nbackend = "docker"\n'
                      f'[sandbox.docker]\nurl = "unix://{short_tmp}/no-engine.sock"\n')
    result = run_kiskadee("analyze", HELLO_TARBALL, config=config)
    assert result.returncode == 7
    assert "container engine at unix://" in result.stderr and "cannot be reached" in result.stderr
