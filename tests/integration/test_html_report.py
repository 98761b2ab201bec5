"""The HTML report in a real browser: Debian's headless Chromium opens the pages from disk.

Results are stored through kiskadee's own ``record_analysis`` (what ``kiskadee
analyze`` and the monitor store) on a real SQLite file, with a script element
and an ``onerror`` attribute in a file name, a message, a check id, a flagged
source line and an analyzer's error; the real ``kiskadee report`` command
writes the pages; Chromium, driven over its DevTools pipe
(``--remote-debugging-pipe``: no extra library), loads them from ``file://``
and the test reads the DOM it built, works the filters and saves a
screenshot of the version page under pytest's temporary directory.
"""

import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict

import pytest
from builders import finding
from harness import run_kiskadee

from kiskadee.core.runs import AnalyzerRun
from kiskadee.store import waivers
from kiskadee.store.queue import record_analysis
from kiskadee.store.results import VersionKey

CHROMIUM = shutil.which("chromium")
HOSTILE = '<script>window.pwned=1</script>"onerror="window.pwned=1" <img src=x onerror=window.pwned=1>'

assert CHROMIUM, "Debian's chromium is missing: 'make test-setup' installs it (packaging/test-packages)"


class Chromium:
    """Headless Chromium with one page, driven with DevTools commands over a pipe (fds 3 and 4)."""

    def __init__(self, width: int = 1400, height: int = 900):
        self.profile = tempfile.mkdtemp(prefix="kk-chromium-")
        ours_to_it, self.to_browser = os.pipe()
        self.from_browser, its_to_us = os.pipe()
        # The child reads commands on fd 3 and writes answers on fd 4: put the pipes there in the child
        # (by way of fds above 9, so that neither lands on the other), inheritable, the rest closed on exec.
        def wire():
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (ours_to_it, its_to_us)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "--allow-file-access-from-files",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire, close_fds=False)
        os.close(ours_to_it)
        os.close(its_to_us)
        self.buffer, self.events, self.next_id = b"", [], 0
        target = next(t for t in self.command("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.command("Target.attachToTarget", targetId=target["targetId"], flatten=True)["sessionId"]
        self.command("Page.enable", session=True)

    def command(self, method: str, session: bool = False, timeout: float = 60, **params) -> Dict:
        """Send one command and wait for its answer; events that arrive meanwhile are kept."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._receive(timeout, method)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def wait_event(self, method: str, timeout: float = 60) -> Dict:
        for kept in self.events:
            if kept.get("method") == method:
                self.events.remove(kept)
                return kept
        while True:
            event = self._receive(timeout, method)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def _receive(self, timeout: float, what: str) -> Dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buffer:
            if not select.select([self.from_browser], [], [], max(0, deadline - time.monotonic()))[0]:
                raise TimeoutError(f"Chromium did not answer {what} in {timeout} s")
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited (status {self.process.poll()}) while waiting for {what}")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def load(self, path: Path) -> float:
        """Open ``path`` from disk and wait for its load event; the seconds it took."""
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        started = time.monotonic()
        self.command("Page.navigate", session=True, url=path.resolve().as_uri())
        self.wait_event("Page.loadEventFired")
        return time.monotonic() - started

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.command("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                              awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, height: int = 1600) -> Path:
        """The top ``height`` pixels of the page (beyond the window) as a PNG file."""
        size = self.command("Page.getLayoutMetrics", session=True)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], height), "scale": 1}
        data = self.command("Page.captureScreenshot", session=True, format="png", clip=clip,
                            captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        os.close(self.to_browser)       # Chromium exits when its pipe closes
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    chromium = Chromium()
    yield chromium
    chromium.close()


# The data: widget 1.0 and 1.1 --------------------------------------------------------------

SOURCE = [f"/* line {n} */" for n in range(1, 41)]
SOURCE[19] = f'  strcpy(buf, "{HOSTILE}");'      # line 20


def source_tree(root: Path) -> Dict[str, str]:
    """The analyzed tree: a plain file and one with a hostile name, both with a hostile line 20."""
    paths = {"plain": "src/main.c", "hostile": f"src/{HOSTILE}.c"}
    for path in paths.values():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("\n".join(SOURCE) + "\n")
    return paths


def store_widget(db, tree: Path, version: str, newer: bool) -> None:
    """cppcheck and flawfinder on widget; 1.1 adds three new findings (one per severity below high)."""
    paths = source_tree(tree)
    waived = finding("cppcheck", paths["plain"], 20, "bufferAccessOutOfBounds", "high", cwes=(120,))
    kept = finding("flawfinder", paths["plain"], 30, "buffer/strcpy", "high", cwes=(120, 20))
    cppcheck, flawfinder = [waived], [kept]
    if newer:
        cppcheck += [finding("cppcheck", paths["hostile"], 20, "check" + HOSTILE, "medium", message=HOSTILE),
                     finding("cppcheck", paths["plain"], 5, "nullPointer", "low", cwes=(476,))]
        flawfinder += [finding("flawfinder", paths["plain"], 8, "format/printf", "info", cwes=(134,))]
    runs = [AnalyzerRun("cppcheck", "2.10", "ok", duration=1.5, findings=cppcheck),
            AnalyzerRun("flawfinder", "2.0.19", "ok", duration=0.5, findings=flawfinder)]
    record_analysis(VersionKey("local", "widget", version), runs, source_url=str(tree), db=db)
    if not newer:
        waivers.waive(waived.fingerprint, "false-positive", "checked: " + HOSTILE, package="widget")


def store_failed(db, version: str) -> None:
    runs = [AnalyzerRun("cppcheck", "2.10", "failed", error="cppcheck exited with status 1: " + HOSTILE)]
    record_analysis(VersionKey("local", "gadget" + HOSTILE, version), runs, db=db)


@pytest.fixture
def report(db, tmp_path):
    """widget 1.0 and 1.1 stored, and a gadget whose analyzer failed; the report written by the real command."""
    store_widget(db, tmp_path / "widget-1.0", "1.0", newer=False)
    store_widget(db, tmp_path / "widget-1.1", "1.1", newer=True)
    store_failed(db, "0.1")
    out = tmp_path / "html"
    done = run_kiskadee("report", "--db", tmp_path / "kiskadee.db", "--changed", "-o", out)
    assert done.returncode == 0, done.stderr
    assert "3 version pages written" in done.stderr
    return out


# The tests ------------------------------------------------------------------------------

# The elements the report's pages and script make; the data must add none.
ELEMENTS = {"html", "head", "meta", "title", "link", "script", "body", "nav", "h1", "h2", "footer", "a", "dl", "dt",
            "dd", "pre", "p", "table", "thead", "tbody", "tr", "th", "td", "span", "br", "details", "summary", "ul",
            "li", "mark", "form", "label", "select", "option", "input", "button"}

DOM_CHECK = """(() => {
  const all = [...document.querySelectorAll("*")];
  return {
    scripts: [...document.scripts].map(s => s.getAttribute("src") || s.getAttribute("type")),
    handlers: all.flatMap(e => [...e.attributes].map(a => a.name)).filter(n => n.startsWith("on")),
    images: document.querySelectorAll("img").length,
    elements: [...new Set(all.map(e => e.localName))].sort(),
    pwned: window.pwned === undefined ? null : window.pwned,
    text: document.body.textContent,
  };
})()"""

FILTERS = """(() => {
  const form = document.getElementById("filters");
  const shown = () => [...document.querySelectorAll("table.findings > tbody > tr")].map(r =>
    r.cells[2].textContent + ":" + r.cells[4].textContent);
  const choose = (name, value) => {
    form.elements[name].value = value;
    form.elements[name].dispatchEvent(new Event("change", {bubbles: true}));
    return shown();
  };
  const tick = name => { form.elements[name].click(); const seen = shown(); form.elements[name].click(); return seen; };
  return {
    form_visible: form.offsetParent !== null, all: shown(),
    flawfinder: choose("analyzer", "flawfinder"), every_analyzer: choose("analyzer", ""),
    high: choose("severity", "0"), medium_or_worse: choose("severity", "1"), any_severity: choose("severity", ""),
    cwe120: choose("cwe", "120"), any_cwe: choose("cwe", ""),
    new_only: tick("new"), hide_waived: tick("waived"),
    counter: document.getElementById("shown-findings").textContent,
    marked: [...document.querySelectorAll("details pre mark")].map(m => m.textContent),
  };
})()"""


def page_of(report: Path, package: str, version: str, name: str = "index.html") -> Path:
    return report / "local" / package / version / name


def test_version_page_shows_hostile_text_as_text_and_filters_work(report, browser, tmp_path):
    browser.load(page_of(report, "widget", "1.1"))
    dom = browser.evaluate(DOM_CHECK)
    assert dom["scripts"] == ["../../../report.js", "application/json"]
    assert dom["handlers"] == [] and dom["images"] == 0 and set(dom["elements"]) <= ELEMENTS
    assert dom["pwned"] is None
    assert f"src/{HOSTILE}.c:20" in dom["text"] and f'strcpy(buf, "{HOSTILE}");' in dom["text"]
    assert "check" + HOSTILE in dom["text"]

    seen = browser.evaluate(FILTERS)
    assert seen["form_visible"]
    assert len(seen["all"]) == 5 and seen["all"][0].startswith(("cppcheck:bufferAccess", "flawfinder:buffer"))
    assert sorted(seen["flawfinder"]) == ["flawfinder:buffer/strcpy", "flawfinder:format/printf"]
    assert len(seen["every_analyzer"]) == 5
    assert sorted(seen["high"]) == ["cppcheck:bufferAccessOutOfBounds", "flawfinder:buffer/strcpy"]
    assert sorted(seen["medium_or_worse"]) == sorted(seen["high"] + ["cppcheck:check" + HOSTILE])
    assert sorted(seen["cwe120"]) == sorted(seen["high"])
    assert sorted(seen["new_only"]) == sorted(["cppcheck:check" + HOSTILE, "cppcheck:nullPointer",
                                               "flawfinder:format/printf"])
    assert "cppcheck:bufferAccessOutOfBounds" not in seen["hide_waived"] and len(seen["hide_waived"]) == 4
    assert seen["counter"] == "5 of 5 findings shown "
    assert f'20  strcpy(buf, "{HOSTILE}");\n' in seen["marked"]    # the flagged line, in the rows the script built

    browser.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    shot = browser.screenshot(tmp_path / "version-page.png")
    print(f"\nscreenshot of the version page: {shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


MORE = """(() => {
  const rows = () => [...document.querySelectorAll("table.findings > tbody > tr")];
  const form = document.getElementById("filters"), status = document.getElementById("shown-findings");
  const seen = {first: rows().length, status: status.textContent};
  status.querySelector("button").click();
  seen.more = rows().length;
  seen.hostile = rows().filter(r => r.cells[r.cells.length - 1].textContent.startsWith("late")).length;
  form.elements.severity.value = "0";
  form.elements.severity.dispatchEvent(new Event("change", {bubbles: true}));
  seen.high = rows().map(r => r.cells[r.cells.length - 1].textContent.split(" ")[0]);
  seen.filtered_status = status.textContent;
  return seen;
})()"""


def test_a_large_version_shows_its_first_rows_then_more_and_filters_them_all(db, tmp_path, browser):
    rows = site_rows = 500      # kiskadee.results.html.findings.ROWS: what a page shows at first
    tree = tmp_path / "big"
    paths = source_tree(tree)
    found = [finding("cppcheck", paths["plain"], 1 + n % 40, f"check{n}", "low", message=f"plain {n}")
             for n in range(rows + 10)]
    # Ranked last, so only the script shows them: a hostile file, message and line, one of them high.
    found += [finding("cppcheck", paths["hostile"], 20, "late", "info", message=f"late {HOSTILE}") for _ in range(3)]
    found[-1].severity = "high"
    for n, item in enumerate(found):
        item.rank = float(len(found) - n) if item.check_id != "late" else 0.0
    found[-1].rank = 0.0
    record_analysis(VersionKey("local", "big", "1.0"), [AnalyzerRun("cppcheck", "2.10", "ok", findings=found)],
                    source_url=str(tree), db=db)
    out = tmp_path / "html"
    assert run_kiskadee("report", "big", "--db", tmp_path / "kiskadee.db", "-o", out).returncode == 0
    page = page_of(out, "big", "1.0")
    assert page.read_text(encoding="utf-8").count("<tr class=") == site_rows    # without the script: the first rows

    browser.load(page)
    seen = browser.evaluate(MORE)
    assert seen["first"] == site_rows and seen["status"] == f"{site_rows} of {len(found)} findings shown show 13 more"
    assert seen["more"] == len(found) and seen["hostile"] == 3
    assert seen["high"] == ["late"]
    assert seen["filtered_status"] == f"1 of 1 findings shown ({len(found)} before filtering) "
    dom = browser.evaluate(DOM_CHECK)
    assert dom["handlers"] == [] and set(dom["elements"]) <= ELEMENTS and dom["pwned"] is None
    assert f"late {HOSTILE}" in dom["text"]


def test_diff_index_and_failed_version_in_the_browser(report, browser):
    browser.load(page_of(report, "widget", "1.1", "diff.html"))
    diff = browser.evaluate(DOM_CHECK)
    assert diff["handlers"] == [] and set(diff["elements"]) <= ELEMENTS and diff["pwned"] is None
    assert re.search(r"New in 1\.1 \(3\)", diff["text"]) and "Fixed in 1.1 (findings of 1.0) (0)" in diff["text"]
    assert "new 3, fixed 0, unchanged 2" in diff["text"]

    browser.load(report / "index.html")
    index = browser.evaluate(DOM_CHECK)
    assert index["handlers"] == [] and index["pwned"] is None
    rows = browser.evaluate("[...document.querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.innerText))")
    widget = next(r for r in rows if r[0] == "widget")
    assert widget[2] == "1.1" and widget[3] == "cppcheck ok, flawfinder ok" and widget[4:] == ["2", "1", "1", "1", "3"]
    gadget = next(r for r in rows if r[0] == "gadget" + HOSTILE)
    assert gadget[3] == "cppcheck failed"

    # Following the links from disk: index -> package -> version.
    browser.evaluate("[...document.links].find(a => a.textContent === 'widget').click()")
    browser.wait_event("Page.loadEventFired")
    browser.evaluate("[...document.links].find(a => a.textContent === '1.1').click()")
    browser.wait_event("Page.loadEventFired")
    assert browser.evaluate("location.href") == page_of(report, "widget", "1.1").resolve().as_uri()

    browser.load(next((report / "local").glob("gadget*/0.1/index.html")))
    failed = browser.evaluate(DOM_CHECK)
    assert failed["handlers"] == [] and set(failed["elements"]) <= ELEMENTS and failed["pwned"] is None
    assert "cppcheck exited with status 1: " + HOSTILE in failed["text"]


def test_every_link_is_relative_and_leads_to_a_page(report):
    for page in report.rglob("*.html"):
        for href in re.findall(r'<(?:a|link|script)[^>]* (?:href|src)="([^"]*)"', page.read_text(encoding="utf-8")):
            assert not re.match(r"^[a-z]+:|^/", href), f"{page}: {href} is not relative"
            assert (page.parent / href).resolve().is_file(), f"{page}: {href} leads nowhere"


def test_changed_pass_writes_only_what_changed(report, db, tmp_path):
    database = tmp_path / "kiskadee.db"
    index = report / "index.html"
    first = index.stat().st_mtime_ns
    again = run_kiskadee("report", "--db", database, "--changed", "-o", report)
    assert again.returncode == 0 and again.stderr == ""        # every minute from the timer: nothing to say
    assert index.stat().st_mtime_ns == first

    store_widget(db, tmp_path / "widget-1.2", "1.2", newer=True)
    newer = run_kiskadee("report", "--db", database, "--changed", "-o", report)
    assert newer.returncode == 0 and "1 version page written" in newer.stderr
    assert page_of(report, "widget", "1.2").is_file() and page_of(report, "widget", "1.2", "diff.html").is_file()
    assert ">1.2</a>" in index.read_text(encoding="utf-8")
    assert not list(report.rglob(".tmp-*"))


def test_a_version_that_cannot_be_written_does_not_stop_the_others(db, tmp_path):
    store_widget(db, tmp_path / "widget-1.0", "1.0", newer=False)
    store_widget(db, tmp_path / "widget-1.1", "1.1", newer=True)
    database, out = tmp_path / "kiskadee.db", tmp_path / "html"
    blocker = out / "local" / "widget" / "1.0"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the version's directory goes")

    first = run_kiskadee("report", "--db", database, "--changed", "-o", out)
    assert first.returncode == 1
    assert "widget 1.0: its pages were not written" in first.stderr and "Traceback" in first.stderr
    assert "the pages of widget 1.0 were not written" in first.stderr
    assert page_of(out, "widget", "1.1").is_file() and (out / "index.html").is_file()

    blocker.unlink()
    second = run_kiskadee("report", "--db", database, "--changed", "-o", out)
    assert second.returncode == 0 and "1 version page written" in second.stderr
    assert page_of(out, "widget", "1.0").is_file()
