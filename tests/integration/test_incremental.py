"""Incremental analysis, and one build for every compiled analyzer, store exactly what a full analysis stores.

Real consecutive releases (tests/fixtures/releases): the new release is
analyzed in full with an empty cache, and again after the old release has
filled a cache; the two must agree finding by finding (fingerprint, path,
line, column, check, message, function, CWEs, severity) and in coverage.
Besides upstream releases, a Debian minor update: cJSON 1.7.15 as released
against bookworm's 1.7.15-1+deb12u4, its security patches applied.
Real analyzers in the local sandbox, a real SQLite cache file.
"""

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from harness import unpack_hello

from kiskadee.analysis.analyzers import make_analyzers
from kiskadee.analysis.cache import UnitCache
from kiskadee.analysis.pipeline import Reuse, analyze_tree, run_analyzer
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.analysis.sandbox.local import LocalSandbox
from kiskadee.config import AnalyzersConfig, ClangConfig, GccConfig, LocalSandboxConfig

pytestmark = pytest.mark.slow

RELEASES = Path(__file__).parent.parent / "fixtures" / "releases"
LIMITS = Limits(timeout=1800, memory_mb=4096, max_output_bytes=256 * 1024**2)
SETTINGS = AnalyzersConfig(gcc=GccConfig(mode="per-file", jobs=2), clang=ClangConfig(mode="per-file", jobs=2))
# cJSON's library and the Unity test framework it ships: units that change between releases, that
# include a changed header, and that do not.
CJSON_PART = ("cJSON.c", "cJSON.h", "cJSON_Utils.c", "cJSON_Utils.h", "test.c", "tests/common.h",
              "tests/misc_tests.c", "tests/cjson_add.c", "tests/unity/src", "tests/unity/examples/unity_config.h")
# The Debian update patches cJSON.c, cJSON_Utils.c and two test programs, no header.
CJSON_DEBIAN = "cjson_1.7.15-1+deb12u4.dsc"
CJSON_DEBIAN_PART = CJSON_PART + ("tests/parse_number.c",)


def unpack(name: str, into: Path) -> Path:
    with tarfile.open(RELEASES / name) as archive:
        archive.extractall(into)
    (tree,) = into.iterdir()
    return tree


def debian_tree(dsc: str, into: Path, patched: bool) -> Path:
    """A Debian source package unpacked by dpkg-source: the orig and debian/, its patches applied or not."""
    tree = into / "tree"
    into.mkdir(parents=True)
    subprocess.run(["dpkg-source", "--no-copy", *([] if patched else ["--skip-patches"]), "-x", str(RELEASES / dsc),
                    str(tree)], check=True, capture_output=True, timeout=120)
    # quilt's copies of the files before each patch: no build reads them.
    shutil.rmtree(tree / ".pc", ignore_errors=True)
    return tree


def part_of(tree: Path, parts, into: Path) -> Path:
    """A copy of some files and directories of ``tree``, under the same top directory name."""
    copy = into / tree.name
    for part in parts:
        source, target = tree / part, copy / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    return copy


def analyze(tree: Path, names, work: Path, reuse=None):
    return analyze_tree(tree, make_analyzers(names, SETTINGS), LocalSandbox(), LIMITS, work_dir=str(work),
                        reuse=reuse)


def findings(run):
    return sorted((f.fingerprint, f.path, f.line, f.column, f.check_id, f.message, f.function, f.cwes, f.severity)
                  for f in run.findings)


def coverage(run):
    return (run.analyzer, run.tool_version, run.status, run.error, run.mode, run.files_analyzed,
            run.files_failed, run.fallback, run.failed_files)


def assert_same(full, incremental):
    assert [coverage(run) for run in incremental] == [coverage(run) for run in full]
    for whole, reused in zip(full, incremental):
        assert findings(reused) == findings(whole), whole.analyzer
        assert whole.findings, f"{whole.analyzer} found nothing: the comparison would prove nothing"


def full_and_incremental(old: Path, new: Path, names, tmp_path: Path):
    """The new release analyzed in full (empty cache) and after the old one (its cache)."""
    full = analyze(new, names, tmp_path, Reuse(UnitCache(str(tmp_path / "empty.db"), 1 << 30), "debian/p"))
    cache = UnitCache(str(tmp_path / "cache.db"), 1 << 30)
    analyze(old, names, tmp_path, Reuse(cache, "debian/p"))
    reuse = Reuse(cache, "debian/p")
    return full, analyze(new, names, tmp_path, reuse), reuse


@pytest.mark.parametrize("old, new", [("lz4_1.9.4.orig.tar.gz", "lz4_1.10.0.orig.tar.gz"),
                                      ("cjson_1.7.14.orig.tar.gz", "cjson_1.7.15.orig.tar.gz")])
def test_flawfinder_after_the_previous_release_stores_what_a_full_run_stores(old, new, tmp_path):
    old_tree, new_tree = unpack(old, tmp_path / "old"), unpack(new, tmp_path / "new")
    full, incremental, reuse = full_and_incremental(old_tree, new_tree, ["flawfinder"], tmp_path)
    assert_same(full, incremental)
    assert reuse.reused > 0 and reuse.analyzed > 0      # some files changed, some did not
    without_cache = analyze(new_tree, ["flawfinder"], tmp_path)
    assert_same(without_cache, incremental)


def test_a_debian_minor_update_after_the_release_it_patches_stores_what_a_full_run_stores(tmp_path):
    old = part_of(debian_tree(CJSON_DEBIAN, tmp_path / "o", patched=False), CJSON_DEBIAN_PART, tmp_path / "old")
    new = part_of(debian_tree(CJSON_DEBIAN, tmp_path / "n", patched=True), CJSON_DEBIAN_PART, tmp_path / "new")
    full, incremental, reuse = full_and_incremental(old, new, ["flawfinder", "gcc"], tmp_path)
    assert_same(full, incremental)
    # The patches touch no header, but cJSON's tests include cJSON.c itself (tests/common.h): gcc
    # analyzes them again, flawfinder, reading each file alone, only the patched ones.
    patched = {"cJSON.c", "cJSON_Utils.c", "tests/misc_tests.c", "tests/parse_number.c"}
    assert reuse.reused_units["gcc"] == ["test.c", "tests/unity/src/unity.c"]
    assert not patched & set(reuse.reused_units["flawfinder"])
    assert {"cJSON.h", "cJSON_Utils.h", "test.c", "tests/cjson_add.c"} <= set(reuse.reused_units["flawfinder"])


def test_compiled_analyzers_after_the_previous_release_store_what_a_full_run_stores(tmp_path):
    old = part_of(unpack("cjson_1.7.14.orig.tar.gz", tmp_path / "o"), CJSON_PART, tmp_path / "old")
    new = part_of(unpack("cjson_1.7.15.orig.tar.gz", tmp_path / "n"), CJSON_PART, tmp_path / "new")
    full, incremental, reuse = full_and_incremental(old, new, ["gcc", "clang"], tmp_path)
    assert_same(full, incremental)
    # cJSON.h changed: every unit including it is analyzed again; Unity's own units are not.
    assert reuse.reused_units["gcc"] == ["tests/unity/src/unity.c"]
    assert reuse.reused_units["clang"] == ["tests/unity/src/unity.c"]


def test_a_header_change_invalidates_exactly_the_units_including_it(tmp_path):
    tree = part_of(unpack("cjson_1.7.15.orig.tar.gz", tmp_path / "n"), CJSON_PART, tmp_path / "tree")
    cache = UnitCache(str(tmp_path / "cache.db"), 1 << 30)
    analyze(tree, ["gcc", "flawfinder"], tmp_path, Reuse(cache, "debian/cjson"))
    header = tree / "cJSON_Utils.h"
    # Lines moved and a declaration added: the findings of cJSON_Utils.c are where they were,
    # but only analyzing it again can say so.
    header.write_text("/* moved */\n\n" + header.read_text().replace(
        '#include "cJSON.h"\n', '#include "cJSON.h"\nCJSON_PUBLIC(int) cJSONUtils_Unused(void);\n', 1))
    reuse = Reuse(cache, "debian/cjson")
    incremental = analyze(tree, ["gcc", "flawfinder"], tmp_path, reuse)
    assert "cJSON_Utils.c" not in reuse.reused_units["gcc"]
    assert {"cJSON.c", "test.c", "tests/unity/src/unity.c"} <= set(reuse.reused_units["gcc"])
    assert "cJSON_Utils.h" not in reuse.reused_units["flawfinder"]
    assert "cJSON_Utils.c" in reuse.reused_units["flawfinder"]  # flawfinder reads each file alone
    full = analyze(tree, ["gcc", "flawfinder"], tmp_path,
                   Reuse(UnitCache(str(tmp_path / "empty.db"), 1 << 30), "debian/cjson"))
    assert_same(full, incremental)


def test_a_different_package_reuses_nothing(tmp_path):
    tree = unpack("cjson_1.7.15.orig.tar.gz", tmp_path / "n")
    cache = UnitCache(str(tmp_path / "cache.db"), 1 << 30)
    analyze(tree, ["flawfinder"], tmp_path, Reuse(cache, "debian/cjson"))
    same, other = Reuse(cache, "debian/cjson"), Reuse(cache, "debian/not-cjson")
    analyze(tree, ["flawfinder"], tmp_path, same)
    analyze(tree, ["flawfinder"], tmp_path, other)
    assert same.analyzed == 0 and same.reused > 0
    assert other.reused == 0


def test_compiled_analyzers_share_one_build_and_store_what_separate_builds_store(tmp_path):
    tree = unpack_hello(tmp_path)
    sandbox = LocalSandbox(LocalSandboxConfig(build_on_host=True))
    settings = AnalyzersConfig(gcc=GccConfig(jobs=2), clang=ClangConfig(jobs=2))
    build = tmp_path / "build"
    build.mkdir()
    shared = []
    for analyzer in make_analyzers(["gcc", "clang"], settings):
        shared.append(run_analyzer(analyzer, tree, sandbox, LIMITS, {"c": 1}, str(tmp_path), build=build))
        if not shared[1:]:
            outcome = build / "kiskadee-build.json"
            built = (outcome.stat().st_mtime_ns, sorted(path.name for path in build.iterdir()))
    # clang took the units of gcc's build: nothing was configured or built again.
    assert (outcome.stat().st_mtime_ns, sorted(path.name for path in build.iterdir())) == built
    assert "tree" in built[1]
    separate = [analyze_tree(tree, make_analyzers([name], settings), sandbox, LIMITS, work_dir=str(tmp_path))[0]
                for name in ("gcc", "clang")]
    assert [run.mode for run in shared] == ["autotools", "autotools"]
    assert_same(separate, shared)


def test_a_unit_that_did_not_compile_is_reused_as_failed_with_its_reason(tmp_path):
    tree = tmp_path / "tiny-1.0"
    tree.mkdir()
    (tree / "good.c").write_text("#include <stdlib.h>\nvoid f(void)\n{\n    char *p = malloc(4);\n"
                                 "    free(p);\n    free(p);\n}\n")
    (tree / "bad.c").write_text('#include "missing.h"\nint g(void) { return MISSING; }\n')
    cache = UnitCache(str(tmp_path / "cache.db"), 1 << 30)
    first = analyze(tree, ["gcc"], tmp_path, Reuse(cache, "local/tiny"))
    reuse = Reuse(cache, "local/tiny")
    again = analyze(tree, ["gcc"], tmp_path, reuse)
    assert reuse.reused_units["gcc"] == ["bad.c", "good.c"] and reuse.analyzed == 0
    assert (again[0].files_analyzed, again[0].files_failed) == (1, 1)
    assert "bad.c: " in again[0].failed_files and "missing.h" in again[0].failed_files
    assert_same(first, again)
