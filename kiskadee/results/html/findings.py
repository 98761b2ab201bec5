"""The findings tables of the version and diff pages, their filters and the script that runs them.

A version may have tens of thousands of findings, and a browser slows down
with the rows of a table (20,000 rows took Chromium 8 s to lay out here).
So a table holds its first ROWS findings (best ranked first) as rows, which
show without JavaScript, and every finding as data: JSON in a
``<script type="application/json">`` element, where '<', '>' and '&' are
written as JSON escapes so that no text in it can end the element. The
script (``report.js``, linked relatively) filters that data by analyzer,
severity, CWE, new only and hide waived, and shows the matching findings
ROWS at a time, building each row with ``textContent``: no text from a
finding is ever parsed as HTML, by Python or by the browser.
"""

import json
from typing import Dict, List, Optional, Sequence

from kiskadee.core.findings import SEVERITIES
from kiskadee.results.html.markup import attrs, table, text

ROWS = 500              # findings shown at first, and added by each "show more"
CONTEXT_WIDTH = 240     # characters of a source line shown; the rest is cut with an ellipsis
HEADERS = ("rank", "severity", "analyzer", "location", "check", "CWE", "waiver", "state", "message")
# A finding as the page's data holds it: one array, the script reads it by these positions.
FIELDS = ("rank", "severity", "level", "analyzer", "location", "check", "cwes", "waiver", "comment", "state",
          "message", "line", "context")


def filter_form(findings: Sequence[Dict], with_state: bool) -> str:
    """The filters of a page's findings tables: analyzer, severity, CWE, new only, hide waived."""
    analyzers = sorted({f["analyzer"] for f in findings})
    cwes = sorted({cwe for f in findings for cwe in _cwes(f)}, key=int)
    new_only = '<label><input type="checkbox" name="new"> new only</label>' if with_state else ""
    return ('<form id="filters" hidden>'
            + _select("analyzer", "every analyzer", [(a, a) for a in analyzers])
            + _select("severity", "any severity", [(str(i), f"{s} or worse") for i, s in enumerate(SEVERITIES)])
            + _select("cwe", "any CWE", [(c, f"CWE-{c}") for c in cwes])
            + new_only + '<label><input type="checkbox" name="waived"> hide waived</label></form>')


def _select(name: str, anything: str, options: List[tuple]) -> str:
    choices = "".join(f"<option{attrs(value=value)}>{text(label)}</option>" for value, label in options)
    return f'<label><select{attrs(name=name)}><option value="">{text(anything)}</option>{choices}</select></label>'


def findings_table(name: str, findings: Sequence[Dict], context: Dict[int, List], with_state: bool) -> str:
    """Findings in the order given (best ranked first): the first ROWS as rows, all of them as data.

    ``name`` tells this table from the page's others; ``context`` has the
    source lines of some findings (by id).
    """
    items = [_item(f, context.get(f["id"]), with_state) for f in findings]
    headers = HEADERS if with_state else tuple(h for h in HEADERS if h != "state")
    rows = [_row(item, with_state) for item in items[:ROWS]]
    shown = f"{len(rows)} of {len(items)} findings shown"
    if len(items) > len(rows):
        shown += "; the others are shown with JavaScript"
    data = json.dumps(items, ensure_ascii=False, separators=(",", ":"))
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (f'<p{attrs(class_="shown", id=f"shown-{name}")}>{text(shown)}</p>'
            + table(headers, rows, class_="findings", data_findings=f"data-{name}", data_state=int(with_state))
            + f'<script{attrs(type="application/json", id=f"data-{name}")}>{data}</script>')


def _item(finding: Dict, context: Optional[List], with_state: bool) -> list:
    waiver = finding.get("waiver") or {}
    location = f"{finding['path']}:{finding['line']}" if finding["line"] else finding["path"]
    if finding.get("moved_from"):
        location += f" (moved from {finding['moved_from']['path']}:{finding['moved_from']['line']})"
    severity = finding["severity"]
    lines = [[number, line if len(line) <= CONTEXT_WIDTH else line[:CONTEXT_WIDTH] + "\u2026"]
             for number, line in context] if context else 0
    return [f"{finding['rank']:.1f}", severity, SEVERITIES.index(severity) if severity in SEVERITIES else 9,
            finding["analyzer"], location, finding["check_id"], _cwes(finding), waiver.get("kind", ""),
            waiver.get("comment", ""), (finding.get("baseline_state") or "") if with_state else "",
            finding["message"], finding["line"], lines]


def _row(item: list, with_state: bool) -> str:
    """A finding's row, as the script builds it (``row`` in SCRIPT)."""
    f = dict(zip(FIELDS, item))
    cells = [f'<td class="n">{text(f["rank"])}</td>', f"<td>{text(f['severity'])}</td>",
             f"<td>{text(f['analyzer'])}</td>", f'<td class="loc">{text(f["location"])}</td>',
             f"<td>{text(f['check'])}</td>", f"<td>{text(', '.join(f['cwes']))}</td>",
             f"<td{attrs(title=f['comment'] or None)}>{text(f['waiver'])}</td>"]
    if with_state:
        cells.append(f"<td>{text(f['state'])}</td>")
    cells.append(f"<td>{text(f['message'])}{_context(f['context'], f['line'])}</td>")
    return f"<tr{attrs(class_='sev-' + f['severity'])}>{''.join(cells)}</tr>"


def _cwes(finding: Dict) -> List[str]:
    listed = [c.strip() for c in (finding.get("cwes") or "").split(",") if c.strip().isdigit()]
    return listed or ([str(finding["cwe"])] if finding.get("cwe") else [])


def _context(lines, flagged: int) -> str:
    """The source lines around a finding, the flagged one marked; '' when the source is not at hand."""
    if not lines:
        return ""
    shown = []
    for number, source in lines:
        line = f'<span class="ln">{number}</span>{text(source)}\n'
        shown.append(f"<mark>{line}</mark>" if number == flagged else line)   # a block: its newline inside it
    return f"<details><summary>source</summary><pre>{''.join(shown)}</pre></details>"


SCRIPT = """\
"use strict";
// kiskadee's report: the findings tables' filters and paging, from the data each table carries.
// Rows are built with textContent: no text of a finding is parsed as HTML. No server needed.
(function () {
  var ROWS = %(rows)d;
  var F = {rank: 0, severity: 1, level: 2, analyzer: 3, location: 4, check: 5, cwes: 6, waiver: 7, comment: 8,
           state: 9, message: 10, line: 11, context: 12};

  function add(parent, tag, value, className) {
    var element = document.createElement(tag);
    element.textContent = value;
    if (className) { element.className = className; }
    parent.appendChild(element);
    return element;
  }

  function source(cell, lines, flagged) {
    var details = document.createElement("details"), pre = document.createElement("pre");
    add(details, "summary", "source");
    lines.forEach(function (line) {
      var holder = line[0] === flagged ? document.createElement("mark") : pre;
      add(holder, "span", String(line[0]), "ln");
      holder.appendChild(document.createTextNode(line[1] + "\\n"));
      if (holder !== pre) { pre.appendChild(holder); }
    });
    details.appendChild(pre);
    cell.appendChild(details);
  }

  function row(f, withState) {
    var tr = document.createElement("tr");
    tr.className = "sev-" + f[F.severity];
    add(tr, "td", f[F.rank], "n");
    add(tr, "td", f[F.severity]);
    add(tr, "td", f[F.analyzer]);
    add(tr, "td", f[F.location], "loc");
    add(tr, "td", f[F.check]);
    add(tr, "td", f[F.cwes].join(", "));
    var waiver = add(tr, "td", f[F.waiver]);
    if (f[F.comment]) { waiver.title = f[F.comment]; }
    if (withState) { add(tr, "td", f[F.state]); }
    var message = add(tr, "td", f[F.message]);
    if (f[F.context]) { source(message, f[F.context], f[F.line]); }
    return tr;
  }

  function matches(f, want) {
    return (!want.analyzer || f[F.analyzer] === want.analyzer) &&
      (want.severity === "" || f[F.level] <= Number(want.severity)) &&
      (!want.cwe || f[F.cwes].indexOf(want.cwe) >= 0) &&
      (!want.newOnly || f[F.state] === "new") &&
      (!want.hideWaived || !f[F.waiver]);
  }

  function Findings(table) {
    this.table = table;
    this.withState = table.dataset.state === "1";
    this.data = JSON.parse(document.getElementById(table.dataset.findings).textContent);
    this.matching = this.data;
    this.limit = Math.min(ROWS, this.data.length);
    this.status = document.getElementById("shown-" + table.dataset.findings.slice(5));
  }

  Findings.prototype.render = function () {
    var rows = document.createDocumentFragment(), self = this;
    this.matching.slice(0, this.limit).forEach(function (f) { rows.appendChild(row(f, self.withState)); });
    this.table.tBodies[0].replaceChildren(rows);
    this.tell();
  };

  Findings.prototype.tell = function () {
    var self = this, shown = Math.min(this.limit, this.matching.length);
    var line = shown + " of " + this.matching.length + " findings shown";
    if (this.matching.length < this.data.length) { line += " (" + this.data.length + " before filtering)"; }
    this.status.textContent = line + " ";
    if (shown < this.matching.length) {
      var more = add(this.status, "button", "show " + Math.min(ROWS, this.matching.length - shown) + " more");
      more.type = "button";
      more.addEventListener("click", function () { self.limit += ROWS; self.render(); });
    }
  };

  Findings.prototype.filter = function (want) {
    this.matching = this.data.filter(function (f) { return matches(f, want); });
    this.limit = ROWS;
    this.render();
  };

  document.addEventListener("DOMContentLoaded", function () {
    var tables = Array.prototype.map.call(document.querySelectorAll("table.findings"),
                                          function (table) { return new Findings(table); });
    tables.forEach(function (findings) { findings.tell(); });
    var form = document.getElementById("filters");
    if (!form) { return; }
    form.hidden = false;
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    form.addEventListener("change", function () {
      var want = {analyzer: form.elements.analyzer.value, severity: form.elements.severity.value,
                  cwe: form.elements.cwe.value, newOnly: form.elements["new"] ? form.elements["new"].checked : false,
                  hideWaived: form.elements.waived.checked};
      tables.forEach(function (findings) { findings.filter(want); });
    });
  });
})();
""" % {"rows": ROWS}
