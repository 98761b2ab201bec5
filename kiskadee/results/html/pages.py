"""The report's pages as HTML text, from the plain data the readers below ``results`` give.

Each function takes data (``kiskadee.results.export.collect``'s export of a
version, ``kiskadee.results.diff.as_data``, package summaries) and the
relative links to other pages, and returns a whole page. ``kiskadee.results.html.site``
decides where pages go and writes them.
"""

from typing import Dict, List, Optional, Sequence

from kiskadee.core.findings import SEVERITIES
from kiskadee.results.html.findings import filter_form, findings_table
from kiskadee.results.html.markup import attrs, cell, counts_cells, link, page, table, text

FAILED_FILES_SHOWN = 20     # files not analyzed listed per analyzer, as 'kiskadee show' lists them


def _dl(pairs: Sequence[tuple]) -> str:
    """A definition list of (label, html) pairs; the html is made by the caller from escaped parts."""
    items = "".join(f"<dt>{text(label)}</dt><dd>{value}</dd>" for label, value in pairs if value)
    return f"<dl>{items}</dl>"


def _status(status: str) -> str:
    return f"<span{attrs(class_=f'status-{status}')}>{text(status)}</span>"


# the version page ------------------------------------------------------------------

def version_page(version: Dict, export, context: Dict[int, list], context_note: str, links: Dict[str, str],
                 generated: str) -> str:
    """A version: what was analyzed, each analysis, then its findings best ranked first.

    ``version`` holds the state, error and finish time of the version row;
    ``export`` is None when no analyzer ran (the fetch or unpack failed).
    ``links`` has ``root``, ``package``, and ``previous`` and ``diff`` when there is a previous version.
    """
    title = f"{version['package']} {version['version']}"
    facts = [("fetcher", text(version["fetcher"])), ("state", _status(version["state"])),
             ("finished", text(version["finished_at"])), ("source", text(version["source_url"])),
             ("sha256", text(version["sha256"])), ("error", f"<pre>{text(version['error'])}</pre>"
                                                   if version["error"] else "")]
    if export and export.previous:
        facts.append(("previous", link(links["previous"], export.previous) + " &middot; "
                      + link(links["diff"], f"what changed since {export.previous}")))
    body = [_dl(facts)]
    if export is None:
        body.append("<p>No analyzer ran on this version.</p>")
    else:
        with_state = bool(export.previous)      # new or unchanged: only against a previous version
        body += ["<h2>Analyses</h2>", _analyses_table(export.analyses), "<h2>Findings</h2>",
                 _findings_summary(export.findings, export.previous),
                 f'<p class="note">{text(context_note)}</p>' if context_note else "",
                 filter_form(export.findings, with_state), findings_table("findings", export.findings, context,
                                                                          with_state)]
    crumbs = [link(links["root"] + "index.html", "packages"), link(links["package"], version["package"])]
    return page(title, links["root"], crumbs, "\n".join(body), generated)


def _analyses_table(analyses: List[Dict]) -> str:
    headers = ("analyzer", "tool version", "status", "seconds", "findings", *SEVERITIES, "coverage", "notes")
    rows = []
    for a in analyses:
        notes = [n for n in (a.get("baseline"), a["error"]) if n]
        rows.append("<tr>" + cell(a["analyzer"]) + cell(a["analyzer_version"]) + f"<td>{_status(a['status'])}</td>"
                    + cell(f"{a['duration']:.1f}", "n") + cell(a["finding_count"], "n")
                    + counts_cells(a["by_severity"]) + f"<td>{_coverage(a.get('coverage'))}</td>"
                    + f"<td>{'<br>'.join(text(n) for n in notes)}</td></tr>")
    return table(headers, rows)


def _coverage(coverage: Optional[Dict]) -> str:
    """How an analyzer that compiles the code ran: its mode, the files analyzed, those that were not."""
    if not coverage:
        return ""
    total = coverage["files_analyzed"] + coverage["files_failed"]
    parts = [text(f"{coverage['mode'] or 'nothing'} mode, {coverage['files_analyzed']} of {total} files")]
    if coverage["fallback"]:
        parts.append(text(f"build mode not used: {coverage['fallback']}"))
    failed = coverage["failed_files"]
    if failed:
        more = f"<li>... and {len(failed) - FAILED_FILES_SHOWN} more</li>" if len(failed) > FAILED_FILES_SHOWN else ""
        items = "".join(f"<li>{text(line)}</li>" for line in failed[:FAILED_FILES_SHOWN])
        parts.append(f"<details><summary>{len(failed)} not analyzed</summary><ul>{items}{more}</ul></details>")
    return "<br>".join(parts)


def _findings_summary(findings: List[Dict], previous: Optional[str]) -> str:
    by_severity = {s: sum(1 for f in findings if f["severity"] == s) for s in SEVERITIES}
    line = f"{len(findings)} findings: " + ", ".join(f"{n} {s}" for s, n in by_severity.items())
    if previous:
        new = sum(1 for f in findings if f.get("baseline_state") == "new")
        line += f"; {new} new since {previous}"
    waived = sum(1 for f in findings if f.get("waiver"))
    if waived:
        line += f"; {waived} waived"
    return f"<p>{text(line)}</p>"


# the diff page ----------------------------------------------------------------------

DIFF_SECTIONS = (("new_findings", "New in {new}"), ("fixed_findings", "Fixed in {new} (findings of {old})"),
                 ("moved_findings", "Moved (unchanged; the waiver of the old place holds)"),
                 ("not_analyzed_findings", "Not analyzed on one side: neither new nor fixed"))


def diff_page(data: Dict, context: Dict[int, list], links: Dict[str, str], generated: str) -> str:
    """What ``new`` changed since ``old``: per analyzer whether it was compared, then the findings by category."""
    old, new = data["old"], data["new"]
    title = f"{data['package']} {old} \u2192 {new}"
    counts = data["counts"]
    summary = (f"new {counts['new']}, fixed {counts['fixed']}, unchanged {counts['unchanged']}"
               f" ({counts['moved']} of them moved), not analyzed {counts['not_analyzed']}")
    body = [_analyzer_comparisons(data["analyzers"], old, new), f"<p>{text(summary)}</p>",
            filter_form([f for key, _ in DIFF_SECTIONS for f in data[key]], with_state=False)]
    for key, heading in DIFF_SECTIONS:
        findings = data[key]
        body.append(f"<h2>{text(heading.format(old=old, new=new))} ({len(findings)})</h2>")
        if findings:
            body.append(findings_table(key.replace("_findings", ""), findings, context, with_state=False))
    crumbs = [link(links["root"] + "index.html", "packages"), link(links["package"], data["package"]),
              link(links["old"], old), link(links["new"], new)]
    return page(title, links["root"], crumbs, "\n".join(body), generated)


def _analyzer_comparisons(analyzers: List[Dict], old: str, new: str) -> str:
    def side(run: Optional[Dict]) -> str:
        return "<td>did not run</td>" if run is None else (
            f"<td>{_status(run['status'])} {text(run['tool_version'])}</td>")

    rows = [f"<tr>{cell(a['analyzer'])}{side(a['old'])}{side(a['new'])}{cell(a['note'] or 'compared')}</tr>"
            for a in analyzers]
    return table(("analyzer", old, new, "note"), rows)


# the package page and the index ----------------------------------------------------------

def package_page(package: str, fetcher: str, versions: List[Dict], root: str, generated: str) -> str:
    """Every finished version of a package, the latest first, each with its page and its diff."""
    rows = []
    for v in versions:
        name = link(v["href"], v["version"]) if v.get("href") else text(v["version"])
        diff = link(v["diff_href"], f"since {v['previous']}") if v.get("diff_href") else ""
        rows.append(f"<tr><td>{name}</td><td>{_status(v['state'])}</td>{cell(v['finished_at'])}"
                    f"{cell(v['findings'], 'n')}{cell(_new_text(v.get('new')), 'n')}<td>{diff}</td></tr>")
    body = _dl([("fetcher", text(fetcher))]) + table(("version", "state", "finished", "findings", "new", "diff"),
                                                     rows)
    return page(f"{package}", root, [link(root + "index.html", "packages")], body, generated)


def index_page(packages: List[Dict], generated: str) -> str:
    """Every package: its latest analyzed version, how each analyzer ran on it, its findings and what is new."""
    headers = ("package", "fetcher", "latest", "analyzers", *SEVERITIES, "new since previous")
    rows = []
    for p in packages:
        name = link(p["package_href"], p["package"]) if p.get("package_href") else text(p["package"])
        latest = link(p["href"], p["latest"]) if p.get("href") else text(p["latest"] or "not analyzed yet")
        analyzers = ", ".join(f"{text(analyzer)} {_status(status)}" for analyzer, status in p.get("analyzers", []))
        new = link(p["diff_href"], _new_text(p.get("new"))) if p.get("diff_href") else text(_new_text(p.get("new")))
        rows.append(f"<tr><td>{name}</td>{cell(p['fetcher'])}<td>{latest}</td><td>{analyzers}</td>"
                    f"{counts_cells(p.get('by_severity', {}))}<td class=\"n\">{new}</td></tr>")
    body = table(headers, rows) if rows else "<p>No packages yet.</p>"
    return page("kiskadee: packages", "", [], body, generated)


def _new_text(new: Optional[int]) -> str:
    return "" if new is None else str(new)
