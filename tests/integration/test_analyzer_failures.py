"""An analyzer that is missing, crashes, hangs or runs out of memory: recorded, the others still run."""

import shutil
import sqlite3
import time

import pytest
from harness import HELLO_TARBALL, run_kiskadee

from kiskadee.analysis.analyzers.cppcheck import Cppcheck
from kiskadee.analysis.analyzers.flawfinder import Flawfinder
from kiskadee.analysis.pipeline import analyze_tree
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.analysis.sandbox.local import LocalSandbox
from kiskadee.config import CppcheckConfig, FlawfinderConfig

GENEROUS = Limits(timeout=300, memory_mb=4096, max_output_bytes=64 * 1024**2)


def outcomes(runs):
    return {run.analyzer: run for run in runs}


def test_missing_analyzer_binary_fails_that_analyzer_only(hello_tree):
    runs = outcomes(analyze_tree(hello_tree, [Cppcheck(CppcheckConfig(program="cppcheck-not-installed")),
                                              Flawfinder(FlawfinderConfig())], LocalSandbox(), GENEROUS))
    assert runs["cppcheck"].status == "failed"
    assert "'cppcheck-not-installed' is not installed" in runs["cppcheck"].error
    assert runs["flawfinder"].status == "ok" and len(runs["flawfinder"].findings) > 300


@pytest.mark.slow
def test_analyzer_over_its_timeout_is_killed_and_recorded(hello_tree, tmp_path):
    # Four copies of hello: cppcheck needs about 9 s on them here (under 2 s on one copy,
    # too close to the timeout on a fast machine), flawfinder under one.
    for copy in range(4):
        shutil.copytree(hello_tree, tmp_path / f"hello-{copy}")
    started = time.monotonic()
    limits = Limits(timeout=2.5, memory_mb=4096, max_output_bytes=64 * 1024**2)
    runs = outcomes(analyze_tree(tmp_path, [Cppcheck(CppcheckConfig()), Flawfinder(FlawfinderConfig())],
                                 LocalSandbox(), limits))
    cppcheck = runs["cppcheck"]
    assert cppcheck.status == "timeout"
    # cppcheck writes each error into its report as it finds it: those found before the kill are kept.
    assert cppcheck.findings
    assert cppcheck.error == (f"exceeded its timeout of 2.5 s; kept the {len(cppcheck.findings)} findings "
                              "reported before it was stopped")
    (whole,) = analyze_tree(hello_tree, [Cppcheck(CppcheckConfig())], LocalSandbox(), GENEROUS)
    in_one_copy = {(f.path, f.line, f.check_id, f.message) for f in whole.findings}
    assert {(f.path.split("/", 1)[1], f.line, f.check_id, f.message) for f in cppcheck.findings} <= in_one_copy
    assert all(finding.fingerprint for finding in cppcheck.findings)
    assert runs["flawfinder"].status == "ok"
    assert time.monotonic() - started < 20


def test_analyzer_that_crashes_is_failed_with_its_stderr(hello_tree):
    broken = Cppcheck(CppcheckConfig(extra_args=("--no-such-option",)))
    (run,) = analyze_tree(hello_tree, [broken], LocalSandbox(), GENEROUS)
    assert run.status == "failed"
    assert "exited with status 1" in run.error and "--no-such-option" in run.error
    assert run.tool_version == "2.10"


def test_memory_limit_applies(hello_tree):
    tiny = Limits(timeout=60, memory_mb=8, max_output_bytes=64 * 1024**2)
    (run,) = analyze_tree(hello_tree, [Cppcheck(CppcheckConfig())], LocalSandbox(), tiny)
    assert run.status == "failed"


def test_cli_exit_status_1_when_an_analyzer_times_out(tmp_path):
    config = tmp_path / "kiskadee.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "k.db"}"\n[analysis]\ntimeout = 1\n')
    result = run_kiskadee("analyze", HELLO_TARBALL, config=config)
    assert result.returncode == 1, result.stderr
    assert "timeout" in result.stdout


def test_flawfinder_file_not_in_utf8_is_named_and_the_other_findings_are_kept(tmp_path):
    tree = tmp_path / "mixed-1.0"
    tree.mkdir()
    (tree / "latin1.c").write_bytes('/* \xa9 1999 Jos\xe9 */\nvoid f(char *d) { strcpy(d, "x"); }\n'.encode("latin-1"))
    (tree / "utf8.c").write_text("void g(char *d, char *s) { strcpy(d, s); }\nvoid h(char *d) { gets(d); }\n")
    db = tmp_path / "k.db"
    result = run_kiskadee("analyze", tree, "--analyzers", "flawfinder", "--db", db)
    assert result.returncode == 0, result.stderr           # flawfinder itself exits 15 here
    with sqlite3.connect(db) as connection:
        status, error = connection.execute("SELECT status, error FROM analysis").fetchone()
        found = sorted(connection.execute("SELECT path, line, check_id FROM finding"))
    assert status == "ok"
    assert error == "skipped 1 file(s) it could not decode as UTF-8: latin1.c"
    assert found == [("utf8.c", 1, "buffer.strcpy"), ("utf8.c", 2, "buffer.gets")]
    assert "skipped 1 file(s) it could not decode as UTF-8: latin1.c" in result.stdout
