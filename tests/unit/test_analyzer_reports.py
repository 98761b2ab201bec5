"""Parsing recorded real analyzer reports (see tests/fixtures/SOURCES.md)."""

import csv
import xml.etree.ElementTree as ElementTree

import pytest
from harness import FIXTURES

from kiskadee.analysis.analyzers.base import ReportError
from kiskadee.analysis.analyzers.cppcheck import Cppcheck
from kiskadee.analysis.analyzers.flawfinder import Flawfinder
from kiskadee.config import CppcheckConfig, FlawfinderConfig

CPPCHECK_REPORT = FIXTURES / "analyzers" / "cppcheck-2.10-hello-2.10.xml"
FLAWFINDER_REPORT = FIXTURES / "analyzers" / "flawfinder-2.0.20-hello-2.10.csv"


def test_cppcheck_report_every_error_becomes_a_finding():
    findings = Cppcheck(CppcheckConfig()).parse(CPPCHECK_REPORT)
    raw = ElementTree.parse(CPPCHECK_REPORT).getroot().findall("./errors/error")
    assert len(findings) == len(raw) == 12


def test_cppcheck_null_pointer_in_hello():
    findings = Cppcheck(CppcheckConfig()).parse(CPPCHECK_REPORT)
    nulls = [f for f in findings if f.check_id == "nullPointer"]
    assert [(f.path, f.line, f.cwe, f.severity) for f in nulls] == [
        ("src/hello.c", 98, 476, "high"), ("src/hello.c", 102, 476, "high")]
    assert nulls[0].column == 43


def test_cppcheck_error_without_location_is_kept():
    findings = Cppcheck(CppcheckConfig()).parse(CPPCHECK_REPORT)
    config = [f for f in findings if f.check_id == "toomanyconfigs"]
    assert len(config) == 1 and config[0].path == "" and config[0].line == 0
    assert config[0].severity == "info"


def test_cppcheck_version_and_broken_report(tmp_path):
    analyzer = Cppcheck(CppcheckConfig())
    assert analyzer.parse_version("Cppcheck 2.10\n") == "2.10"
    broken = tmp_path / "cppcheck.xml"
    broken.write_text("<results><errors><error id=")
    with pytest.raises(ReportError, match="cannot read cppcheck report"):
        analyzer.parse(broken)


def test_flawfinder_report_every_row_becomes_a_finding():
    findings = Flawfinder(FlawfinderConfig()).parse(FLAWFINDER_REPORT)
    with open(FLAWFINDER_REPORT, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(findings) == len(rows) == 334


def test_flawfinder_getopt_long_in_hello():
    findings = Flawfinder(FlawfinderConfig()).parse(FLAWFINDER_REPORT)
    (getopt,) = [f for f in findings if f.path == "src/hello.c"]
    assert getopt.check_id == "buffer.getopt_long"
    assert (getopt.line, getopt.column, getopt.cwe, getopt.severity) == (68, 18, 120, "medium")
    assert not any(f.path.startswith("./") for f in findings)


def test_flawfinder_levels_map_to_the_common_scale():
    findings = Flawfinder(FlawfinderConfig()).parse(FLAWFINDER_REPORT)
    gets = [f for f in findings if f.check_id == "buffer.gets"]
    assert gets and all(f.severity == "high" for f in gets)      # level 5


def test_flawfinder_csv_without_expected_columns(tmp_path):
    report = tmp_path / "out.csv"
    report.write_text("Foo,Bar\n1,2\n")
    with pytest.raises(ReportError, match="lacks columns"):
        Flawfinder(FlawfinderConfig()).parse(report)
    assert Flawfinder(FlawfinderConfig()).parse_version("2.0.20\n") == "2.0.20"
