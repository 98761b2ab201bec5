"""The local backend runs no package code and, started by root, hands every command to nobody.

Real processes, real uids: the commands are run through LocalSandbox as the
analyzers are, and the compiled analyzers over GNU hello 2.10, whose
``configure`` the local backend must never run unless the operator says so.
"""

import os
import stat
from pathlib import Path

import pytest

from kiskadee.analysis.analyzers.gcc import Gcc
from kiskadee.analysis.pipeline import analyze_tree
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.analysis.sandbox.local import LocalSandbox
from kiskadee.config import GccConfig, LocalSandboxConfig, from_mapping
from kiskadee.errors import AnalyzerUnavailable, ConfigError

LIMITS = Limits(timeout=300, memory_mb=4096, max_output_bytes=64 * 1024**2)
REFUSAL = ("autotools: build mode runs the package's own build scripts; the local sandbox does not "
           "(sandbox.local.build_on_host)")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only a runner started as root changes user")


def run(sandbox, argv, tree, tmp_path):
    """Run ``argv`` over ``tree`` with a fresh output directory in a private (0700) scratch directory."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(mode=0o700)
    output = scratch / "output"
    output.mkdir()
    execution = sandbox.run(argv, tree, output, LIMITS)
    return execution, execution.stdout_path.read_text(), output


@pytest.fixture
def private_tree(tmp_path):
    """A source tree in a 0700 directory of root's, as the runner's work directories are."""
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    tree = work / "pkg-1.0"
    tree.mkdir()
    (tree / "main.c").write_text("int main(void) { return 0; }\n")
    return tree


@as_root
def test_root_runs_commands_as_nobody_without_root_groups(private_tree, tmp_path):
    execution, stdout, _ = run(LocalSandbox(), ["id"], private_tree, tmp_path)
    assert execution.returncode == 0, execution.tail
    assert stdout.split() == ["uid=65534(nobody)", "gid=65534(nogroup)", "groups=65534(nogroup)"]


@as_root
def test_commands_read_the_tree_write_the_output_and_cannot_write_the_tree(private_tree, tmp_path):
    script = 'cat main.c; touch planted 2>/dev/null && echo wrote-the-tree; echo x > "$HOME/report" && echo wrote-output'
    execution, stdout, output = run(LocalSandbox(), ["sh", "-c", script], private_tree, tmp_path)
    assert stdout.splitlines() == ["int main(void) { return 0; }", "wrote-output"]
    assert not (private_tree / "planted").exists()
    assert (output / "report").stat().st_uid == 65534


@as_root
def test_nothing_is_opened_to_other_users(private_tree, tmp_path):
    run(LocalSandbox(), ["true"], private_tree, tmp_path)
    for directory in (private_tree.parent, tmp_path / "scratch"):
        mode = stat.S_IMODE(directory.stat().st_mode)
        assert mode & 0o007 == 0, oct(mode)             # others: nothing, as before
        assert mode & 0o020 == 0, oct(mode)             # the sandbox user's group may search, never write
        assert directory.stat().st_gid == 65534
    assert stat.S_IMODE((tmp_path / "scratch" / "output").stat().st_mode) & 0o002 == 0


@as_root
def test_a_directory_outside_temporary_areas_is_not_opened(tmp_path):
    # /root is private to root: analyzers running as nobody are refused there, and /root stays as it was.
    before = os.stat("/root")
    if before.st_mode & 0o001:
        pytest.skip("/root is searchable by everyone here")
    with pytest.raises(AnalyzerUnavailable, match="runs analyzers as nobody, who cannot enter /root"):
        run(LocalSandbox(), ["true"], Path("/root"), tmp_path)
    assert os.stat("/root").st_mode == before.st_mode and os.stat("/root").st_gid == before.st_gid


@as_root
def test_sandbox_user_is_configurable_and_checked():
    settings = from_mapping({"sandbox": {"local": {"user": "daemon"}}}).sandbox.local
    assert LocalSandbox(settings).account.name == "daemon"
    with pytest.raises(ConfigError, match="sandbox.local.user: there is no user 'no-such-user-kk'"):
        LocalSandbox(LocalSandboxConfig(user="no-such-user-kk"))
    with pytest.raises(ConfigError, match="is root"):
        LocalSandbox(LocalSandboxConfig(user="root"))


@pytest.mark.slow
def test_mode_auto_on_the_local_backend_analyzes_file_by_file_and_says_why(hello_tree):
    (run_,) = analyze_tree(hello_tree, [Gcc(GccConfig(mode="auto", jobs=2))], LocalSandbox(), LIMITS)
    assert run_.status == "ok", run_.error
    assert (run_.mode, run_.fallback) == ("per-file", REFUSAL)
    assert run_.files_analyzed + run_.files_failed == 37       # every C file, not the 21 the build compiles
    assert ("lib/xmalloc.c", 86, "analyzer-null-argument") in {(f.path, f.line, f.check_id) for f in run_.findings}


@pytest.mark.slow
def test_a_unit_out_of_memory_fails_alone_and_the_other_findings_are_kept(hello_tree):
    # 150 MiB: gcc -fanalyzer runs out of memory on one of hello's files (lib/quotearg.c here).
    limits = Limits(timeout=300, memory_mb=150, max_output_bytes=64 * 1024**2)
    (run_,) = analyze_tree(hello_tree, [Gcc(GccConfig(mode="per-file", jobs=2))], LocalSandbox(), limits)
    assert run_.status == "ok", run_.error
    out_of_memory = [line for line in run_.failed_files.splitlines() if "out of memory" in line]
    assert len(out_of_memory) == 1 and out_of_memory[0].startswith("lib/")
    assert run_.files_analyzed >= 28 and run_.files_analyzed + run_.files_failed == 37
    assert ("lib/xmalloc.c", 86, "analyzer-null-argument") in {(f.path, f.line, f.check_id) for f in run_.findings}
