"""`kiskadee waive` and `kiskadee export`: waivers carried forward, SARIF checked against the
official 2.1.0 schema and what GitHub code scanning needs of it, Firehose against its RELAX NG
schema and read back by the firehose library.

The data are the synthetic widget releases of tests/fixtures/synthetic analyzed by
the real cppcheck and flawfinder: 1.0, 1.1 (one fix, two new findings) and 1.2
(the same tree with a cppcheck that fails).
"""

import io
import json
import re
import sqlite3
import subprocess
import tarfile

import flawfinder
import jsonschema
import pytest
from firehose import model
from harness import FIXTURES, run_kiskadee
from lxml import etree

from kiskadee.results.export import ruletexts
from kiskadee.results.export.sarif import STORED_HASHES

SARIF_SCHEMA = json.loads((FIXTURES / "sarif" / "sarif-schema-2.1.0.json").read_text())
FIREHOSE_SCHEMA = etree.RelaxNG(etree.parse(str(FIXTURES / "firehose" / "firehose.rng")))
COMMENT = "name is checked to fit in 16 bytes by every caller"
# GitHub code scanning: security-severity is a score from 0.1 to 10.0 written as a string;
# primaryLocationLineHash is codeql-action's 64-bit hash in hex, ':' and the occurrence number.
SECURITY_SEVERITY = re.compile(r"^(10|[0-9])\.[0-9]$")
LINE_HASH = re.compile(r"^[0-9a-f]{1,16}:[1-9][0-9]*$")


@pytest.fixture(scope="module")
def widget(tmp_path_factory):
    """The three releases analyzed, and the 1.0 strcpy finding waived as a false positive."""
    work = tmp_path_factory.mktemp("export")
    db = work / "kiskadee.db"
    broken = work / "broken.toml"
    broken.write_text('[analyzers.cppcheck]\nextra_args = ["--no-such-option"]\n')
    for source, top, config in (("1.0", "widget-1.0", None), ("1.1", "widget-1.1", None),
                                ("1.1", "widget-1.2", broken)):
        tarball = work / f"{top}.tar.gz"
        with tarfile.open(tarball, "w:gz") as archive:
            archive.add(FIXTURES / "synthetic" / f"widget-{source}", arcname=top)
        assert run_kiskadee("analyze", tarball, "--db", db, config=config).returncode in (0, 1)
    strcpy = fingerprint_of(db, "1.0", "buffer.strcpy")
    waived = run_kiskadee("waive", strcpy[:10], "--as", "false-positive", "--comment", COMMENT, "--db", db)
    assert waived.returncode == 0, waived.stderr
    assert f"widget: {strcpy} waived as false-positive" in waived.stdout
    return db


def fingerprint_of(db, version, check):
    with sqlite3.connect(db) as connection:
        (row,) = connection.execute("SELECT fingerprint FROM finding_detail WHERE version = ? AND check_id = ?",
                                    (version, check)).fetchall()
    return row[0]


def fingerprints(db, version, analyzer):
    with sqlite3.connect(db) as connection:
        return sorted(r[0] for r in connection.execute(
            "SELECT fingerprint FROM finding_detail WHERE version = ? AND analyzer = ?", (version, analyzer)))


def export(db, version, fmt, *options):
    result = subprocess_export(db, version, fmt, *options)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if fmt in ("sarif", "json") else result.stdout.encode()


def subprocess_export(db, version, fmt, *options):
    return run_kiskadee("export", "widget", version, "--format", fmt, *options, "--db", db)


def sarif_valid(log):
    validator = jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]
    assert errors == []
    return log


def results_by_check(run):
    return {r["ruleId"]: r for r in run["results"]}


def test_a_waiver_is_carried_forward_and_shown(widget):
    strcpy = fingerprint_of(widget, "1.0", "buffer.strcpy")
    assert fingerprint_of(widget, "1.1", "buffer.strcpy") == strcpy
    shown = json.loads(run_kiskadee("show", "widget", "1.1", "--format", "json", "--db", widget).stdout)
    (finding,) = [f for f in shown["findings"] if f["fingerprint"] == strcpy]
    assert finding["waiver"]["kind"] == "false-positive" and finding["waiver"]["comment"] == COMMENT
    table = run_kiskadee("show", "widget", "1.1", "--db", widget).stdout
    assert any("buffer.strcpy" in line and "false-positive" in line and strcpy[:12] in line
               for line in table.splitlines())
    diffed = json.loads(run_kiskadee("diff", "widget", "1.1", "--all", "--format", "json", "--db", widget).stdout)
    (unchanged,) = [f for f in diffed["unchanged_findings"] if f["fingerprint"] == strcpy]
    assert unchanged["waiver"]["kind"] == "false-positive"


def test_sarif_is_valid_with_fingerprints_baseline_states_and_the_waiver_as_suppression(widget):
    log = sarif_valid(export(widget, "1.1", "sarif"))
    assert log["version"] == "2.1.0"
    cppcheck, flawfinder = log["runs"]
    assert (cppcheck["tool"]["driver"]["name"], cppcheck["tool"]["driver"]["version"]) == ("cppcheck", "2.10")
    for run in (cppcheck, flawfinder):
        name = run["tool"]["driver"]["name"]
        assert sorted(r["partialFingerprints"]["kiskadee/v1"] for r in run["results"]) == \
            fingerprints(widget, "1.1", name)
        assert run["invocations"][0]["executionSuccessful"] is True
    states = {r["ruleId"]: r["baselineState"] for run in log["runs"] for r in run["results"]}
    assert states == {"arrayIndexOutOfBounds": "unchanged", "constVariable": "unchanged", "memleak": "new",
                      "buffer.strcpy": "unchanged", "format.printf": "unchanged", "buffer.char": "unchanged",
                      "misc.fopen": "new"}
    strcpy = results_by_check(flawfinder)["buffer.strcpy"]
    assert strcpy["suppressions"] == [{"kind": "external", "status": "accepted",
                                       "justification": f"false-positive: {COMMENT}",
                                       "properties": strcpy["suppressions"][0]["properties"]}]
    assert all("suppressions" not in r for r in cppcheck["results"])
    leak = results_by_check(cppcheck)["memleak"]
    assert leak["level"] == "error" and leak["locations"][0]["physicalLocation"]["region"]["startLine"] == 44
    assert leak["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/widget.c"


def test_sarif_baseline_guid_names_the_previous_versions_run(widget):
    before = sarif_valid(export(widget, "1.0", "sarif"))
    after = sarif_valid(export(widget, "1.1", "sarif"))
    assert [r["baselineGuid"] for r in after["runs"]] == [r["automationDetails"]["guid"] for r in before["runs"]]
    assert all("baselineState" not in r for run in before["runs"] for r in run["results"])   # nothing before 1.0


def rules_by_id(run):
    return {r["id"]: r for r in run["tool"]["driver"]["rules"]}


def test_sarif_rules_have_the_analyzers_documentation_and_security_severity(widget):
    log = sarif_valid(export(widget, "1.1", "sarif"))
    cppcheck, flawfinder = (rules_by_id(run) for run in log["runs"])
    for rule in [*cppcheck.values(), *flawfinder.values()]:
        for field in ("shortDescription", "fullDescription", "help"):
            assert rule[field]["text"].strip(), (rule["id"], field)
        assert rule["shortDescription"]["text"] != rule["id"]
        properties = rule.get("properties", {})
        if "security-severity" in properties:
            assert SECURITY_SEVERITY.match(properties["security-severity"]) and "security" in properties["tags"]
    # cppcheck's --errorlist texts; flawfinder's warning and suggestion.
    assert cppcheck["memleak"]["shortDescription"]["text"] == "Memory leak: varname"
    assert "out of bounds" in cppcheck["arrayIndexOutOfBounds"]["fullDescription"]["text"]
    assert "Consider using snprintf" in flawfinder["buffer.strcpy"]["help"]["text"]
    assert "cwe.mitre.org/data/definitions/120.html" in flawfinder["buffer.strcpy"]["help"]["markdown"]
    severities = {check: rule.get("properties", {}).get("security-severity")
                  for check, rule in [*cppcheck.items(), *flawfinder.items()]}
    assert severities == {"arrayIndexOutOfBounds": "9.0", "memleak": "5.0", "constVariable": None,
                          "buffer.strcpy": "9.0", "format.printf": "9.0", "misc.fopen": "5.0", "buffer.char": "9.0"}
    assert cppcheck["constVariable"]["properties"]["tags"] == ["external/cwe/cwe-398"]   # code quality


def test_the_shipped_rule_texts_are_those_of_the_installed_analyzers():
    """A stale table (an analyzer upgraded, packaging/refresh-rule-texts not run) fails here."""
    errorlist = etree.fromstring(subprocess.run(["cppcheck", "--errorlist"], capture_output=True,
                                                check=True).stdout)
    documented = {e.get("id"): (e.get("msg"), e.get("verbose")) for e in errorlist.iter("error")}
    assert {check: (text[0], text[1] or text[0]) for check, text in ruletexts.TEXTS["cppcheck"].items()} == documented
    assert ruletexts.VERSIONS["cppcheck"] == errorlist.find("cppcheck").get("version")
    assert ruletexts.VERSIONS["flawfinder"] == flawfinder.version
    names = {f"{rule[4]}.{name}" for names, rule in flawfinder.c_ruleset.items() for name in names.split("|")}
    assert set(ruletexts.TEXTS["flawfinder"]) == names


def test_sarif_results_have_codeql_actions_line_hash(widget):
    log = sarif_valid(export(widget, "1.1", "sarif"))
    for run in log["runs"]:
        assert run["properties"]["lineHashes"] == STORED_HASHES     # by the runner, from the analyzed files
        hashes = [r["partialFingerprints"]["primaryLocationLineHash"] for r in run["results"]]
        assert hashes and all(LINE_HASH.match(h) for h in hashes)
        assert len(set(hashes)) == len(hashes)
    # The hash covers a line and the hundred characters after it: widget.h is the same in both
    # releases, so is its finding's hash; the code after the strcpy line changed, so did its hash.
    flawfinder = {version: results_by_check(sarif_valid(export(widget, version, "sarif"))["runs"][1])
                  for version in ("1.0", "1.1")}
    hashes = {check: {flawfinder[v][check]["partialFingerprints"]["primaryLocationLineHash"] for v in flawfinder}
              for check in ("buffer.char", "buffer.strcpy")}
    assert (len(hashes["buffer.char"]), len(hashes["buffer.strcpy"])) == (1, 2)


def test_sarif_of_findings_stored_without_line_hashes_and_no_source_says_why(tmp_path):
    tarball = tmp_path / "widget-1.0.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(FIXTURES / "synthetic" / "widget-1.0", arcname="widget-1.0")
    db = tmp_path / "kiskadee.db"
    assert run_kiskadee("analyze", tarball, "--db", db).returncode in (0, 1)
    tarball.unlink()
    with sqlite3.connect(db) as connection:     # as a kiskadee before schema 12 stored them
        connection.execute("UPDATE finding SET context = '', context_line = 0, line_hash = ''")
    log = sarif_valid(json.loads(run_kiskadee("export", "widget", "1.0", "--db", db).stdout))
    assert all(run["properties"]["lineHashes"] == f"not computed: {tarball} is gone" for run in log["runs"])
    assert all(list(r["partialFingerprints"]) == ["kiskadee/v1"] for run in log["runs"] for r in run["results"])


def test_sarif_category_is_the_same_for_every_release_of_a_package(widget):
    runs = {version: sarif_valid(export(widget, version, "sarif"))["runs"] for version in ("1.0", "1.1")}
    categories = {version: [run["automationDetails"]["id"] for run in found] for version, found in runs.items()}
    assert categories["1.0"] == categories["1.1"] == ["kiskadee/local/widget/cppcheck/",
                                                      "kiskadee/local/widget/flawfinder/"]
    assert [r["automationDetails"]["correlationGuid"] for r in runs["1.0"]] == \
        [r["automationDetails"]["correlationGuid"] for r in runs["1.1"]]
    assert runs["1.0"][0]["automationDetails"]["guid"] != runs["1.1"][0]["automationDetails"]["guid"]
    for version, found in runs.items():
        for run in found:
            assert run["properties"]["version"] == version
            assert f"widget {version} " in run["automationDetails"]["description"]["text"]
            assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == f"file:///widget-{version}/"


def test_sarif_of_a_failed_analyzer_says_so_and_claims_no_baseline(widget):
    log = sarif_valid(export(widget, "1.2", "sarif"))
    cppcheck, flawfinder = log["runs"]
    invocation = cppcheck["invocations"][0]
    assert invocation["executionSuccessful"] is False and cppcheck["results"] == []
    assert "--no-such-option" in invocation["toolExecutionNotifications"][0]["message"]["text"]
    assert "baselineGuid" not in cppcheck
    assert {r["baselineState"] for r in flawfinder["results"]} == {"unchanged"}


def test_a_withdrawn_waiver_is_no_longer_a_suppression(widget, tmp_path):
    copy = tmp_path / "copy.db"
    with sqlite3.connect(widget) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    strcpy = fingerprint_of(copy, "1.1", "buffer.strcpy")
    assert run_kiskadee("waive", strcpy, "--remove", "--db", copy).returncode == 0
    log = sarif_valid(export(copy, "1.1", "sarif"))
    assert all("suppressions" not in r for run in log["runs"] for r in run["results"])


def test_firehose_is_valid_and_reads_back(widget):
    document = export(widget, "1.1", "firehose")
    assert FIREHOSE_SCHEMA.validate(etree.fromstring(document)), FIREHOSE_SCHEMA.error_log
    analysis = model.Analysis.from_xml(io.BytesIO(document))
    assert analysis.metadata.generator.name == "kiskadee"
    issues = [r for r in analysis.results if isinstance(r, model.Issue)]
    assert sorted(i.customfields["fingerprint"] for i in issues) == sorted(
        fingerprints(widget, "1.1", "cppcheck") + fingerprints(widget, "1.1", "flawfinder"))
    (leak,) = [i for i in issues if i.testid == "memleak"]
    assert (leak.cwe, leak.severity, leak.location.file.givenpath, leak.location.line) == (401, "high",
                                                                                           "src/widget.c", 44)
    assert leak.customfields["baseline-state"] == "new" and leak.customfields["analyzer"] == "cppcheck"
    (strcpy,) = [i for i in issues if i.testid == "buffer.strcpy"]
    assert strcpy.customfields["waiver"] == "false-positive"
    assert analysis.customfields["previous-version"] == "1.0"


def test_firehose_reports_the_failed_analyzer_as_a_failure(widget):
    document = export(widget, "1.2", "firehose")
    assert FIREHOSE_SCHEMA.validate(etree.fromstring(document)), FIREHOSE_SCHEMA.error_log
    analysis = model.Analysis.from_xml(io.BytesIO(document))
    (failure,) = [r for r in analysis.results if isinstance(r, model.Failure)]
    assert failure.failureid == "failed" and failure.customfields["analyzer"] == "cppcheck"
    assert "--no-such-option" in failure.message.text


def test_one_analyzer_exports_as_its_own_generator(widget):
    document = export(widget, "1.1", "firehose", "--analyzer", "flawfinder")
    analysis = model.Analysis.from_xml(io.BytesIO(document))
    assert (analysis.metadata.generator.name, analysis.metadata.generator.version) == ("flawfinder", "2.0.20")
    assert {r.customfields["analyzer"] for r in analysis.results} == {"flawfinder"}
    log = sarif_valid(export(widget, "1.1", "sarif", "--analyzer", "flawfinder"))
    assert [r["tool"]["driver"]["name"] for r in log["runs"]] == ["flawfinder"]


def test_json_export_has_baseline_states_and_waivers(widget, tmp_path):
    output = tmp_path / "widget-1.1.json"
    assert subprocess_export(widget, "1.1", "json", "-o", output).returncode == 0
    data = json.loads(output.read_text())
    assert (data["package"], data["version"], data["previous"]) == ("widget", "1.1", "1.0")
    states = {f["check_id"]: f["baseline_state"] for f in data["findings"]}
    assert states["memleak"] == "new" and states["arrayIndexOutOfBounds"] == "unchanged"
    (strcpy,) = [f for f in data["findings"] if f["check_id"] == "buffer.strcpy"]
    assert strcpy["waiver"]["comment"] == COMMENT


def test_usage_errors(widget):
    assert run_kiskadee("waive", "0123456789", "--as", "bug", "--db", widget).returncode == 6
    missing_kind = run_kiskadee("waive", "0123456789", "--db", widget)
    assert missing_kind.returncode == 2 and "--as" in missing_kind.stderr
    assert subprocess_export(widget, "9.9", "sarif").returncode == 6
    assert subprocess_export(widget, "1.1", "sarif", "--analyzer", "lint9000").returncode == 6
