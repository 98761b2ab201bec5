"""SARIF 2.1.0 (OASIS) export: one run per analyzer.

- Each result carries kiskadee's fingerprint in ``partialFingerprints``, so
  SARIF consumers match findings across releases as kiskadee does.
- ``baselineState`` is ``new`` or ``unchanged`` against the previous analyzed
  version, and left out where there is none or the analyzer did not complete
  on it (the run's ``properties.baseline`` says why). ``baselineGuid`` names
  the previous version's run by the same deterministic GUID scheme as
  ``automationDetails.guid``.
- Waivers of kind ``false-positive`` and ``intentional`` become external,
  accepted ``suppressions`` with the comment as justification. A ``bug``
  verdict confirms the finding, so it stays an active result and the
  verdict is in its properties.
- An analyzer that failed or timed out is a run with
  ``executionSuccessful: false`` and the error as a notification.
"""

import uuid
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote

from kiskadee.core import ranking
from kiskadee.results.export.collect import Export

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
VERSION = "2.1.0"
FINGERPRINT_KEY = "kiskadee/v1"
LEVELS = {"high": "error", "medium": "warning", "low": "note", "info": "note"}
SUPPRESSING_WAIVERS = ("false-positive", "intentional")
# Run GUIDs are derived from fetcher, package, version and analyzer, so a later
# export can name the run of the previous version as its baseline.
_RUN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:kiskadee:sarif-run")


def to_sarif(export: Export) -> Dict:
    """The SARIF log of an export, as JSON-ready data."""
    return {"$schema": SCHEMA, "version": VERSION, "runs": [_run(export, a) for a in export.analyses]}


def run_guid(fetcher: str, package: str, version: str, analyzer: str) -> str:
    return str(uuid.uuid5(_RUN_NAMESPACE, "\0".join((fetcher, package, version, analyzer))))


def _run(export: Export, analysis: Dict) -> Dict:
    name = analysis["analyzer"]
    findings = [f for f in export.findings if f["analyzer"] == name]
    rules, index = _rules(findings)
    run = {
        "tool": {"driver": _driver(analysis, rules)},
        "invocations": [_invocation(analysis)],
        "automationDetails": {
            "id": f"kiskadee/{export.fetcher}/{export.package}/{export.version}/{name}",
            "guid": run_guid(export.fetcher, export.package, export.version, name),
        },
        "originalUriBaseIds": {"SRCROOT": {"description": {
            "text": f"The top directory of {export.package} {export.version} ({export.source_url or 'source'})"}}},
        "results": [_result(f, index) for f in findings],
        "properties": {"package": export.package, "fetcher": export.fetcher, "version": export.version,
                       "previousVersion": export.previous, "baseline": _baseline_note(export, analysis)},
    }
    if export.previous and not analysis["baseline"]:
        run["baselineGuid"] = run_guid(export.fetcher, export.package, export.previous, name)
    return run


def _baseline_note(export: Export, analysis: Dict) -> str:
    if not export.previous:
        return "no earlier analyzed version: no baseline states"
    return analysis["baseline"] or f"compared with {export.previous}"


def _driver(analysis: Dict, rules: List[Dict]) -> Dict:
    driver = {"name": analysis["analyzer"], "rules": rules}
    if analysis["analyzer_version"] and analysis["analyzer_version"] != "unknown":
        driver["version"] = analysis["analyzer_version"]
    return driver


def _invocation(analysis: Dict) -> Dict:
    invocation = {"executionSuccessful": analysis["status"] in ("ok", "skipped"),
                  "properties": {"status": analysis["status"], "duration": analysis["duration"]}}
    if analysis["error"]:
        level = "note" if analysis["status"] == "skipped" else "error"
        invocation["toolExecutionNotifications"] = [{"level": level, "message": {"text": analysis["error"]}}]
    return invocation


def _rules(findings: List[Dict]) -> Tuple[List[Dict], Dict[str, int]]:
    """One reporting descriptor per check id, and each check id's index among them."""
    rules: List[Dict] = []
    index: Dict[str, int] = {}
    for finding in findings:
        check = finding["check_id"]
        if check in index:
            continue
        index[check] = len(rules)
        rule = {"id": check, "shortDescription": {"text": check}}
        if finding["cwe"]:
            rule["properties"] = {"tags": [f"external/cwe/cwe-{finding['cwe']}"]}
        rules.append(rule)
    return rules, index


def _result(finding: Dict, index: Dict[str, int]) -> Dict:
    result = {
        "ruleId": finding["check_id"],
        "ruleIndex": index[finding["check_id"]],
        "level": LEVELS[finding["severity"]],
        "message": {"text": finding["message"] or finding["check_id"]},
        "locations": _locations(finding),
        "partialFingerprints": {FINGERPRINT_KEY: finding["fingerprint"]},
        "properties": _properties(finding),
    }
    if finding["baseline_state"]:
        result["baselineState"] = finding["baseline_state"]
    suppression = _suppression(finding["waiver"])
    if suppression:
        result["suppressions"] = [suppression]
    return result


def _locations(finding: Dict) -> List[Dict]:
    if not finding["path"]:
        return []
    physical = {"artifactLocation": {"uri": quote(finding["path"]), "uriBaseId": "SRCROOT"}}
    if finding["line"] > 0:
        physical["region"] = {"startLine": finding["line"]}
        if finding["column"] > 0:
            physical["region"]["startColumn"] = finding["column"]
    location = {"physicalLocation": physical}
    if finding["function"]:
        location["logicalLocations"] = [{"name": finding["function"], "kind": "function"}]
    return [location]


def _properties(finding: Dict) -> Dict:
    properties = {"severity": finding["severity"], "rank": finding["rank"], "survived": finding["survived"]}
    if finding["cwe"]:
        properties["cwe"] = finding["cwe"]
        properties["cweClass"] = ranking.cwe_class(finding["cwe"])
        properties["tags"] = [f"external/cwe/cwe-{finding['cwe']}"]
    if finding["waiver"]:
        properties["waiver"] = finding["waiver"]
    return properties


def _suppression(waiver: Optional[Dict]) -> Optional[Dict]:
    if not waiver or waiver["kind"] not in SUPPRESSING_WAIVERS:
        return None
    justification = f"{waiver['kind']}: {waiver['comment']}" if waiver["comment"] else waiver["kind"]
    return {"kind": "external", "status": "accepted", "justification": justification,
            "properties": {"waiver": waiver["kind"], "author": waiver["author"],
                           "createdAt": waiver["created_at"]}}
