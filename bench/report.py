"""The HTML report of a large version: how long kiskadee takes to write it and Chromium to load it.

What it measures, on a version of --findings findings (default 20,000: two
analyzers, every severity, 40% with a CWE, 5% new against the version
before, a few waived) whose source is a local directory, so the page shows
the lines around the best-ranked findings (``source.MOST_FINDINGS`` of them):

  write   ``site.write`` of that version: its page, its diff page, the
          package page and the index (``kiskadee report widget 2.0``).
  load    Debian's headless Chromium opening the version page from disk
          (file://): from the navigation to the load event, and to the first
          frame drawn after it (two animation frames: parsing, style and layout
          of the whole table done).
  filter  in that page, choosing "new only" and then every analyzer again:
          the time the filter script takes to hide and show 20,000 rows.

Target: the page loads (first frame) in under 2 s. The database is built
through ``store.record_analysis`` (as ``kiskadee analyze`` stores results) in
a temporary directory; that takes a few seconds and is not timed. Medians of
--repeat runs; a fresh browser page each run, the browser started once.

Run:  .venv/bin/python bench/report.py [--findings 20000] [--repeat 3] [--keep DIR]
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

from test_html_report import Chromium  # noqa: E402  (the tests' DevTools driver)

from kiskadee.core.findings import SEVERITIES, Finding  # noqa: E402
from kiskadee.core.runs import AnalyzerRun  # noqa: E402
from kiskadee.results.html import site  # noqa: E402
from kiskadee.store import queries, waivers  # noqa: E402
from kiskadee.store.db import open_database  # noqa: E402
from kiskadee.store.models import utcnow  # noqa: E402
from kiskadee.store.queue import record_analysis  # noqa: E402
from kiskadee.store.results import VersionKey  # noqa: E402

CHECKS = [("nullPointer", 476), ("uninitvar", 457), ("memleak", 401), ("variableScope", None),
          ("buffer/strcpy", 120), ("buffer/char", 119), ("format/printf", 134), ("integer/atoi", 190)]
FILES = 400
LINES = 300
NEW = 0.05


def source_tree(root: Path) -> None:
    """FILES C files of LINES lines each: what the page shows around the findings."""
    for n in range(FILES):
        path = root / f"src/module{n // 50}/file{n}.c"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"    value_{n}_{line} = compute(value_{n}_{line - 1}, {line}); /* step */\n"
                                for line in range(1, LINES + 1)))


def findings_of(count: int, analyzer: str, generation: int, rng: random.Random):
    """``count`` findings of ``analyzer``; in generation 1, NEW of them have fingerprints generation 0 lacks."""
    found = []
    for n in range(count):
        check, cwe = CHECKS[n % len(CHECKS)]
        fresh = generation if rng.random() < NEW else 0
        found.append(Finding(path=f"src/module{n % FILES // 50}/file{n % FILES}.c", line=1 + n * 7 % LINES,
                             check_id=check + ("New" if fresh else ""), severity=SEVERITIES[n % len(SEVERITIES)],
                             message=f"{check}: the value of expression number {n} may be used wrongly here",
                             cwes=(cwe,) if cwe and n % 5 < 2 else (),
                             fingerprint=f"{analyzer[0]}{n:010x}{fresh:04x}".ljust(32, "0"),
                             rank=rng.uniform(0, 20)))
    return found


def build(directory: Path, count: int):
    """widget 1.0 and 2.0 (``count`` findings each) stored from a local tree; version 2.0."""
    db = open_database(str(directory / "kiskadee.db"))
    tree = directory / "widget-2.0"
    source_tree(tree)
    rng = random.Random(16)
    for generation, number in enumerate(("1.0", "2.0")):
        runs = [AnalyzerRun(name, "1.0", "ok", duration=3.0, findings=findings_of(count // 2, name, generation, rng))
                for name in ("cppcheck", "flawfinder")]
        record_analysis(VersionKey("local", "widget", number), runs, source_url=str(tree), db=db)
    version = queries.find_version("widget", "2.0")
    for stored in queries.version_report(version, top=25)["findings"]:
        waivers.waive(stored["fingerprint"], "false-positive", "checked by hand", package="widget")
    return version


FIRST_FRAME = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now()))))"
LOAD_EVENT = "performance.getEntriesByType('navigation')[0].loadEventEnd"
FILTER = """(() => {
  const form = document.getElementById("filters"), started = performance.now();
  form.elements["new"].click();
  const newOnly = document.getElementById("shown-findings").textContent;
  form.elements["new"].click();
  return new Promise(r => requestAnimationFrame(() => r([performance.now() - started, newOnly])));
})()"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--findings", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR", type=Path, help="build and write there, and leave it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kk-bench-report-") as scratch:
        directory = args.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        version = build(directory, args.findings)
        out = directory / "html"
        writes = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            site.write(out, [version], utcnow())
            writes.append(time.perf_counter() - started)
        page = out / "local" / "widget" / "2.0" / "index.html"
        print(f"{args.findings} findings; version page {page.stat().st_size / 1e6:.1f} MB, "
              f"diff page {(page.parent / 'diff.html').stat().st_size / 1e6:.1f} MB")
        print(f"write  {statistics.median(writes):.2f} s  (version, diff, package and index pages; median of "
              f"{args.repeat})")
        browser = Chromium()
        try:
            loads, frames, filters = [], [], []
            for _ in range(args.repeat):
                browser.load(out / "index.html")        # away from the page, so each run loads it afresh
                browser.load(page)
                loads.append(browser.evaluate(LOAD_EVENT) / 1000)
                frames.append(browser.evaluate(FIRST_FRAME) / 1000)
                seconds, shown = browser.evaluate(FILTER)
                filters.append(seconds / 1000)
        finally:
            browser.close()
        print(f"load   {statistics.median(loads):.2f} s to the load event, {statistics.median(frames):.2f} s to the "
              f"first frame (target under 2 s)")
        print(f"filter {statistics.median(filters):.2f} s to show new only ({shown.strip()}) and every finding again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
