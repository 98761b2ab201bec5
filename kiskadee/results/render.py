"""Formatting results for people: aligned tables on a terminal, JSON for programs."""

import json
from typing import Dict, List, Sequence

from kiskadee.core.findings import SEVERITIES

FAILED_FILES_SHOWN = 20     # files not analyzed listed per analyzer; the database has them all


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def packages_table(summaries: List[Dict]) -> str:
    if not summaries:
        return "no packages yet; analyze one with 'kiskadee analyze SOURCE'"
    return table(
        ("PACKAGE", "FETCHER", "VERSIONS", "LATEST", "STATE", "FINDINGS"),
        [(s["package"], s["fetcher"], s["versions"], s["latest"], s["state"], s["findings"])
         for s in summaries],
    )


def version_text(report: Dict) -> str:
    """The analyses of a version, then its best-ranked findings."""
    lines = [f"{report['package']} {report['version']} ({report['fetcher']}): {report['state']}"]
    if report["source_url"]:
        lines.append(f"source: {report['source_url']}" + (f"  sha256 {report['sha256']}" if report["sha256"] else ""))
    lines += ["", _analyses_table(report["analyses"])]
    errors = [f"  {a['analyzer']}: {a['error']}" for a in report["analyses"] if a["error"]]
    if errors:
        lines += ["", "problems:"] + errors
    coverage = _coverage_lines(report["analyses"])
    if coverage:
        lines += ["", "coverage:"] + coverage
    if report["findings"]:
        lines += ["", _findings_table(report["findings"])]
    return "\n".join(lines)


def _coverage_lines(analyses: List[Dict]) -> List[str]:
    """For analyzers that compile the code: how, how many files, which did not compile."""
    lines = []
    for a in analyses:
        coverage = a.get("coverage")
        if not coverage:
            continue
        total = coverage["files_analyzed"] + coverage["files_failed"]
        lines.append(f"  {a['analyzer']}: {coverage['mode'] or 'nothing'} mode, "
                     f"{coverage['files_analyzed']} of {total} files analyzed")
        if coverage["fallback"]:
            lines.append(f"    build mode not used: {coverage['fallback']}")
        failed = coverage["failed_files"]
        lines += [f"    not analyzed: {line}" for line in failed[:FAILED_FILES_SHOWN]]
        if len(failed) > FAILED_FILES_SHOWN:
            lines.append(f"    not analyzed: ... and {len(failed) - FAILED_FILES_SHOWN} more files")
    return lines


def _analyses_table(analyses: List[Dict]) -> str:
    return table(
        ("ANALYZER", "VERSION", "STATUS", "SECONDS", "FINDINGS") + tuple(s.upper() for s in SEVERITIES),
        [(a["analyzer"], a["analyzer_version"], a["status"], f"{a['duration']:.1f}", a["finding_count"],
          *(a["by_severity"].get(s, 0) for s in SEVERITIES)) for a in analyses],
    )


def _findings_table(findings: List[Dict]) -> str:
    return table(
        ("RANK", "SEVERITY", "ANALYZER", "LOCATION", "CHECK", "CWE", "FINGERPRINT", "WAIVER", "MESSAGE"),
        [(f"{f['rank']:.1f}", f["severity"], f["analyzer"], f"{f['path']}:{f['line']}", f["check_id"],
          f["cwe"] or "", f["fingerprint"][:12], (f.get("waiver") or {}).get("kind", ""),
          _shorten(f["message"], 70)) for f in findings],
    )


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def as_json(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=True)
