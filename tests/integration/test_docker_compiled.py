"""clang, gcc -fanalyzer and Frama-C in their images through the docker backend, against the local backend.

Each runs as the compile driver (``python3`` in the image) confined as every
analyzer is: the source read-only at /src, nothing writable but /out and a
small /tmp, uid 65534, no network. The host has the same Debian bookworm
tools as the images, so the findings and the coverage must be the same on
both sides, build mode included: hello 2.10 is configured and built with
``bear -- make`` in a copy under /out.
"""

import collections
import shutil
import subprocess

import pytest
from builders import PLANTED
from harness import FIXTURES, unpack_hello

from kiskadee.analysis.analyzers.clang import Clang
from kiskadee.analysis.analyzers.framac import FramaC
from kiskadee.analysis.analyzers.gcc import Gcc
from kiskadee.analysis.pipeline import analyze_tree, run_analyzer
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.analysis.sandbox.docker import DockerSandbox
from kiskadee.analysis.sandbox.local import LocalSandbox
from kiskadee.config import ClangConfig, FramacConfig, GccConfig, LocalSandboxConfig

pytestmark = [pytest.mark.slow, pytest.mark.docker]

ANALYZERS = ("clang", "gcc", "framac")
LIMITS = Limits(timeout=900, memory_mb=4096, max_output_bytes=256 * 1024**2)


def analyzers():
    """The three analyzers with their default settings, two files at a time."""
    return [Clang(ClangConfig(jobs=2)), Gcc(GccConfig(jobs=2)), FramaC(FramacConfig(jobs=2))]


def by_analyzer(runs):
    return {run.analyzer: run for run in runs}


def findings(run):
    """What a user sees of each finding, with the fingerprint that matches it across versions."""
    return collections.Counter((f.path, f.line, f.check_id, f.fingerprint) for f in run.findings)


def coverage(run):
    return run.mode, run.files_analyzed, run.files_failed, run.fallback, run.failed_files


@pytest.fixture(scope="module")
def in_docker(docker_engine):
    """The docker backend on the test engine, with the two CPUs that jobs = 2 asks for."""
    return DockerSandbox(docker_engine.sandbox_config(cpus=2.0))


@pytest.fixture(scope="module")
def planted(tmp_path_factory, in_docker, docker_engine):
    """The planted tree, read-only, analyzed in docker and locally; and the containers left behind."""
    tree = tmp_path_factory.mktemp("planted") / "planted-1.0"
    shutil.copytree(FIXTURES / "planted", tree)
    subprocess.run(["chmod", "-R", "a-w", str(tree)], check=True)
    docker = by_analyzer(analyze_tree(tree, analyzers(), in_docker, LIMITS))
    local = by_analyzer(analyze_tree(tree, analyzers(), LocalSandbox(), LIMITS))
    return docker, local, docker_engine.kiskadee_containers()


@pytest.fixture(scope="module")
def hello(tmp_path_factory, in_docker, docker_engine):
    """hello 2.10 analyzed by gcc in mode 'auto' (its configure: build mode) in docker and locally."""
    tree = unpack_hello(tmp_path_factory.mktemp("hello"))
    [docker] = analyze_tree(tree, [Gcc(GccConfig(mode="auto", jobs=2))], in_docker, LIMITS)
    # Build mode runs the package's configure and make: the local backend does so only when told to.
    [local] = analyze_tree(tree, [Gcc(GccConfig(mode="auto", jobs=2))],
                           LocalSandbox(LocalSandboxConfig(build_on_host=True)), LIMITS)
    return docker, local, docker_engine.kiskadee_containers()


@pytest.mark.parametrize("analyzer", ANALYZERS)
def test_planted_bugs_are_found_in_docker_as_locally(planted, analyzer):
    docker, local = planted[0][analyzer], planted[1][analyzer]
    assert docker.status == "ok", docker.error
    assert local.status == "ok", local.error
    assert docker.tool_version == local.tool_version
    assert findings(docker) == findings(local)
    expected = {(path, line, check) for path, line, check, _ in PLANTED[analyzer]}
    assert expected <= {(f.path, f.line, f.check_id) for f in docker.findings}


@pytest.mark.parametrize("analyzer", ANALYZERS)
def test_planted_coverage_in_docker_is_the_local_one(planted, analyzer):
    docker, local = planted[0][analyzer], planted[1][analyzer]
    assert coverage(docker) == coverage(local)
    assert coverage(docker)[:4] == ("per-file", 6, 1, "")
    assert docker.failed_files.startswith("src/broken.c: ")


def test_hello_configures_and_builds_inside_the_container(hello):
    # Read-only source, uid 65534, no network: configure and make run in a copy under /out.
    docker, local, _ = hello
    assert docker.status == "ok", docker.error
    assert (docker.mode, docker.fallback, docker.files_analyzed, docker.files_failed) == ("autotools", "", 21, 0)
    assert coverage(docker) == coverage(local)


def test_hello_build_mode_findings_in_docker_are_the_local_ones(hello):
    docker, local, _ = hello
    assert local.status == "ok", local.error
    assert findings(docker) == findings(local)
    assert ("lib/xmalloc.c", 86, "analyzer-null-argument") in {(f.path, f.line, f.check_id) for f in docker.findings}
    # Paths in the copy the build ran in (/out/build/tree) are stored as source paths.
    assert [f.path for f in docker.findings if f.path.startswith("/")] == []


def test_gcc_and_clang_in_their_containers_share_one_build_and_find_what_separate_builds_find(
        hello, in_docker, tmp_path):
    """The build directory is mounted at /build in each analyzer's container: clang takes the units
    of gcc's build there, without configuring or building again, and finds what its own build finds."""
    tree = unpack_hello(tmp_path)
    settings = [Gcc(GccConfig(mode="auto", jobs=2)), Clang(ClangConfig(mode="auto", jobs=2))]
    build = tmp_path / "build"
    build.mkdir(mode=0o777)
    shared = []
    for analyzer in settings:
        shared.append(run_analyzer(analyzer, tree, in_docker, LIMITS, {"c": 1}, str(tmp_path), build=build))
        if len(shared) == 1:
            outcome = build / "kiskadee-build.json"
            built = (outcome.stat().st_mtime_ns, sorted(path.name for path in build.iterdir()))
    assert (outcome.stat().st_mtime_ns, sorted(path.name for path in build.iterdir())) == built
    assert [(run.status, run.mode, run.files_analyzed) for run in shared] == [("ok", "autotools", 21)] * 2
    assert findings(shared[0]) == findings(hello[0])            # gcc with a build of its own
    [clang_alone] = analyze_tree(tree, [Clang(ClangConfig(mode="auto", jobs=2))], in_docker, LIMITS)
    assert findings(shared[1]) == findings(clang_alone) and coverage(shared[1]) == coverage(clang_alone)


def test_no_container_is_left_behind(planted, hello):
    assert planted[2] == []
    assert hello[2] == []
