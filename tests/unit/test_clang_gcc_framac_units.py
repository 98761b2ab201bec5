"""How the compile driver finds translation units and their flags, for clang, gcc and Frama-C."""

import json
import shutil

from harness import FIXTURES

from kiskadee.analysis.driver import buildmode
from kiskadee.analysis.driver.compiledb import kept_flags, read_units
from kiskadee.analysis.driver.index import source_path
from kiskadee.analysis.driver.process import head
from kiskadee.analysis.driver.tools import first_error
from kiskadee.analysis.driver.units import include_order, per_file_units

PLANTED = FIXTURES / "planted"


def test_real_flags_kept_build_details_dropped():
    bear_arguments = ["gcc", "-DHAVE_CONFIG_H", '-DLOCALEDIR="/usr/share/locale"', "-I", "lib", "-I../lib",
                      "-O2", "-Wall", "-MT", "hello.o", "-MD", "-MP", "-MF", ".deps/hello.Tpo",
                      "-std=gnu99", "-include", "config.h", "-c", "-o", "src/hello.o", "src/hello.c"]
    assert kept_flags(bear_arguments[1:]) == [
        "-DHAVE_CONFIG_H", '-DLOCALEDIR="/usr/share/locale"', "-I", "lib", "-I../lib", "-std=gnu99",
        "-include", "config.h"]


def test_compile_database_units(tmp_path):
    database = tmp_path / "compile_commands.json"
    database.write_text(json.dumps([
        {"directory": "/b", "file": "src/a.c", "arguments": ["cc", "-Iinc", "-c", "src/a.c"]},
        {"directory": "/b", "file": "src/a.c", "arguments": ["cc", "-DOTHER", "-c", "src/a.c"]},
        {"directory": "/b", "file": "/b/src/b.cpp", "command": "c++ -DX=1 -O2 -c /b/src/b.cpp"},
        {"directory": "/b", "file": "src/start.S", "arguments": ["cc", "-c", "src/start.S"]},
    ]))
    units = read_units(database)
    assert [(u.path, u.flags, u.language) for u in units] == [
        ("/b/src/a.c", ("-Iinc",), "c"), ("/b/src/b.cpp", ("-DX=1",), "c++")]


def test_per_file_mode_guesses_includes_and_generates_an_empty_config_h(tmp_path):
    units, guesses = per_file_units(PLANTED, tmp_path / "generated")
    assert sorted(u.file for u in units) == [
        "src/broken.c", "src/double_free.c", "src/leak.c", "src/main.c", "src/null_deref.c",
        "src/overflow.c", "src/use_after_free.c"]
    assert units[0].flags == ("-DHAVE_CONFIG_H", "-I.", "-Iinclude", f"-I{tmp_path / 'generated'}")
    assert "#define" not in (tmp_path / "generated" / "config.h").read_text()
    assert guesses == {"include_directories": 2, "generated_config_h": "empty"}


def test_per_file_config_h_from_the_autoconf_template(tmp_path):
    tree = tmp_path / "pkg-1.0"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "pkg.c").write_text("int main(void) { return 0; }\n")
    (tree / "configure.ac").write_text("AC_INIT([pkg], [1.0])\nAC_CONFIG_HEADERS([config.h:config.in])\n")
    (tree / "config.in").write_text("#undef HAVE_FOO\n#undef PACKAGE_BUGREPORT\n#define _GL_UNUSED\n")
    _units, guesses = per_file_units(tree, tmp_path / "generated")
    generated = (tmp_path / "generated" / "config.h").read_text()
    assert guesses["generated_config_h"] == "config.in"
    assert '#define PACKAGE_BUGREPORT "unknown"' in generated
    assert "#undef HAVE_FOO" in generated and "#define _GL_UNUSED" in generated


def test_a_tree_with_its_own_config_h_gets_none_generated(tmp_path):
    tree = tmp_path / "t"
    shutil.copytree(PLANTED, tree)
    (tree / "include" / "config.h").write_text("#define PLANTED 1\n")
    units, guesses = per_file_units(tree, tmp_path / "generated")
    assert guesses["generated_config_h"] == ""
    assert not (tmp_path / "generated").exists()
    assert not any("generated" in flag for flag in units[0].flags)


def test_include_order_root_then_include_directories_then_depth():
    assert include_order(["src/win32", "lib", "include", "src/include/sub", "src/include"]) == [
        ".", "include", "src/include", "lib", "src/win32", "src/include/sub"]


def test_report_paths_relative_to_the_source_root():
    roots = ["/out/build/tree", "/src"]
    assert source_path("file:///src/lib/a%20b.c", roots) == "lib/a b.c"
    assert source_path("/out/build/tree/src/hello.c", roots) == "src/hello.c"
    assert source_path("../lib/x.h", roots, "/src/src") == "lib/x.h"
    assert source_path("/usr/include/stdio.h", roots) == "/usr/include/stdio.h"


def test_build_system_detection(tmp_path):
    assert buildmode.detect(PLANTED) == ""
    (tmp_path / "meson.build").write_text("project('x', 'c')\n")
    assert buildmode.detect(tmp_path) == "meson"
    (tmp_path / "CMakeLists.txt").write_text("project(x C)\n")
    assert buildmode.detect(tmp_path) == "cmake"
    (tmp_path / "configure").write_text("#!/bin/sh\n")
    assert buildmode.detect(tmp_path) == "cmake"            # not executable: not a configure script
    (tmp_path / "configure").chmod(0o755)
    assert buildmode.detect(tmp_path) == "autotools"


# What Frama-C 25 printed for a file including a header that does not exist (stdout, then stderr).
FRAMAC_STDOUT = """[kernel] Parsing a.c (with preprocessing)
[kernel] User Error: failed to run: gcc -E -C -I. -I/usr/share/frama-c/libc -D__FRAMAC__ -dD -nostdinc -m64 '/src/a.c'
  (PWD: /src)
  this is possibly due to missing preprocessor flags;
[kernel] Frama-C aborted: invalid user input.
"""
FRAMAC_STDERR = """/src/a.c:1:10: fatal error: does_not_exist_anywhere.h: No such file or directory
    1 | #include "does_not_exist_anywhere.h"
      |          ^~~~~~~~~~~~~~~~~~~~~~~~~~~
compilation terminated.
"""


def test_a_failed_file_is_recorded_with_its_first_error_line():
    assert first_error(FRAMAC_STDERR, FRAMAC_STDOUT) == (
        "/src/a.c:1:10: fatal error: does_not_exist_anywhere.h: No such file or directory")
    assert first_error("", "warning: x\nSegmentation fault (core dumped)\n") == "Segmentation fault (core dumped)"
    long_line = "src/a.c:1:1: error: " + "x" * 1000
    assert len(first_error(long_line)) == 400 and first_error(long_line).endswith("...")


def test_the_head_of_a_log_ends_on_a_whole_line(tmp_path):
    log = tmp_path / "00001.err"
    log.write_text("src/a.c:1:5: error: first\n" + "src/a.c:2:5: error: later\n" * 10000)
    start = head(log, 100)
    assert start.startswith("src/a.c:1:5: error: first\n") and start.endswith("later")
    assert len(start) <= 100 and head(tmp_path / "missing") == ""
