"""The pieces every page is made of: escaping, the page frame, the findings table and its filters.

Every text that reaches a page comes from a package or an analyzer (file
names, messages, check ids, source lines, version numbers, errors) and is
hostile: it goes through ``text`` (element content) or ``attrs`` (attribute
values, always quoted), both ``html.escape``. Nothing else is interpolated,
so a finding cannot open an element or an attribute of its own.

The findings tables and their filters are ``kiskadee.results.html.findings``.
"""

import html
from string import Template
from typing import Dict, Iterable, Optional, Sequence

from kiskadee.core.findings import SEVERITIES

def text(value: object) -> str:
    """``value`` as element content, escaped."""
    return html.escape("" if value is None else str(value), quote=True)


def attrs(**values: object) -> str:
    """Attributes with quoted, escaped values (``data_x`` becomes ``data-x``; None leaves one out)."""
    return "".join(f' {name.rstrip("_").replace("_", "-")}="{text(value)}"'
                   for name, value in values.items() if value is not None)


def link(href: str, label: object) -> str:
    """A relative link; ``href`` is built from slugs (``kiskadee.results.html.site``) and escaped all the same."""
    return f"<a{attrs(href=href)}>{text(label)}</a>"


def cell(value: object, css: Optional[str] = None) -> str:
    return f"<td{attrs(class_=css)}>{text(value)}</td>"


def table(headers: Sequence[str], rows: Iterable[str], **attributes: object) -> str:
    """A table of rows already made, under escaped ``headers``, with ``attributes`` as ``attrs`` takes them."""
    head = "".join(f"<th>{text(h)}</th>" for h in headers)
    return f"<table{attrs(**attributes)}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="kiskadee">
<meta http-equiv="Content-Security-Policy" content="$policy">
<title>$title</title>
<link rel="stylesheet" href="${root}report.css">
<script src="${root}report.js" defer></script>
</head><body>
<nav>$crumbs</nav>
<h1>$title</h1>
$body
<footer>kiskadee report, generated $generated</footer>
</body></html>
""")


# What a page may load and run, should anything ever get past the escaping: its own stylesheet and
# script, from the report's files, and nothing inline (no script element or handler attribute of the data's).
POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'"


def page(title: str, root: str, crumbs: Sequence[str], body: str, generated: str) -> str:
    """A whole page; ``crumbs`` are links already made, ``root`` the relative way to the report's top."""
    return PAGE.substitute(title=text(title), root=text(root), crumbs=" / ".join(crumbs), body=body,
                           generated=text(generated), policy=text(POLICY))


def counts_cells(by_severity: Dict[str, int]) -> str:
    return "".join(cell(by_severity.get(s, 0) or "", css=f"n sev-{s}") for s in SEVERITIES)


# assets ------------------------------------------------------------------------

STYLE = """\
body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; }
nav { font-size: 90%; margin-bottom: .5em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; position: sticky; top: 0; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.loc, pre { font-family: ui-monospace, monospace; font-size: 90%; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0 1em; }
dt { font-weight: bold; } dd { margin: 0; overflow-wrap: anywhere; }
table.findings { width: 100%; }
td.loc { overflow-wrap: anywhere; min-width: 14em; max-width: 28em; }
table.findings td:nth-child(5) { overflow-wrap: anywhere; min-width: 8em; max-width: 16em; }
table.findings td:last-child { min-width: 30em; overflow-wrap: anywhere; }
tr.sev-high td:nth-child(2) { color: #b00; font-weight: bold; }
tr.sev-medium td:nth-child(2) { color: #a60; }
pre { margin: .3em 0; padding: .3em; background: #f8f8f8; white-space: pre-wrap; }
pre mark { display: block; background: #ffe9a8; }
span.ln { display: inline-block; width: 4em; color: #888; user-select: none; }
.status-ok { color: #070; } .status-failed, .status-timeout { color: #b00; font-weight: bold; }
.note { color: #555; font-size: 90%; }
form#filters { display: flex; gap: 1em; align-items: center; flex-wrap: wrap; margin: .5em 0; }
p.shown button { margin-left: 1em; }
form#filters[hidden] { display: none; }
footer { color: #777; font-size: 85%; margin-top: 2em; }
"""

