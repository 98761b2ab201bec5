"""SARIF 2.1.0 (OASIS) export: one run per analyzer.

- Each result carries kiskadee's fingerprint in ``partialFingerprints``, so
  SARIF consumers match findings across releases as kiskadee does, and
  GitHub's ``primaryLocationLineHash`` (computed as codeql-action does, see
  ``kiskadee.core.linehash``): the one the runner stored with the finding,
  else computed where the analyzed source is still on this host
  (``sourcetree``; the run's ``properties.lineHashes`` says which).
- A result's region has the flagged line as its ``snippet`` and a
  ``contextRegion`` with the lines around it, as the runner stored them
  (each cut to 240 characters, a cut one ending with an ellipsis).
- Rules carry the analyzers' own descriptions and help, their CWEs, and for
  security rules GitHub's ``security-severity`` (``rules``).
- ``automationDetails.id`` is a GitHub category per fetcher, package and
  analyzer (``kiskadee/debian/lz4/cppcheck/``), the same for every release,
  so an alert fixed in a later release is closed there; the version is in
  the run's properties and ``automationDetails.description``.
- ``originalUriBaseIds.SRCROOT`` has a ``uri`` (``file:///PKG-VERSION/``,
  where the source unpacks), without which CodeChecker reads no result.
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
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote

from kiskadee.core import ranking
from kiskadee.results.export import rules as described
from kiskadee.results.export import sourcetree
from kiskadee.results.export.collect import Export

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
VERSION = "2.1.0"
FINGERPRINT_KEY = "kiskadee/v1"
LINE_HASH_KEY = "primaryLocationLineHash"
STORED_HASHES = "stored with the findings, as the runner computed them from the analyzed files"
LEVELS = {"high": "error", "medium": "warning", "low": "note", "info": "note"}
SUPPRESSING_WAIVERS = ("false-positive", "intentional")
# Run GUIDs are derived from fetcher, package, version and analyzer, so a later
# export can name the run of the previous version as its baseline.
_RUN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:kiskadee:sarif-run")


def to_sarif(export: Export, source: Optional[Path] = None) -> Dict:
    """The SARIF log of an export, as JSON-ready data.

    ``source`` is the analyzed source tree or archive, for the line hashes;
    by default the local file or directory the version was analyzed from, if
    it is still there.
    """
    hashes, note = _line_hashes(export, source)
    runs = [_run(export, analysis, hashes, note) for analysis in export.analyses]
    return {"$schema": SCHEMA, "version": VERSION, "runs": runs}


def _line_hashes(export: Export, source: Optional[Path]) -> Tuple[Dict[int, str], str]:
    """The line hash of each located finding (by id), stored or else computed, and a note saying where from."""
    located = [f for f in export.findings if f["path"] and f["line"] > 0]
    hashes = {f["id"]: f["line_hash"] for f in located if f.get("line_hash")}
    missing = [f for f in located if f["id"] not in hashes]
    if not missing:
        return hashes, STORED_HASHES
    with sourcetree.opened(export, source) as (root, note):
        if root:
            hashes.update(sourcetree.finding_line_hashes(root, missing))
    return hashes, (f"{STORED_HASHES}; for {len(missing)} others, {note}" if len(missing) < len(located) else note)


def run_guid(fetcher: str, package: str, version: str, analyzer: str) -> str:
    return str(uuid.uuid5(_RUN_NAMESPACE, "\0".join((fetcher, package, version, analyzer))))


def category(fetcher: str, package: str, analyzer: str) -> str:
    """GitHub's code scanning category of a package's runs of one analyzer: no version in it."""
    return "/".join(quote(part, safe="") for part in ("kiskadee", fetcher, package, analyzer)) + "/"


def source_root_uri(package: str, version: str) -> str:
    """Where SRCROOT stands for: the directory the source unpacks to, as an absolute URI."""
    return f"file:///{quote(package, safe='')}-{quote(version, safe='')}/"


def _run(export: Export, analysis: Dict, hashes: Dict[int, str], hash_note: str) -> Dict:
    name = analysis["analyzer"]
    findings = [f for f in export.findings if f["analyzer"] == name]
    rules, index = _rules(name, findings)
    run = {
        "tool": {"driver": _driver(analysis, rules)},
        "invocations": [_invocation(analysis)],
        "automationDetails": _automation_details(export, name),
        "originalUriBaseIds": {"SRCROOT": {
            "uri": source_root_uri(export.package, export.version),
            "description": {"text": f"The top directory of {export.package} {export.version} "
                                    f"({export.source_url or 'source'}) where it is unpacked"}}},
        "results": [_result(f, index, hashes.get(f["id"])) for f in findings],
        "properties": {"package": export.package, "fetcher": export.fetcher, "version": export.version,
                       "previousVersion": export.previous, "baseline": _baseline_note(export, analysis),
                       "sourceUrl": export.source_url, "sha256": export.sha256, "lineHashes": hash_note},
    }
    if export.previous and not analysis["baseline"]:
        run["baselineGuid"] = run_guid(export.fetcher, export.package, export.previous, name)
    return run


def _automation_details(export: Export, analyzer: str) -> Dict:
    """The run's GitHub category (no version), its own GUID and one GUID shared by the category's runs."""
    shared = category(export.fetcher, export.package, analyzer)
    return {"id": shared,
            "guid": run_guid(export.fetcher, export.package, export.version, analyzer),
            "correlationGuid": str(uuid.uuid5(_RUN_NAMESPACE, shared)),
            "description": {"text": f"{export.package} {export.version} ({export.fetcher}) analyzed by {analyzer}"}}


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


def _rules(analyzer: str, findings: List[Dict]) -> Tuple[List[Dict], Dict[str, int]]:
    """One reporting descriptor per check id, and each check id's index among them."""
    cwes: Dict[str, set] = {}
    for finding in findings:
        cwes.setdefault(finding["check_id"], set()).update(_cwes(finding))
    rules = [described.descriptor(analyzer, check, seen) for check, seen in cwes.items()]
    return rules, {check: number for number, check in enumerate(cwes)}


def _cwes(finding: Dict) -> List[int]:
    """Every CWE of a finding: the store's "119,120" (or a list), else its main CWE."""
    listed = finding.get("cwes") or ()
    if isinstance(listed, str):
        listed = listed.split(",")
    numbers = [int(c) for c in listed if str(c).strip()]
    return numbers or ([finding["cwe"]] if finding["cwe"] else [])


def _result(finding: Dict, index: Dict[str, int], line_hash: Optional[str]) -> Dict:
    result = {
        "ruleId": finding["check_id"],
        "ruleIndex": index[finding["check_id"]],
        "level": LEVELS[finding["severity"]],
        "message": {"text": finding["message"] or finding["check_id"]},
        "locations": _locations(finding),
        "partialFingerprints": {FINGERPRINT_KEY: finding["fingerprint"]},
        "properties": _properties(finding),
    }
    if line_hash:
        result["partialFingerprints"][LINE_HASH_KEY] = line_hash
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
        _add_snippets(physical, finding)
    location = {"physicalLocation": physical}
    if finding["function"]:
        location["logicalLocations"] = [{"name": finding["function"], "kind": "function"}]
    return [location]


def _add_snippets(physical: Dict, finding: Dict) -> None:
    """The flagged line as the region's snippet and the lines around it as its context region, where stored."""
    lines = sourcetree.stored_lines(finding)
    flagged = [text for number, text in lines if number == finding["line"]]
    if not flagged:
        return
    physical["region"]["snippet"] = {"text": flagged[0]}
    physical["contextRegion"] = {"startLine": lines[0][0], "endLine": lines[-1][0],
                                 "snippet": {"text": "\n".join(text for _, text in lines)}}


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
