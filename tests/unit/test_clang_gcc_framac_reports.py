"""Parsing recorded raw reports of clang, gcc -fanalyzer and Frama-C (see tests/fixtures/SOURCES.md)."""

import csv
import json

import pytest
from harness import FIXTURES

from kiskadee.analysis.analyzers.base import ReportError
from kiskadee.analysis.analyzers.checkers import classify
from kiskadee.analysis.analyzers.clang import Clang
from kiskadee.analysis.analyzers.framac import ALARMS, FramaC
from kiskadee.analysis.analyzers.gcc import Gcc
from kiskadee.analysis.driver import index
from kiskadee.analysis.driver.tools import entry_points, gcc_diagnostics
from kiskadee.config import ClangConfig, FramacConfig, GccConfig, from_mapping
from kiskadee.errors import ConfigError

REPORTS = FIXTURES / "analyzers" / "planted"
RECORDED_IN = "/work/main/tests/fixtures/planted"       # where the reports were recorded
ROOTS = ["", RECORDED_IN]
PLANTED = RECORDED_IN       # the tree root the reports' relative paths were written against


def test_clang_sarif_double_free():
    (finding,) = Clang(ClangConfig()).parse_report(REPORTS / "clang-14.0.6-double_free.sarif", ROOTS, ROOTS[1])
    assert (finding.path, finding.line, finding.column) == ("src/double_free.c", 13, 5)
    assert (finding.check_id, finding.cwe, finding.severity) == ("unix.Malloc", 415, "high")
    assert finding.message == "Attempt to free released memory"


def test_gcc_json_keeps_analyzer_and_listed_warnings_only():
    report = REPORTS / "gcc-12.2.0-double_free.json"
    findings = list(Gcc(GccConfig()).parse_report(report, ROOTS, PLANTED))
    raw = json.loads(report.read_text())
    assert {d["kind"] for d in raw} == {"warning", "note"}          # notes are not findings
    assert sorted((f.check_id, f.line, f.cwe) for f in findings) == [
        ("analyzer-double-free", 13, 415), ("use-after-free", 13, 416)]
    analyzer = next(f for f in findings if f.check_id == "analyzer-double-free")
    assert (analyzer.path, analyzer.function, analyzer.severity) == ("src/double_free.c", "release_twice", "high")
    assert analyzer.message == "double-'free' of 'buffer'"


def test_gcc_warning_not_listed_is_dropped():
    report = REPORTS / "gcc-12.2.0-double_free.json"
    only_analyzer = Gcc(GccConfig(warnings=()))
    assert [f.check_id for f in only_analyzer.parse_report(report, ROOTS, PLANTED)] == ["analyzer-double-free"]


def test_gcc_errors_and_fatal_errors_are_not_findings():
    gcc = Gcc(GccConfig())
    assert list(gcc.parse_report(REPORTS / "gcc-12.2.0-broken.json", ROOTS, PLANTED)) == []
    fatal = (REPORTS / "gcc-12.2.0-fatal.json").read_text()
    assert fatal.rstrip().endswith("compilation terminated.")       # text after the JSON array
    assert [d["kind"] for d in gcc_diagnostics(fatal)] == ["fatal error"]
    assert list(gcc.parse_report(REPORTS / "gcc-12.2.0-fatal.json", ROOTS, PLANTED)) == []


def test_gcc_broken_report_is_a_report_error(tmp_path):
    broken = tmp_path / "00001.json"
    broken.write_text('[{"kind": "warning", ')
    with pytest.raises(ReportError, match="cannot read gcc report"):
        list(Gcc(GccConfig()).parse_report(broken, ROOTS, PLANTED))


def framac_rows(report):
    with open(report, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream, delimiter="\t"))


def test_framac_csv_alarms_not_proven_valid_in_the_tree():
    report = REPORTS / "framac-25.0-leak.csv"
    findings = list(FramaC(FramacConfig()).parse_report(report, ROOTS, PLANTED))
    expected = [r for r in framac_rows(report) if not r["directory"].startswith("FRAMAC_SHARE")
                and (r["property kind"] in ALARMS or r["property kind"].startswith("precondition of "))
                and r["status"] in ("Unknown", "Invalid", "Invalid or unreachable")]
    assert len(findings) == len(expected) == 6
    assert all(f.path == "src/leak.c" and f.severity == "low" for f in findings)
    room = [f for f in findings if f.check_id == "precondition.strcpy" and "room_string" in f.message]
    assert [(f.line, f.cwes, f.function) for f in room] == [(16, (120, 787), "count_words")]


def test_framac_invalid_status_is_high():
    findings = list(FramaC(FramacConfig()).parse_report(REPORTS / "framac-25.0-use_after_free.csv", ROOTS, PLANTED))
    assert [(f.check_id, f.line, f.cwe, f.severity) for f in findings] == [("dangling_pointer", 13, 416, "high")]
    assert findings[0].message == "use of a dangling pointer: assert ¬\\dangling(&cell)"


def test_framac_entry_points_from_metrics():
    assert entry_points((REPORTS / "framac-25.0-main-metrics.txt").read_text()) == ["main"]
    assert entry_points("[metrics] nothing\n") == []


def test_tool_versions():
    assert Clang(ClangConfig()).parse_version("Debian clang version 14.0.6\nTarget: x86_64\n") == "14.0.6"
    assert Clang(ClangConfig()).parse_version("clang version 17.0.6 (Fedora 17.0.6-1.fc39)\n") == "17.0.6"
    assert Gcc(GccConfig()).parse_version("12.2.0\n") == "12.2.0"
    assert FramaC(FramacConfig()).parse_version("25.0-beta (Manganese)") == "25.0-beta"
    with pytest.raises(ReportError):
        Gcc(GccConfig()).parse_version("gcc: fatal error\n")


@pytest.mark.parametrize("analyzer, checker, message, expected", [
    ("clang", "unix.Malloc", "Attempt to free released memory", ((415,), "high")),
    ("clang", "unix.Malloc", "Use of memory after it is freed", ((416,), "high")),
    ("clang", "unix.Malloc", "Potential leak of memory pointed to by 'p'", ((401,), "medium")),
    ("clang", "core.uninitialized.Assign", "Assigned value is garbage", ((457,), "medium")),
    ("clang", "deadcode.DeadStores", "Value stored is never read", ((563,), "low")),
    ("gcc", "analyzer-possible-null-dereference", "dereference of possibly-NULL", ((), "medium")),
    ("gcc", "stringop-overflow", "writing 18 bytes into a region of size 8", ((787,), "high")),
    ("framac", "precondition.free", "freeable: p == \\null || \\freeable(p)", ((763,), "")),
])
def test_checker_table(analyzer, checker, message, expected):
    assert classify(analyzer, checker, message) == expected


OVER_READ, OVER_WRITE, COPY_OVERFLOW = (126, 125), (787,), (120, 787)


# Frama-C 25's libc clauses (share/libc/*.h) as its report prints them: 'name: predicate'.
@pytest.mark.parametrize("function, clause, expected", [
    ("strlen", "valid_string_s: valid_read_string(s)", OVER_READ),
    ("wcslen", "valid_string_s: valid_read_wstring(s)", OVER_READ),
    ("strnlen", "valid_string_s: valid_read_nstring(s, n)", OVER_READ),
    ("strtok", "valid_string_s: valid_string(s)", OVER_READ),
    ("strcpy", "valid_string_src: valid_read_string(src)", OVER_READ),
    ("wcscpy", "valid_wstring_src: valid_read_wstring(src)", OVER_READ),
    ("strncpy", "valid_nstring_src: valid_read_nstring(src, n)", OVER_READ),
    ("wcsncpy", "valid_nwstring_src: valid_read_nwstring(src, n)", OVER_READ),
    ("memcpy", "valid_src: valid_read_or_empty(src, n)", OVER_READ),
    ("memccpy", "valid_src: \\valid_read(src + (0 .. n - 1))", OVER_READ),
    ("strstr", "valid_string_haystack: valid_read_string(haystack)", OVER_READ),
    ("strstr", "valid_string_needle: valid_read_string(needle)", OVER_READ),
    ("open", "valid_string_path: valid_read_string(path)", OVER_READ),
    ("strtol", "valid_nptr: \\valid_read(nptr)", OVER_READ),
    ("memset", "valid_s: valid_or_empty(s, n)", OVER_WRITE),
    ("wmemset", "valid_wcs: \\valid(wcs + (0 .. n - 1))", OVER_WRITE),
    ("getcwd", "valid_buf: \\valid(buf + (0 .. size - 1))", OVER_WRITE),
    ("strcpy", "room_string: \\valid(dest + (0 .. strlen(src)))", COPY_OVERFLOW),
    ("strncpy", "room_nstring: \\valid(dest + (0 .. n - 1))", COPY_OVERFLOW),
    ("wcsncat", "room_for_concatenation: \\valid(dest + (wcslen(dest) .. wcslen(dest) + wcslen(src)))",
     COPY_OVERFLOW),
    ("memcpy", "valid_dest: valid_or_empty(dest, n)", COPY_OVERFLOW),
    ("strcat", "valid_string_dest: valid_string(dest)", COPY_OVERFLOW),
    ("wcscat", "valid_wstring_dest: valid_wstring(dest)", COPY_OVERFLOW),
    # A pointer to one object, not a buffer read or written out of bounds: no CWE is claimed.
    ("fclose", "valid_stream: \\valid(stream)", ()),
    ("fstat", "valid_buf: \\valid(buf)", ()),
])
def test_framac_library_preconditions_on_buffers_have_cwes(function, clause, expected):
    assert classify("framac", f"precondition.{function}", clause) == (expected, "")


def test_framac_string_precondition_in_a_real_report_has_both_cwes():
    report = REPORTS / "framac-25.0-leak.csv"
    findings = list(FramaC(FramacConfig()).parse_report(report, ROOTS, PLANTED))
    strlen = [f for f in findings if "valid_string_s" in f.message or "valid_string_src" in f.message]
    assert strlen and all((f.cwe, f.cwes) == (126, OVER_READ) for f in strlen)
    assert not [f for f in findings if f.check_id.startswith("precondition.") and f.cwe is None]


def test_index_naming_a_report_outside_the_output_is_refused(tmp_path):
    (tmp_path / "secret").write_text("not a report")
    output = tmp_path / "output"
    output.mkdir()
    index.write(output, {"format": index.FORMAT, "finished": True, "source_root": "/src", "copy_root": None,
                         "units": [{"file": "a.c", "directory": "/src", "status": "ok", "reason": "",
                                    "reports": ["../secret"]}]})
    with pytest.raises(ReportError, match="outside the output directory"):
        Clang(ClangConfig()).parse(output / index.INDEX)


def test_unfinished_index_is_a_report_error_but_gives_coverage(tmp_path):
    index.write(tmp_path, {"format": index.FORMAT, "finished": False, "source_root": "/src", "mode": "cmake",
                           "units": [{"file": "a.c", "directory": "/src", "status": "ok", "reason": "", "reports": []},
                                     {"file": "b.c", "directory": "/src", "status": "pending", "reason": "",
                                      "reports": []}]})
    with pytest.raises(ReportError, match="did not finish"):
        Gcc(GccConfig()).parse(tmp_path / index.INDEX)
    coverage = Gcc(GccConfig()).coverage(tmp_path)
    assert (coverage.mode, coverage.files_analyzed, coverage.files_failed) == ("cmake", 1, 1)
    assert coverage.failed_files == "b.c: pending"


def test_unknown_mode_is_a_configuration_error():
    with pytest.raises(ConfigError, match="analyzers.clang.mode' must be one of auto, per-file"):
        from_mapping({"analyzers": {"clang": {"mode": "fast"}}}, "k.toml")


def test_coverage_travels_in_result_messages():
    from kiskadee.core.runs import AnalyzerRun
    from kiskadee.service import wire

    run = AnalyzerRun("gcc", "12.2.0", "ok", 1.5, mode="autotools", files_analyzed=21, files_failed=1,
                      fallback="", failed_files="lib/a.c: error: x")
    frame = wire.encode("result", runner="r1", job=7, runs=[run.to_wire()])
    (received,) = wire.decode(frame).fields["runs"]
    assert AnalyzerRun.from_wire(received) == run
    forged = dict(run.to_wire(), files_analyzed="21")
    with pytest.raises(wire.WireError, match="files_analyzed"):
        wire.encode("result", runner="r1", job=7, runs=[forged])
