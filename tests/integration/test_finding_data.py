"""Complete finding data from the real analyzers: functions, every CWE, and what was not analyzed.

cppcheck, flawfinder, clang, gcc and Frama-C are the ones ``make setup``
installs; the inputs are the planted tree and small files written here.
"""

import shutil

from harness import FIXTURES

from kiskadee.analysis.analyzers import make_analyzers
from kiskadee.analysis.functions import FunctionIndex
from kiskadee.analysis.pipeline import analyze_tree
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.analysis.sandbox.local import LocalSandbox
from kiskadee.config import from_mapping

LIMITS = Limits(timeout=300, memory_mb=4096, max_output_bytes=64 * 1024**2)
SYNTAX_ERROR = "int sum(int a, int b)\n{\n  return a +;\n}\n"
# Every preprocessor configuration of this file ends at an #error: cppcheck finds no valid one.
NO_VALID_CONFIGURATION = '#ifdef A\n#error "a"\n#else\n#error "b"\n#endif\nint g(void) { return 0; }\n'
FINE = "int fine(void)\n{\n  char b[2];\n  b[5] = 1;\n  return b[0];\n}\n"
LATIN1 = "/* caf\xe9 */\nint copy(char *p)\n{\n  strcpy(p, \"x\");\n  return 0;\n}\n".encode("latin-1")


def analyze(tree, names, **sections):
    analyzers = make_analyzers(names, from_mapping({"analyzers": sections}).analyzers)
    return {run.analyzer: run for run in analyze_tree(tree, analyzers, LocalSandbox(), LIMITS)}


def write_tree(root, files):
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def test_every_analyzer_names_the_function_of_its_findings(tmp_path):
    tree = tmp_path / "planted-1.0"
    shutil.copytree(FIXTURES / "planted", tree)
    runs = analyze(tree, ["cppcheck", "flawfinder", "clang", "gcc"])
    for name, run in runs.items():
        in_code = [f for f in run.findings if f.path.startswith("src/") and f.line > 0]
        assert run.status == "ok" and in_code, name
        assert all(f.function for f in in_code), (name, [f for f in in_code if not f.function])
    double_frees = [f for name in ("clang", "cppcheck") for f in runs[name].findings
                    if f.path == "src/double_free.c" and f.line == 13]
    assert double_frees and {f.function for f in double_frees} == {"release_twice"}
    # gcc names the function itself (kept as it is); the parser agrees with it wherever it does.
    parsed = FunctionIndex(tree)
    told = [(f.path, f.line, f.function) for f in runs["gcc"].findings if f.function]
    assert told and all(parsed.function_at(path, line) == function for path, line, function in told)


def test_cppcheck_counts_the_files_it_gave_up_on(tmp_path):
    tree = write_tree(tmp_path / "t", {"src/syntax.c": SYNTAX_ERROR, "src/noconf.c": NO_VALID_CONFIGURATION,
                                       "src/fine.c": FINE, "include/fine.h": "int fine(void);\n"})
    run = analyze(tree, ["cppcheck"])["cppcheck"]
    assert run.status == "ok"
    assert (run.mode, run.files_analyzed, run.files_failed) == ("per-file", 1, 2)
    assert run.failed_files.splitlines() == [
        "src/noconf.c: no valid preprocessor configuration (cppcheck noValidConfiguration)",
        "src/syntax.c: syntax error at line 3"]
    # 'information' was asked for behind the configuration's back: none of it became a finding.
    assert {f.check_id for f in run.findings} == {"arrayIndexOutOfBounds", "syntaxError"}
    bounds = next(f for f in run.findings if f.check_id == "arrayIndexOutOfBounds")
    assert (bounds.function, bounds.cwes) == ("fine", (788,))


def test_flawfinder_counts_files_that_are_not_utf8_and_keeps_every_cwe(tmp_path):
    tree = write_tree(tmp_path / "t", {"latin1.c": LATIN1, "fine.c": FINE, ".git/hook.c": LATIN1})
    run = analyze(tree, ["flawfinder"])["flawfinder"]
    assert run.status == "ok"
    assert (run.mode, run.files_analyzed, run.files_failed) == ("per-file", 1, 1)
    assert run.failed_files == "latin1.c: not UTF-8 (flawfinder skips such files)"
    (array,) = run.findings
    assert (array.check_id, array.cwe, array.cwes, array.function) == ("buffer.char", 119, (119, 120), "fine")


def test_a_tree_of_headers_alone_is_skipped_by_every_analyzer_that_reads_no_header(tmp_path):
    tree = write_tree(tmp_path / "t", {"include/api.h": "int api(void);\n", "README": "headers only\n"})
    runs = analyze(tree, ["clang", "gcc", "framac", "cppcheck", "flawfinder"])
    assert {name: run.status for name, run in runs.items()} == {
        "clang": "skipped", "gcc": "skipped", "framac": "skipped", "cppcheck": "skipped", "flawfinder": "ok"}
    assert runs["clang"].error == "no c or c++ source file to compile (headers are not compiled on their own)"
    assert all(runs[name].files_analyzed is None and runs[name].mode == "" for name in ("clang", "gcc", "framac"))
    assert runs["flawfinder"].files_analyzed == 1


def test_a_file_that_does_not_compile_is_recorded_with_its_first_error(tmp_path):
    # Forty errors make clang's messages far longer than their tail that used to be kept.
    deep = "some/very/long/directory/name/that/goes/on/and/on"
    body = "".join(f"int f{n}(void) {{ return undeclared_{n} + 1; }}\n" for n in range(1, 41))
    tree = write_tree(tmp_path / "t", {f"{deep}/broken.c": body, "ok.c": FINE})
    runs = analyze(tree, ["clang", "gcc"])
    for name, run in runs.items():
        assert (run.files_analyzed, run.files_failed) == (1, 1), name
        (line,) = run.failed_files.splitlines()
        path, reason = line.split(": ", 1)
        assert path == f"{deep}/broken.c" and "undeclared_1'" in reason, (name, reason)
        assert "\n" not in reason and len(reason) <= 400
    assert runs["clang"].failed_files.endswith(f"{deep}/broken.c:1:23: error: use of undeclared identifier "
                                               "'undeclared_1'")
