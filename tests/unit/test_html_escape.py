"""The HTML report shows hostile names, messages and source lines as text, never as markup.

A package, its version, a file name, the flagged source line, a check id, a
message, an analyzer's error and a waiver's comment each carry a script
element and an ``onerror`` attribute. The results are stored through
kiskadee's own ``record_analysis`` (as ``kiskadee analyze`` stores them) on a
real SQLite file; the pages are written by ``kiskadee.results.html.site`` and
parsed back: only the elements and attributes the report makes are there, and
the hostile text is there as text. The browser's view of the same pages is
tests/integration/test_html_report.py.
"""

import datetime
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from builders import finding

from kiskadee.core import reportpaths
from kiskadee.core.runs import AnalyzerRun
from kiskadee.results.html import site
from kiskadee.results.html.markup import POLICY
from kiskadee.store import waivers
from kiskadee.store.queue import record_analysis
from kiskadee.store.results import VersionKey

pytestmark = pytest.mark.both_databases

HOSTILE = '<script>window.pwned=1</script>"onerror="window.pwned=1" <img src=x onerror=window.pwned=1>'
PACKAGE = "widget" + HOSTILE
NOW = datetime.datetime(2026, 12, 5, 1, 0, 0)

# What the report's own markup uses; anything else was made by the data.
ELEMENTS = {"html", "head", "meta", "title", "link", "script", "body", "nav", "h1", "h2", "footer", "a", "dl", "dt",
            "dd", "pre", "p", "table", "thead", "tbody", "tr", "th", "td", "span", "br", "details", "summary", "ul",
            "li", "mark", "form", "label", "select", "option", "input", "output"}
ATTRIBUTES = {"lang", "charset", "name", "http-equiv", "content", "rel", "href", "src", "defer", "id", "hidden", "class", "title",
              "value", "type", "data-findings", "data-state"}


class Markup(HTMLParser):
    """Every start tag with its attributes, and the text, of a page."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.text = [], []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attributes):
        self.tags.append((tag, attributes))

    def handle_data(self, data):
        self.text.append(data)


def hostile_tree(root: Path) -> str:
    """A source tree whose one C file has a hostile name and a hostile line 5; the file's path."""
    path = f"src/{HOSTILE}.c"
    (root / path).parent.mkdir(parents=True)
    lines = ["#include <string.h>", "void f(char *in) {", "  char buf[8];", "  /* copy */",
             f'  strcpy(buf, "{HOSTILE}");', "}", ""]
    (root / path).write_text("\n".join(lines))
    return path


@pytest.fixture
def report(db, tmp_path):
    """Two stored versions of a hostile package, one finding waived, and the report written."""
    tree = tmp_path / "tree"
    path = hostile_tree(tree)
    old_finding = finding("cppcheck", path, 5, "bufferAccess" + HOSTILE, "high", cwes=(120,), message=HOSTILE,
                          source_line=HOSTILE)
    new_finding = finding("cppcheck", path, 2, "check" + HOSTILE, "medium", message="new " + HOSTILE)
    record_analysis(VersionKey("local", PACKAGE, "1.0"),
                    [AnalyzerRun("cppcheck", "2.10", "ok", findings=[old_finding])], source_url=str(tree), db=db)
    runs = [AnalyzerRun("cppcheck", "2.10" + HOSTILE, "ok", findings=[old_finding, new_finding]),
            AnalyzerRun("flawfinder", "2.0", "failed", error=HOSTILE)]
    record_analysis(VersionKey("local", PACKAGE, "2.0" + HOSTILE), runs, source_url=str(tree), db=db)
    waivers.waive(old_finding.fingerprint, "false-positive", HOSTILE, package=PACKAGE, author=HOSTILE)
    out = tmp_path / "html"
    assert site.write_all(out, NOW) == 2
    return out


def test_hostile_text_makes_no_element_or_attribute(report):
    pages = sorted(report.rglob("*.html"))
    assert len(pages) == 5      # the index, the package, two versions, one diff
    for page in pages:
        markup = Markup(page.read_text(encoding="utf-8"))
        for tag, attributes in markup.tags:
            assert tag in ELEMENTS, f"{page}: <{tag}> made by the data"
            names = {name for name, _ in attributes}
            assert names <= ATTRIBUTES, f"{page}: <{tag}> has attributes made by the data: {names - ATTRIBUTES}"
        scripts = [dict(attributes) for tag, attributes in markup.tags if tag == "script"]
        assert scripts[0] == {"src": "../" * page.relative_to(report).as_posix().count("/") + "report.js",
                              "defer": None}, page
        assert all(s == {"type": "application/json", "id": s["id"]} for s in scripts[1:]), page
        assert HOSTILE in "".join(markup.text), f"{page} does not show the hostile text as text"
        policies = [dict(a)["content"] for tag, a in markup.tags if tag == "meta" and dict(a).get("http-equiv")]
        assert policies == [POLICY], page        # a second guard: no inline script would run


def test_version_page_shows_each_hostile_field_as_text(report):
    version_page = next(p for p in report.rglob("index.html") if "2.0" in p.parent.name)
    text = "".join(Markup(version_page.read_text(encoding="utf-8")).text)
    for shown in (f"src/{HOSTILE}.c:5", f'strcpy(buf, "{HOSTILE}");', "bufferAccess" + HOSTILE, "new " + HOSTILE,
                  "2.10" + HOSTILE, f"widget{HOSTILE} 2.0{HOSTILE}"):
        assert shown in text, shown
    titles = [dict(a).get("title") for tag, a in Markup(version_page.read_text(encoding="utf-8")).tags if tag == "td"]
    assert HOSTILE in titles        # the waiver's comment, as an attribute value


def test_findings_data_cannot_end_its_element(report):
    version_page = next(p for p in report.rglob("index.html") if "2.0" in p.parent.name).read_text(encoding="utf-8")
    blocks = re.findall(r'<script type="application/json" id="[^"]*">(.*?)</script>', version_page, re.S)
    assert len(blocks) == 1 and "<" not in blocks[0] and ">" not in blocks[0] and "&" not in blocks[0]
    findings = json.loads(blocks[0])
    assert {item[4] for item in findings} == {f"src/{HOSTILE}.c:5", f"src/{HOSTILE}.c:2"}
    assert {item[10] for item in findings} == {HOSTILE, "new " + HOSTILE}


@pytest.mark.parametrize("name", ["..", ".", "../../etc/passwd", "a/b", "", "x" * 400, "caf\u00e9 \u2603", ".hidden",
                                  "index.html", "diff.html"])
def test_slug_is_one_safe_path_segment(name):
    made = reportpaths.slug(name)
    assert made not in ("", ".", "..") and "/" not in made and not made.startswith(".")
    assert made not in reportpaths.RESERVED        # a version's directory never takes the place of a page
    assert len(made) <= reportpaths.LONGEST_SLUG
    assert made == reportpaths.slug(name)          # stable: links made on another pass find the page


def test_slugs_of_different_names_differ():
    names = ["a b", "a~20b", "a_b", "A b", "x" * 400, "x" * 401, "..", "~2e.", "index.html", "index~2ehtml"]
    assert len({reportpaths.slug(n) for n in names}) == len(names)


def test_every_page_stays_inside_the_report(report):
    top = report.resolve()
    for written in report.rglob("*"):
        assert top in written.resolve().parents
    assert {p.name for p in report.iterdir()} >= {"index.html", "report.css", "report.js", site.STATE_FILE}


def test_stored_source_lines_show_as_text_without_the_tree(db, tmp_path):
    """The lines the runner stored with a finding are shown when the tree is gone, hostile ones as text."""
    lines = ("void f(char *in) {", "  char buf[8];", f'  strcpy(buf, "{HOSTILE}");', "}")
    flagged = finding("cppcheck", "src/copy.c", 3, "bufferAccess", "high", message="overflow")
    flagged.context, flagged.context_line, flagged.line_hash = lines, 1, "83e0cb156f87e489:1"
    record_analysis(VersionKey("local", "widget", "3.0"), [AnalyzerRun("cppcheck", "2.10", "ok", findings=[flagged])],
                    source_url=str(tmp_path / "gone"), db=db)
    record_analysis(VersionKey("local", "widget", "3.1"), [AnalyzerRun("cppcheck", "2.10", "ok")],
                    source_url=str(tmp_path / "gone"), db=db)
    out = tmp_path / "html"
    assert site.write_all(out, NOW) == 2
    fixed = Markup((out / "local" / "widget" / "3.1" / "diff.html").read_text(encoding="utf-8"))
    assert f'3  strcpy(buf, "{HOSTILE}");\n' in "".join(fixed.text)     # the fixed finding's lines, as text
    assert {tag for tag, _ in fixed.tags} <= ELEMENTS
    page = (out / "local" / "widget" / "3.0" / "index.html").read_text(encoding="utf-8")
    markup = Markup(page)
    assert {tag for tag, _ in markup.tags} <= ELEMENTS
    assert all({name for name, _ in attributes} <= ATTRIBUTES for _, attributes in markup.tags)
    shown = "".join(markup.text)
    assert "source lines as the runner read them" in shown
    assert "".join(f"{number}{line}\n" for number, line in enumerate(lines, 1)) in shown
    marked = re.search(r"<mark>(.*?)</mark>", page, re.S).group(1)
    assert "".join(Markup(marked).text) == f'3  strcpy(buf, "{HOSTILE}");\n'
    data = re.search(r'<script type="application/json" id="[^"]*">(.*?)</script>', page, re.S).group(1)
    assert "<" not in data and json.loads(data)[0][12] == [[n, line] for n, line in enumerate(lines, 1)]
