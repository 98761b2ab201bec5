"""A configure script that fails, files over their timeout or budget, an analyzer over its time limit.

Each is recorded where a person looks (status, coverage, `kiskadee show`)
and the other files and analyzers still run.
"""

import os
import shutil
import sqlite3
import time

import pytest
from harness import FIXTURES, run_kiskadee, unpack_hello

from kiskadee.analysis.analyzers import make_analyzers
from kiskadee.analysis.pipeline import analyze_tree
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.analysis.sandbox.local import LocalSandbox
from kiskadee.config import LocalSandboxConfig, from_mapping

GENEROUS = Limits(timeout=300, memory_mb=4096, max_output_bytes=64 * 1024**2)
# Build mode runs the package's configure and make: the local backend does so only when told to.
BUILDING_ON_HOST = "[sandbox.local]\nbuild_on_host = true\n"
FAILING_CONFIGURE = """#!/bin/sh
echo "checking for a network... no"
echo "configure: error: cannot download the dependencies" >&2
exit 1
"""


def analyzers(names, **sections):
    """Real analyzers configured as a person would in kiskadee.toml."""
    return make_analyzers(names, from_mapping({"analyzers": sections}).analyzers)


def outcomes(runs):
    return {run.analyzer: run for run in runs}


def planted_copy(tmp_path):
    tree = tmp_path / "planted-1.0"
    shutil.copytree(FIXTURES / "planted", tree)
    return tree


def test_failing_configure_falls_back_to_per_file_and_says_so(tmp_path):
    tree = planted_copy(tmp_path)
    (tree / "configure").write_text(FAILING_CONFIGURE)
    (tree / "configure").chmod(0o755)
    db = tmp_path / "k.db"
    config = tmp_path / "kiskadee.toml"
    config.write_text(BUILDING_ON_HOST)
    result = run_kiskadee("analyze", tree, "--analyzers", "gcc", "--db", db, config=config)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as connection:
        mode, analyzed, failed, fallback = connection.execute(
            "SELECT mode, files_analyzed, files_failed, fallback FROM analysis").fetchone()
        checks = {row[0] for row in connection.execute("SELECT check_id FROM finding")}
    assert (mode, analyzed, failed) == ("per-file", 6, 1)
    assert fallback == ("autotools: configure exited with status 1: "
                        "configure: error: cannot download the dependencies")
    assert {"analyzer-null-dereference", "analyzer-double-free", "analyzer-malloc-leak"} <= checks
    assert "build mode not used: autotools: configure exited with status 1" in result.stdout


def test_file_over_its_timeout_is_recorded_and_the_run_goes_on():
    # Frama-C needs well over 0.1 s to start, so every file exceeds that timeout.
    (run,) = analyze_tree(FIXTURES / "planted", analyzers(["framac"], framac={"unit_timeout": 0.1}),
                          LocalSandbox(), GENEROUS)
    assert run.status == "ok" and run.findings == []
    assert (run.files_analyzed, run.files_failed) == (0, 7)
    assert run.failed_files.count("exceeded the per-file timeout of 0.1 s") == 7


def test_time_budget_stops_starting_files_and_keeps_what_was_done():
    (run,) = analyze_tree(FIXTURES / "planted", analyzers(["framac"], framac={"time_budget": 0.5}),
                          LocalSandbox(), GENEROUS)
    assert run.status == "ok"
    assert run.files_analyzed + run.files_failed == 7
    assert run.failed_files.count("the time budget of 0.5 s was spent") >= 5


def leftovers(marker):
    """Processes still running whose command line or working directory mentions ``marker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                command = stream.read().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if marker in command + cwd and int(pid) != os.getpid():
            found.append(f"{pid} in {cwd}: {command}")
    return found


@pytest.mark.slow
def test_analyzer_out_of_time_stops_its_build_at_its_deadline_and_the_others_run(tmp_path):
    tree = unpack_hello(tmp_path)
    started = time.monotonic()
    limits = Limits(timeout=3, memory_mb=4096, max_output_bytes=64 * 1024**2)
    runs = outcomes(analyze_tree(tree, analyzers(["gcc", "flawfinder"]),
                                 LocalSandbox(LocalSandboxConfig(build_on_host=True)), limits))
    gcc = runs["gcc"]
    # Configuring hello alone takes longer than the 1.5 s the driver keeps of the 3 s timeout.
    assert gcc.status == "timeout"
    assert gcc.error.startswith("stopped at its deadline of 1.5 s (the analysis timeout less a reserve")
    assert gcc.fallback == "autotools: configure was stopped at the analyzer's deadline"
    assert (gcc.mode, gcc.files_analyzed) == ("per-file", 0)
    assert "not started: the analyzer's deadline had passed" in gcc.failed_files
    assert runs["flawfinder"].status == "ok" and runs["flawfinder"].findings
    assert time.monotonic() - started < 60
    time.sleep(0.5)
    assert leftovers("/kk-gcc-") == []                     # configure and its children died too


def planted_copies(tmp_path, copies):
    """A tree holding the planted files ``copies`` times over, in directories copy00, copy01..."""
    tree = tmp_path / "many-1.0"
    for number in range(copies):
        shutil.copytree(FIXTURES / "planted", tree / f"copy{number:02d}")
    return tree


def bugs(findings):
    """What each finding says, wherever its copy of the planted files lies."""
    return {(finding.path.split("/", 1)[1], finding.line, finding.check_id) for finding in findings}


@pytest.fixture(scope="module")
def planted_bugs_by_gcc():
    (run,) = analyze_tree(FIXTURES / "planted", analyzers(["gcc"], gcc={"mode": "per-file"}), LocalSandbox(),
                          GENEROUS)
    assert run.status == "ok" and run.findings
    return {(finding.path, finding.line, finding.check_id) for finding in run.findings}


@pytest.mark.slow
def test_run_stopped_at_its_deadline_keeps_the_findings_of_the_files_it_analyzed(tmp_path, planted_bugs_by_gcc):
    tree = planted_copies(tmp_path, 20)     # 120 files that compile: over 10 s of gcc -fanalyzer here
    limits = Limits(timeout=6, memory_mb=4096, max_output_bytes=64 * 1024**2)
    (run,) = analyze_tree(tree, analyzers(["gcc"], gcc={"mode": "per-file"}), LocalSandbox(), limits)
    assert run.status == "timeout"
    assert 0 < run.files_analyzed < 120
    assert run.error == (f"stopped at its deadline of 4 s (the analysis timeout less a reserve to finish in) "
                         f"with {run.files_analyzed} of {run.files_analyzed + run.files_failed} files analyzed; "
                         "their findings are kept")
    assert run.findings and bugs(run.findings) <= planted_bugs_by_gcc
    assert len({finding.path for finding in run.findings}) <= run.files_analyzed


@pytest.mark.slow
def test_run_killed_by_the_sandbox_keeps_the_findings_its_driver_had_reported(tmp_path, planted_bugs_by_gcc):
    # An interpreter that makes the driver ignore its deadline, as if it could not stop in time.
    python = tmp_path / "python-without-deadline"
    python.write_text('#!/bin/sh\nexec python3 "$@" --deadline 0\n')
    python.chmod(0o755)
    tree = planted_copies(tmp_path, 40)     # 240 files: over 20 s here, and the index is rewritten every 5 s
    limits = Limits(timeout=8, memory_mb=4096, max_output_bytes=64 * 1024**2)
    (run,) = analyze_tree(tree, analyzers(["gcc"], gcc={"mode": "per-file", "python": str(python)}),
                          LocalSandbox(), limits)
    assert run.status == "timeout"
    assert run.error.startswith("exceeded its timeout of 8 s; kept the ")
    assert run.error.endswith(f" {len(run.findings)} findings reported before it was stopped")
    assert run.findings and bugs(run.findings) <= planted_bugs_by_gcc
    assert 0 < run.files_analyzed < 240                     # the index it left says how far it got


def test_missing_compiler_fails_that_analyzer_only():
    runs = outcomes(analyze_tree(FIXTURES / "planted", analyzers(["clang", "gcc"], clang={"program": "clang-99"}),
                                 LocalSandbox(), GENEROUS))
    assert runs["clang"].status == "failed" and "'clang-99' is not installed" in runs["clang"].error
    assert runs["gcc"].status == "ok" and runs["gcc"].files_analyzed == 6
