"""Build mode against per-file mode: GNU hello 2.10 (autotools) and the planted tree under CMake and Meson.

Build mode configures in a copy or a build directory under the analyzer's
output directory and analyzes each unit the build compiles with its real
flags; the source tree must be left exactly as it was.
"""

import shutil
import sqlite3

import pytest
from builders import snapshot
from harness import FIXTURES, run_kiskadee, unpack_hello

CMAKE = """cmake_minimum_required(VERSION 3.10)
project(planted C)
add_executable(planted src/main.c src/null_deref.c src/use_after_free.c src/double_free.c
               src/overflow.c src/leak.c)
target_include_directories(planted PRIVATE include)
"""
MESON = """project('planted', 'c')
executable('planted', 'src/main.c', 'src/null_deref.c', 'src/use_after_free.c', 'src/double_free.c',
           'src/overflow.c', 'src/leak.c', include_directories: include_directories('include'))
"""


def rows(db, sql, *params):
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).fetchall()


def analyze(tree, db, mode, analyzers="clang,gcc"):
    config = db.with_suffix(".toml")
    # Build mode runs the package's configure and make: the local backend does so only when told to.
    config.write_text("[sandbox.local]\nbuild_on_host = true\n"
                      + "".join(f'[analyzers.{name}]\nmode = "{mode}"\njobs = 2\n' for name in analyzers.split(",")))
    return run_kiskadee("analyze", tree, "--analyzers", analyzers, "--db", db, config=config)


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    """hello 2.10 unpacked, analyzed in build mode (gcc: configuring costs) and in per-file mode."""
    tree = unpack_hello(tmp_path_factory.mktemp("hello"))
    before = snapshot(tree)
    runs = {}
    for mode in ("auto", "per-file"):
        db = tmp_path_factory.mktemp(mode) / "kiskadee.db"
        runs[mode] = db, analyze(tree, db, mode, analyzers="gcc" if mode == "auto" else "clang,gcc")
    return runs, tree, before


def coverage(db):
    return rows(db, "SELECT analyzer, status, mode, files_analyzed, files_failed, fallback "
                    "FROM analysis_detail ORDER BY analyzer")


@pytest.mark.slow
def test_build_mode_analyzes_every_unit_the_build_compiles(hello):
    runs, tree, before = hello
    db, result = runs["auto"]
    assert result.returncode == 0, result.stderr
    assert coverage(db) == [("gcc", "ok", "autotools", 21, 0, "")]
    assert snapshot(tree) == before             # configured and built in a copy


@pytest.mark.slow
def test_build_mode_findings_carry_source_paths(hello):
    db = hello[0]["auto"][0]
    found = set(rows(db, "SELECT analyzer, path, line, check_id FROM finding_detail"))
    assert ("gcc", "lib/xmalloc.c", 86, "analyzer-null-argument") in found
    assert not [path for (path,) in rows(db, "SELECT path FROM finding") if path.startswith("/")]


@pytest.mark.slow
def test_per_file_mode_on_the_same_tarball_counts_what_did_not_compile(hello):
    runs, tree, before = hello
    db, result = runs["per-file"]
    assert result.returncode == 0, result.stderr
    for analyzer, status, mode, analyzed, failed, fallback in coverage(db):
        assert (status, mode, analyzed + failed, fallback) == ("ok", "per-file", 37, "")
        assert 21 < analyzed < 37                   # more files than the build compiles, not all of them
    failed_files = rows(db, "SELECT failed_files FROM analysis_detail WHERE analyzer = 'gcc'")[0][0]
    assert "lib/msvc-nothrow.c: error: windows.h: No such file or directory" in failed_files
    # configure defines COPYRIGHT_YEAR: only build mode can analyze hello.c itself
    assert "src/hello.c: error: 'COPYRIGHT_YEAR' undeclared" in failed_files
    assert snapshot(tree) == before


def build_tree(tmp_path, name, text):
    tree = tmp_path / "planted-1.0"
    shutil.copytree(FIXTURES / "planted", tree)
    (tree / name).write_text(text)
    return tree, snapshot(tree)


@pytest.mark.parametrize("system, name, text", [("cmake", "CMakeLists.txt", CMAKE), ("meson", "meson.build", MESON)])
def test_cmake_and_meson_trees_are_configured_outside_the_source(tmp_path, system, name, text):
    tree, before = build_tree(tmp_path, name, text)
    result = analyze(tree, tmp_path / "k.db", "auto")
    assert result.returncode == 0, result.stderr
    assert coverage(tmp_path / "k.db") == [          # broken.c is in no target
        ("clang", "ok", system, 6, 0, ""), ("gcc", "ok", system, 6, 0, "")]
    found = set(rows(tmp_path / "k.db", "SELECT analyzer, path, line, check_id FROM finding_detail"))
    assert {("gcc", "src/null_deref.c", 10, "analyzer-null-dereference"),
            ("clang", "src/null_deref.c", 10, "core.NullDereference"),
            ("gcc", "src/leak.c", 23, "analyzer-malloc-leak"), ("clang", "src/leak.c", 23, "unix.Malloc")} <= found
    assert snapshot(tree) == before
