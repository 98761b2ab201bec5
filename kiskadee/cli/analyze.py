"""``kiskadee analyze``, ``packages``, ``show`` and ``db``: one source now, and reading what is stored."""

import contextlib
import logging
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence

from kiskadee import config
from kiskadee.analysis.analyzers import make_analyzers, registry
from kiskadee.analysis.driver import index as driver_index
from kiskadee.analysis.pipeline import analyze_source
from kiskadee.analysis.sandbox import make_sandbox
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.cli.common import open_store, with_database
from kiskadee.cli.maintenance import add_db_commands
from kiskadee.core import ranking
from kiskadee.core.events import SourceEvent
from kiskadee.core.states import FAILURES
from kiskadee.errors import EXIT_ANALYSIS_INCOMPLETE, EXIT_OK, EXIT_USAGE, NotFoundError, UsageError
from kiskadee.results import render
from kiskadee.sources.local import LocalFetcher, source_url
from kiskadee.sources.names import package_name
from kiskadee.sources.prepare import guess_name_version
from kiskadee.store import queries
from kiskadee.store.migrations import LATEST, current_version, upgrade
from kiskadee.store.queue import record_analysis
from kiskadee.store.results import StoredFinding, VersionKey, by_analyzer, stored_findings


def add_commands(commands, database) -> None:
    """Add this module's commands to the parser; ``database`` is the shared --db option."""
    _add_analyze(commands, database)
    _add_packages(commands, database)
    _add_show(commands, database)
    _add_db(commands, database)


def _add_analyze(commands, database) -> None:
    cmd = commands.add_parser(
        "analyze", parents=[database], help="analyze one source now and store the findings",
        description="Unpack SOURCE safely, run the analyzers that apply, store everything and "
                    "print a summary. SOURCE is a tarball (gz, bz2, xz), a zip, a directory "
                    "or an http(s) URL.")
    cmd.add_argument("source", metavar="SOURCE")
    cmd.add_argument("--name", help="package name (default: guessed from SOURCE, e.g. hello-2.10.tar.gz)")
    cmd.add_argument("--version", dest="version_number", metavar="VERSION",
                     help="version (default: guessed from SOURCE)")
    cmd.add_argument("--analyzers", metavar="A,B", help=f"analyzers to run (known: {', '.join(sorted(registry()))})")
    cmd.add_argument("--top", type=int, default=10, metavar="N", help="findings to print (default 10)")
    cmd.set_defaults(func=cmd_analyze)


def _add_packages(commands, database) -> None:
    cmd = commands.add_parser("packages", parents=[database], help="list the packages in the database")
    cmd.add_argument("--format", choices=("table", "json"), default="table")
    cmd.set_defaults(func=cmd_packages)


def _add_show(commands, database) -> None:
    cmd = commands.add_parser("show", parents=[database], help="show the analyses and findings of a version",
                              description="Show a version's analyses and its findings, best ranked first.")
    cmd.add_argument("package", metavar="PKG")
    cmd.add_argument("version", metavar="VERSION", nargs="?", help="default: the latest analyzed version")
    cmd.add_argument("--format", choices=("table", "json"), default="table")
    cmd.add_argument("--top", type=int, metavar="N", help="only the N best-ranked findings")
    cmd.add_argument("--fetcher", metavar="NAME",
                     help="the package as this fetcher knows it, when several have it (see 'kiskadee packages')")
    cmd.add_argument("--explain", metavar="FINGERPRINT",
                     help="instead, the terms that make the rank of the finding with this fingerprint (or prefix)")
    cmd.set_defaults(func=cmd_show)


def _add_db(commands, database) -> None:
    cmd = commands.add_parser("db", help="database maintenance")
    actions = cmd.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    up = actions.add_parser("upgrade", parents=[database], help="create the database or apply pending migrations")
    up.set_defaults(func=cmd_db_upgrade)
    status = actions.add_parser("status", parents=[database], help="print the schema version")
    status.set_defaults(func=cmd_db_status)
    add_db_commands(actions, database)     # backup


def cmd_analyze(args, settings: config.Config) -> int:
    settings = with_database(args, settings)        # --db, and the analysis cache beside it
    names = args.analyzers.split(",") if args.analyzers else list(settings.analysis.analyzers)
    try:
        analyzers = make_analyzers([n.strip() for n in names if n.strip()], settings.analyzers)
    except ValueError as exc:
        print(f"kiskadee: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    guessed_name, guessed_version = guess_name_version(args.source)
    event = SourceEvent("local", args.name or package_name(guessed_name), args.version_number or guessed_version,
                        source_url=source_url(args.source))
    priors = ranking.load_priors(settings.ranking.priors)     # a bad table fails now, not after the analysis
    db = open_store(args, settings)
    analysis = settings.analysis
    with _progress(args.quiet, analysis.work_dir) as progress:
        analyzed = analyze_source(event, LocalFetcher.for_command_line(settings), analyzers,
                                  make_sandbox(settings.sandbox.backend, settings.sandbox),
                                  Limits(analysis.timeout, analysis.memory_limit_mb, analysis.max_output_bytes),
                                  analysis, progress)
    version = record_analysis(VersionKey(event.fetcher, event.package, event.version), analyzed.runs,
                              source_url=analyzed.url, sha256=analyzed.sha256, db=db, table=priors,
                              publish=settings.publish.enabled)
    if not args.quiet:
        print(render.version_text(queries.version_report(version, top=args.top)))
    incomplete = [run for run in analyzed.runs if run.status in FAILURES]
    return EXIT_ANALYSIS_INCOMPLETE if incomplete else EXIT_OK


@contextlib.contextmanager
def _progress(quiet: bool, work_root: str) -> Iterator[Optional["Activity"]]:
    """What ``analyze`` is doing, on stderr, for as long as the pipeline runs; nothing with --quiet."""
    if quiet:
        yield None
        return
    activity = Activity(sys.stderr, work_root)
    handlers = logging.getLogger().handlers
    for handler in handlers:        # a log line clears the redrawn line rather than running into it
        handler.addFilter(activity)
    try:
        yield activity
    finally:
        for handler in handlers:
            handler.removeFilter(activity)
        activity.close()


class Activity:
    """The pipeline's activity on ``stream``: a plain line per step, or on a terminal one line redrawn.

    On a terminal the current step's line shows its elapsed time, redrawn
    every ``every`` seconds by a ticker thread, and for the analyzers that go
    file by file (the compile driver's index) how many files are done.
    """

    def __init__(self, stream, work_root: str, every: float = 1.0):
        self.stream, self.every = stream, every
        self.tty = stream.isatty()
        self.work_root = Path(work_root or tempfile.gettempdir())
        self.before = set(self.work_root.glob("kiskadee-*"))    # ours is the one that appears
        self.work: Optional[Path] = None
        self.text, self.started = "", 0.0
        self.lock, self.stopped = threading.Lock(), threading.Event()
        self.ticker: Optional[threading.Thread] = None

    def __call__(self, text: str) -> None:
        if not self.tty:
            print(f"kiskadee: {text}...", file=self.stream, flush=True)
            return
        with self.lock:
            if self.text:                       # the finished step keeps its line and its time
                self._draw()
                self.stream.write("\n")
            self.text, self.started = text, time.monotonic()
            self._draw()
        if self.ticker is None:
            self.ticker = threading.Thread(target=self._tick, name="kiskadee-activity", daemon=True)
            self.ticker.start()

    def close(self) -> None:
        """Stop redrawing and leave the last line, with its time, above what comes next."""
        self.stopped.set()
        if self.ticker is not None:
            self.ticker.join()
        with self.lock:
            if self.tty and self.text:
                self._draw()
                self.stream.write("\n")
                self.stream.flush()
            self.text = ""

    def filter(self, record) -> bool:
        """As a filter of the log handlers: clear the line before a record is written; the ticker redraws it."""
        with self.lock:
            if self.tty and self.text:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
        return True

    def _tick(self) -> None:
        while not self.stopped.wait(self.every):
            with self.lock:
                self._draw()

    def _draw(self) -> None:
        seconds = int(time.monotonic() - self.started)
        line = f"kiskadee: {self.text}... {seconds // 60}:{seconds % 60:02d}{self._files()}"
        width = shutil.get_terminal_size().columns - 1
        self.stream.write("\r\x1b[K" + line[:width])
        self.stream.flush()

    def _files(self) -> str:
        """' (12 of 40 files)' while a file-by-file analyzer runs, from the compile driver's index."""
        name = self.text.rpartition(" with ")[2]
        if " with " not in self.text or not name:
            return ""
        if self.work is None:
            new = set(self.work_root.glob("kiskadee-*")) - self.before
            self.work = new.pop() if len(new) == 1 else None
            if self.work is None:
                return ""
        outputs = sorted(self.work.glob(f"kk-{name}-*/output"))     # pipeline.run_analyzer's scratch
        document = driver_index.read(outputs[-1]) if outputs else None
        units = document.get("units") if document else None
        if not isinstance(units, list) or not units:
            return ""
        done = sum(1 for unit in units if isinstance(unit, dict) and unit.get("status") != "pending")
        return f" ({done} of {len(units)} files)"


def cmd_packages(args, settings: config.Config) -> int:
    open_store(args, settings, schema="current")
    summaries = queries.package_summaries()
    print(render.as_json(summaries) if args.format == "json" else render.packages_table(summaries))
    return EXIT_OK


def cmd_show(args, settings: config.Config) -> int:
    open_store(args, settings, schema="current")
    version = queries.find_version(args.package, args.version, fetcher=args.fetcher)
    if args.explain:
        data = rank_explanation(stored_findings(version.id), args.explain,
                                ranking.load_priors(settings.ranking.priors))
        print(render.as_json(data) if args.format == "json" else _explanation_text(data))
        return EXIT_OK
    data = queries.version_report(version, top=args.top)
    print(render.as_json(data) if args.format == "json" else render.version_text(data))
    return EXIT_OK


def rank_explanation(stored: Sequence[StoredFinding], fingerprint: str,
                     table: Optional[ranking.Priors] = None) -> Dict:
    """The named terms of the rank of the one stored finding whose fingerprint starts with ``fingerprint``.

    Recomputed from all the version's stored findings with the priors ``table``
    (``ranking.priors``; the shipped ones when None); ``stored rank`` is what the
    database holds (it differs after a change of priors, until 'kiskadee db rerank').
    """
    matches = [s for s in stored if s.finding.fingerprint.startswith(fingerprint.lower())]
    if len({s.finding.fingerprint for s in matches}) > 1:
        raise UsageError(f"{len(matches)} findings have a fingerprint starting with {fingerprint}; give more of it")
    if not matches:
        raise NotFoundError(f"no finding of this version has the fingerprint {fingerprint}")
    target = matches[0]
    terms = ranking.explain(by_analyzer(stored), target.analyzer, target.finding, table)
    terms["survival"] = ranking.survival_weight(target.survived) + 0.0    # never -0.0
    finding = target.finding
    return {"analyzer": target.analyzer, "check_id": finding.check_id, "path": finding.path, "line": finding.line,
            "severity": finding.severity, "cwe": finding.cwe, "fingerprint": finding.fingerprint,
            "survived": target.survived, "terms": terms, "rank": round(sum(terms.values()), 3),
            "stored_rank": target.rank,
            "check_precision": round(ranking.check_precision(target.analyzer, finding.check_id, table), 3)}


def _explanation_text(data: Dict) -> str:
    cwe = f", CWE-{data['cwe']}" if data["cwe"] else ""
    lines = [f"{data['analyzer']} {data['check_id']} at {data['path']}:{data['line']} ({data['severity']}{cwe})",
             f"fingerprint {data['fingerprint']}"]
    notes = {"check precision": f"estimated share of real findings {data['check_precision']:.0%}",
             "survival": f"in {data['survived']} earlier release(s)"}
    for name, value in data["terms"].items():
        lines.append(f"  {name:<24}{value:>8.3f}  {notes.get(name, '')}".rstrip())
    lines.append(f"  {'rank':<24}{data['rank']:>8.3f}  stored {data['stored_rank']:.3f}")
    return "\n".join(lines)


def cmd_db_upgrade(args, settings: config.Config) -> int:
    path = args.db or settings.database.location
    applied = upgrade(open_store(args, settings, schema="as-is"))
    done = f"applied {', '.join(str(m.number) for m in applied)}" if applied else "up to date"
    print(f"{path}: schema {LATEST}, {done}")
    return EXIT_OK


def cmd_db_status(args, settings: config.Config) -> int:
    path = args.db or settings.database.location
    current = current_version(open_store(args, settings, schema="as-is"))
    state = "up to date" if current == LATEST else f"run 'kiskadee db upgrade' to reach {LATEST}"
    print(f"{path}: schema {current}, {state}")
    return EXIT_OK
