"""What is kept of a report cut short: cppcheck's XML killed mid-write, one compiled unit's broken report."""

import json

from harness import FIXTURES

from kiskadee.analysis.analyzers.cppcheck import Cppcheck
from kiskadee.analysis.analyzers.gcc import Gcc
from kiskadee.analysis.driver import index
from kiskadee.config import CppcheckConfig, GccConfig

CPPCHECK_REPORT = FIXTURES / "analyzers" / "cppcheck-2.10-hello-2.10.xml"
GCC_REPORT = FIXTURES / "analyzers" / "planted" / "gcc-12.2.0-double_free.json"
PLANTED = "/work/main/tests/fixtures/planted"       # where the gcc report was recorded


def test_cppcheck_report_killed_mid_error_keeps_every_complete_error(tmp_path):
    text = CPPCHECK_REPORT.read_text()
    whole = Cppcheck(CppcheckConfig()).parse(CPPCHECK_REPORT)
    fifth = [at for at in range(len(text)) if text.startswith("<error ", at)][4]
    cut = tmp_path / "cppcheck.xml"
    cut.write_text(text[:fifth + 40])               # four errors whole, the fifth cut off in its attributes
    assert Cppcheck(CppcheckConfig()).parse_partial(cut) == whole[:4]


def test_cppcheck_report_with_only_its_header_keeps_nothing(tmp_path):
    cut = tmp_path / "cppcheck.xml"
    cut.write_text(CPPCHECK_REPORT.read_text().split("<errors>")[0])
    assert Cppcheck(CppcheckConfig()).parse_partial(cut) == []


def test_a_unit_whose_report_is_broken_fails_alone(tmp_path):
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / "00001.json").write_text(GCC_REPORT.read_text())
    (tmp_path / "units" / "00002.json").write_text("cc1: out of memory allocating 208 bytes\n")
    unit = {"directory": PLANTED, "status": "ok", "reason": ""}
    index.write(tmp_path, {"format": index.FORMAT, "finished": True, "source_root": PLANTED, "copy_root": None,
                           "mode": "per-file", "units": [dict(unit, file="src/double_free.c", reports=["units/00001.json"]),
                                                         dict(unit, file="src/big.c", reports=["units/00002.json"])]})
    gcc = Gcc(GccConfig())
    findings = gcc.parse(tmp_path / index.INDEX)
    assert {(f.path, f.line, f.check_id) for f in findings} == {
        ("src/double_free.c", 13, "analyzer-double-free"), ("src/double_free.c", 13, "use-after-free")}
    coverage = gcc.coverage(tmp_path)
    assert (coverage.files_analyzed, coverage.files_failed) == (1, 1)
    assert coverage.failed_files.startswith("src/big.c: its report could not be read: cannot read gcc report 00002.json")
    assert json.loads((tmp_path / index.INDEX).read_text())["units"][1]["reports"] == []
