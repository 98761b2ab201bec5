"""Formatting results for people: aligned tables on a terminal, JSON for programs.

The text of ``packages``, ``show`` (and ``analyze``), ``diff`` and ``status``:
each function takes the plain data a query or ``kiskadee.results.diff``
returns and gives a string; the command line prints it.
"""

import datetime
import json
import textwrap
from typing import Dict, List, Optional, Sequence

from kiskadee.core.findings import SEVERITIES
from kiskadee.core.states import VersionState

FAILED_FILES_SHOWN = 20     # files not analyzed listed per analyzer; the database has them all
ERROR_WIDTH = 100           # 'kiskadee status' wraps error lines here; it never cuts them
# Versions counted in 'kiskadee status' even at zero; seen and unresolved only when present.
ALWAYS_COUNTED = (VersionState.QUEUED, VersionState.LEASED, VersionState.DONE, VersionState.FAILED)


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
    """``data`` as indented JSON with sorted keys."""
    return json.dumps(data, indent=2, sort_keys=True)


def jsonable(value):
    """``value`` with datetimes as ISO 8601 strings (UTC), for ``as_json``."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat() + "Z"
    return value


# diff ------------------------------------------------------------------------

def diff_text(data: Dict, unchanged: bool = False) -> str:
    """The diff (``kiskadee.results.diff.as_data``) for a terminal: analyzers, counts, then the findings that matter."""
    old, new = data["old"], data["new"]
    counts = data["counts"]
    lines = [f"{data['package']} {old} -> {new} ({data['fetcher']})", "",
             table(("ANALYZER", old, new, "NOTE"),
                   [(a["analyzer"], _side_text(a["old"]), _side_text(a["new"]), a["note"] or "compared")
                    for a in data["analyzers"]]),
             "", f"new {counts['new']}, fixed {counts['fixed']}, unchanged {counts['unchanged']}"
                 + (f" ({counts['moved']} of them moved)" if counts.get("moved") else "")
                 + f", not analyzed {counts['not_analyzed']}"]
    sections = [("new in " + new, data["new_findings"]), ("fixed in " + new, data["fixed_findings"]),
                ("not analyzed on one side (neither new nor fixed)", data["not_analyzed_findings"])]
    if unchanged:
        sections.append(("unchanged", data["unchanged_findings"]))
    for title, rows in sections:
        if rows:
            lines += ["", f"{title}:", _diff_findings_table(rows)]
    if data.get("moved_findings"):
        lines += ["", "moved (unchanged; the waiver of FROM holds for TO):", _moved_table(data["moved_findings"])]
    return "\n".join(lines)


def _side_text(side: Optional[Dict]) -> str:
    return "did not run" if side is None else f"{side['status']} ({side['tool_version']})"


def _diff_findings_table(rows: List[Dict]) -> str:
    """Findings with the version they belong to, their fingerprint and waiver."""
    return table(
        ("RANK", "SEVERITY", "ANALYZER", "VERSION", "LOCATION", "CHECK", "CWE", "FINGERPRINT", "WAIVER", "MESSAGE"),
        [(f"{f['rank']:.1f}", f["severity"], f["analyzer"], f["version"], f"{f['path']}:{f['line']}",
          f["check_id"], f["cwe"] or "", f["fingerprint"][:12], (f["waiver"] or {}).get("kind", ""),
          _shorten(f["message"], 60)) for f in rows])


def _moved_table(rows: List[Dict]) -> str:
    """Moved findings: where OLD had them, where NEW has them, and the waiver they carry."""
    return table(
        ("SEVERITY", "ANALYZER", "CHECK", "FROM", "TO", "FINGERPRINT", "WAIVER"),
        [(f["severity"], f["analyzer"], f["check_id"], f"{f['moved_from']['path']}:{f['moved_from']['line']}",
          f"{f['path']}:{f['line']}", f"{f['moved_from']['fingerprint'][:12]} -> {f['fingerprint'][:12]}",
          (f["waiver"] or {}).get("kind", "")) for f in rows])


# status ----------------------------------------------------------------------

def status_text(data: Dict, now: datetime.datetime) -> str:
    """The status report (``kiskadee.store.status.collect``) for people."""
    counts = data["versions"]
    lines = ["versions: " + "  ".join(f"{state} {n}" for state, n in counts.items()
                                      if n or state in ALWAYS_COUNTED)]
    lines.append(_queue_line(data["queue"], now))
    lines += ["", _runners_text(data["runners"])]
    if data["failures"]:
        lines += ["", "recent failures:", _failures_text(data["failures"])]
    return "\n".join(lines)


def _failures_text(failures: List[Dict]) -> str:
    """A row per failed version with its whole error on the lines under it, long lines wrapped."""
    rows = table(("PACKAGE", "VERSION", "STATE", "FINISHED"),
                 [(f["package"], f["version"], f["state"], _when(f["finished_at"])) for f in failures]).split("\n")
    lines = rows[:1]
    for row, failure in zip(rows[1:], failures):
        lines.append(row)
        lines += [wrapped for line in (failure["error"] or "").splitlines() if line.strip()
                  for wrapped in textwrap.wrap(line, ERROR_WIDTH, initial_indent="  ", subsequent_indent="    ",
                                               break_long_words=False, break_on_hyphens=False)]
    return "\n".join(lines)


def _queue_line(queue: Dict, now: datetime.datetime) -> str:
    line = f"queue: {queue['due']} due now, {queue['waiting']} waiting on backoff"
    if queue["next_due"]:
        line += f" (next in {_ago((queue['next_due'] - now).total_seconds())})"
    return line


def _runners_text(rows: List[Dict]) -> str:
    if not rows:
        return "no runners yet; start them with 'kiskadee run' or 'kiskadee runner'"
    return table(
        ("RUNNER", "STATE", "PACKAGE", "VERSION", "ACTIVITY", "LAST SEEN"),
        [(r["name"], r["state"], r["package"], r["version"], r["activity"],
          f"{_ago(r['seconds_ago'])} ago") for r in rows])


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def _when(moment: Optional[datetime.datetime]) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""
