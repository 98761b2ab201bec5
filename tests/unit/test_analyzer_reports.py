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


def test_flawfinder_keeps_every_cwe_the_mapped_one_first():
    findings = Flawfinder(FlawfinderConfig()).parse(FLAWFINDER_REPORT)
    with open(FLAWFINDER_REPORT, newline="") as stream:
        columns = [row["CWEs"] for row in csv.DictReader(stream)]
    by_column = dict(zip(columns, findings))
    # flawfinder(1): 'CWE-119!/CWE-120' is mapped to 119; 'CWE-362/CWE-367!' to 367, a subset of 362.
    assert by_column["CWE-119!/CWE-120"].cwes == (119, 120)
    assert by_column["CWE-362/CWE-367!"].cwes == (367, 362)
    assert (by_column["CWE-120/CWE-785!"].cwe, by_column["CWE-120/CWE-785!"].cwes) == (785, (785, 120))
    assert by_column["CWE-120, CWE-20"].cwes == (120, 20)
    assert by_column["CWE-134"].cwes == (134,)
    assert sum(len(f.cwes) > 1 for f in findings) == sum("," in c or "/" in c for c in columns) == 113


def test_cppcheck_information_is_asked_for_but_kept_only_when_enabled(tmp_path):
    plain, informed = Cppcheck(CppcheckConfig()), Cppcheck(CppcheckConfig(enable="warning,information"))
    assert "--enable=warning,style,performance,portability,information" in plain.argv(".", "/out", 60)
    assert "--enable=warning,information" in informed.argv(".", "/out", 60)
    report = tmp_path / "cppcheck.xml"
    report.write_text(CPPCHECK_WITH_INFORMATION)
    assert [(f.check_id, f.path) for f in plain.parse(report)] == [
        ("syntaxError", "syntax.c"), ("toomanyconfigs", "")]
    summary = plain.parse(report)[1]
    assert summary.message.startswith("Too many #ifdef configurations - cppcheck only checks 12 configurations.")
    assert [f.check_id for f in informed.parse(report)] == [
        "noValidConfiguration", "toomanyconfigs", "syntaxError"]
    cut = tmp_path / "cut.xml"        # a run killed at its timeout: cppcheck's summary never came
    cut.write_text(CPPCHECK_WITH_INFORMATION[:CPPCHECK_WITH_INFORMATION.index("</errors>")])
    assert [f.check_id for f in plain.parse_partial(cut)] == ["syntaxError"]
    assert plain.not_analyzed(report) == {
        "noconf.c": "no valid preprocessor configuration (cppcheck noValidConfiguration)",
        "syntax.c": "syntax error at line 2"}


# From cppcheck 2.10 --enable=warning,information on small files like those of
# tests/integration/test_finding_data.py ('verbose' texts shortened).
CPPCHECK_WITH_INFORMATION = """<?xml version="1.0" encoding="UTF-8"?>
<results version="2">
    <cppcheck version="2.10"/>
    <errors>
        <error id="noValidConfiguration" severity="information" msg="This file is not analyzed. Cppcheck failed to extract a valid configuration. \
Use -v for more details." verbose="..." file0="noconf.c">
            <location file="noconf.c" line="0" column="0"/>
        </error>
        <error id="toomanyconfigs" severity="information" msg="Too many #ifdef configurations - cppcheck only checks 12 of 26 configurations. \
Use --force to check all configurations." verbose="..." cwe="398">
            <location file="lib/error.c" line="0" column="0"/>
        </error>
        <error id="syntaxError" severity="error" msg="syntax error" verbose="syntax error" file0="syntax.c">
            <location file="syntax.c" line="2" column="12"/>
        </error>
    </errors>
</results>
"""
