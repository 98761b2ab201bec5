"""The analyze use case: a version's source fetched, unpacked and run through the analyzers.

``analyze_source`` is the one way a source is analyzed, by ``kiskadee
analyze`` (which stores the outcome itself) and by a runner (which sends it
to the monitor). Each analyzer that applies runs in a sandbox; one
analyzer's crash, timeout or absence never stops the others: each outcome
becomes an ``AnalyzerRun`` with a status of ok, failed, timeout or skipped.
"""

import contextlib
import dataclasses
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence

from kiskadee.analysis.analyzers.base import Analyzer, ReportError, files_read, per_file_coverage
from kiskadee.analysis.cache import CacheError, TreeFiles, UnitCache, open_cache, unit_key
from kiskadee.analysis.context import attach as attach_context
from kiskadee.analysis.functions import FunctionIndex
from kiskadee.analysis.sandbox.base import Execution, Limits, Sandbox
from kiskadee.config import AnalysisConfig
from kiskadee.core import languages
from kiskadee.core.events import SourceEvent
from kiskadee.core.findings import Finding, assign_fingerprints
from kiskadee.core.runs import AnalyzerRun
from kiskadee.errors import AnalyzerUnavailable
from kiskadee.sources.fetcher import Fetcher
from kiskadee.sources.prepare import unpack_source, work_directory

log = logging.getLogger(__name__)

VERSION_TIMEOUT = 60.0
UNKNOWN_VERSION = "unknown"
MAX_LISTED_UNITS = 2000     # more units to analyze than this: the tool is given the whole tree


Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class AnalyzedSource:
    """What ``analyze_source`` found, and what exactly it analyzed."""

    runs: List[AnalyzerRun]
    url: str            # where the analyzed source came from
    sha256: str         # of the archive analyzed, '' for a directory


def analyze_source(event: SourceEvent, fetcher: Fetcher, analyzers: Sequence[Analyzer], sandbox: Sandbox,
                   limits: Limits, settings: AnalysisConfig, activity: Optional[Progress] = None) -> AnalyzedSource:
    """Fetch the source of ``event`` with ``fetcher``, unpack it safely and run ``analyzers`` over it.

    Everything happens in a fresh work directory under ``settings.work_dir``,
    removed afterwards; ``activity`` is told what is being done, in words.
    Raises the fetcher's SourceError (or its transient and unresolved kinds)
    when the source cannot be had or is refused while unpacking.
    """
    tell = activity or (lambda text: None)
    with work_directory(settings) as work:
        tell(f"fetching {event.package} {event.version}")
        download_dir = work / "download"
        download_dir.mkdir()
        source = fetcher.download(event, download_dir)
        root = source.path if source.path.is_dir() else unpack_source(source.path, work, settings)
        cache = open_cache(settings.cache)
        try:
            runs = analyze_tree(root, analyzers, sandbox, limits,
                                lambda name: tell(f"analyzing {event.package} {event.version} with {name}"),
                                str(work), Reuse(cache, f"{event.fetcher}/{event.package}") if cache else None)
        finally:
            if cache:
                cache.close()
    return AnalyzedSource(runs, source.url, source.sha256)


@dataclasses.dataclass
class Reuse:
    """The cache an analysis reuses units from, and the package whose units it may reuse.

    Keys name the package: one package's sources can never fill the entries another reuses.
    """

    cache: UnitCache
    scope: str
    reused: int = 0             # units reused and ...
    analyzed: int = 0           # ... analyzed in this analysis, over every analyzer
    reused_units: Dict[str, List[str]] = dataclasses.field(default_factory=dict)   # by analyzer


@dataclasses.dataclass
class Plan:
    """One analyzer's units: their keys, those the cache has, those to analyze."""

    keys: Dict[str, str]
    reused: Dict[str, dict]
    todo: List[str]


def analyze_tree(
    tree: Path,
    analyzers: Sequence[Analyzer],
    sandbox: Sandbox,
    limits: Limits,
    progress: Optional[Progress] = None,
    work_dir: Optional[str] = None,
    reuse: Optional[Reuse] = None,
) -> List[AnalyzerRun]:
    """Run each analyzer over ``tree``. The findings are not ranked here: the store ranks every
    version over all its analyses with the site's priors (``kiskadee.store.results``).

    Each analyzer's output directory is made in ``work_dir`` (the system's
    temporary directory when None) and removed after its report is read.
    With ``reuse``, units whose key the cache holds are not analyzed again.
    """
    found = languages.detect(tree)
    log.info("languages in %s: %s", tree.name, found or "none recognized")
    functions = FunctionIndex(tree)     # shared: each file is parsed once for every analyzer
    files = TreeFiles(tree) if reuse else None
    runs = []
    with shared_build(analyzers, sandbox, work_dir) as build:
        for analyzer in analyzers:
            if progress:
                progress(analyzer.name)
            runs.append(run_analyzer(analyzer, tree, sandbox, limits, found, work_dir, functions, reuse, files,
                                     build))
    return runs


@contextlib.contextmanager
def shared_build(analyzers: Sequence[Analyzer], sandbox: Sandbox, work_dir: Optional[str]) -> Iterator[Optional[Path]]:
    """One build directory for every analyzer that builds the tree, when the sandbox lets them build.

    The first one configures and builds there; the others take its compile
    commands, so a tree is configured and built once per version.
    """
    if sum(1 for analyzer in analyzers if analyzer.builds) < 2 or sandbox.build_refusal:
        yield None
        return
    build = Path(tempfile.mkdtemp(prefix="kk-build-", dir=work_dir))
    try:
        yield build
    finally:
        shutil.rmtree(build, ignore_errors=True)


def run_analyzer(
    analyzer: Analyzer, tree: Path, sandbox: Sandbox, limits: Limits, found: Dict[str, int],
    work_dir: Optional[str] = None, functions: Optional[FunctionIndex] = None,
    reuse: Optional[Reuse] = None, files: Optional[TreeFiles] = None, build: Optional[Path] = None,
) -> AnalyzerRun:
    """Run one analyzer; every failure becomes a status, never an exception.

    Except SandboxUnavailable: the analyzer did not fail, the sandbox could not
    run it now, so it propagates and the runner re-queues the job. Findings
    whose analyzer names no function get one from ``functions`` (made for
    ``tree`` when None).
    """
    wanted = " or ".join(sorted(analyzer.languages))
    if not analyzer.languages & set(found):
        return AnalyzerRun(analyzer.name, UNKNOWN_VERSION, "skipped", error=f"no {wanted} files")
    if analyzer.file_suffixes and not files_read(tree, analyzer.file_suffixes, analyzer.skips_dot_directories):
        return AnalyzerRun(analyzer.name, UNKNOWN_VERSION, "skipped", error=f"no {wanted} file it reads")
    with tempfile.TemporaryDirectory(prefix=f"kk-{analyzer.name}-", dir=work_dir) as scratch:
        try:
            run = _run(analyzer, tree, sandbox.for_analyzer(analyzer.name), limits, Path(scratch),
                       reuse, files or (TreeFiles(tree) if reuse else None), build if analyzer.builds else None)
        except AnalyzerUnavailable as exc:
            log.error("%s: %s", analyzer.name, exc)
            return AnalyzerRun(analyzer.name, UNKNOWN_VERSION, "failed", error=str(exc))
    # Identical findings on one line are told apart by their order: make it the same whatever
    # order the tool reported them in (gcc's varies from run to run) and wherever they came from.
    run.findings.sort(key=lambda f: (f.path, f.line, f.column, f.check_id, f.message))
    # After the fingerprints: they use only the function the tool itself names, and do not
    # change with the parser's reading of the source.
    assign_fingerprints(analyzer.name, run.findings, tree)
    (functions or FunctionIndex(tree)).fill(run.findings)
    attach_context(run.findings, tree, shared_with=functions)    # every finding, reused ones too
    return run


def _run(analyzer: Analyzer, tree: Path, sandbox: Sandbox, limits: Limits, scratch: Path,
         reuse: Optional[Reuse] = None, files: Optional[TreeFiles] = None, build: Optional[Path] = None,
         ) -> AnalyzerRun:
    version = tool_version(analyzer, tree, sandbox, limits, scratch)
    output = scratch / "output"
    output.mkdir()
    analyzer.prepare(output)
    source_in, output_in = sandbox.paths(tree, output)
    plan = _plan(analyzer, version, tree, reuse, files, limits) if reuse and files else None
    if plan is None:
        argv = analyzer.argv(source_in, output_in, limits.timeout, sandbox.build_refusal)
    else:
        argv = analyzer.argv_reusing(source_in, output_in, limits.timeout, sandbox.build_refusal,
                                     plan.todo, plan.reused, output)
    if argv and build is not None:
        argv = analyzer.sharing_build(argv, sandbox.build_path(build))
    execution = _execute(sandbox, argv, tree, output, limits, build) if argv else _nothing_run(scratch)
    run = AnalyzerRun(analyzer.name, version, "ok", duration=round(execution.duration, 3))
    report = analyzer.report(execution.stdout_path, output)
    if plan is not None:
        whole = report
        report = analyzer.merge_report(report, plan.reused, scratch)
    if execution.timed_out:
        run.status, run.error = "timeout", f"exceeded its timeout of {limits.timeout:g} s"
        _keep_partial(analyzer, run, report, tree)
    elif execution.returncode not in analyzer.exit_codes:
        run.status = "failed"
        run.error = f"exited with status {execution.returncode}: {execution.tail[-1000:]}"
    else:
        _read_report(analyzer, run, report, tree)
    _record_coverage(analyzer, run, output, report, tree)
    if plan is not None and reuse is not None:
        _keep(analyzer, run, plan, reuse, analyzer.fresh_units(whole, output, plan.todo) if run.status == "ok" else {})
    log.info("%s: %s in %.1f s, %d findings", analyzer.name, run.status, run.duration, len(run.findings))
    return run


def _plan(analyzer: Analyzer, version: str, tree: Path, reuse: Reuse, files: TreeFiles,
          limits: Limits) -> Optional[Plan]:
    """Which units of ``tree`` the cache has for this analyzer; None: it runs whole, without the cache."""
    units = analyzer.cache_units(tree, files)
    if units is None or version == UNKNOWN_VERSION:
        return None
    # A unit that ran out of memory is kept as failed: only under the same limit. Findings are
    # kept by their fields: entries of another Finding are never read.
    options = [analyzer.cache_options(), limits.memory_mb, [field.name for field in dataclasses.fields(Finding)]]
    keys = {unit: unit_key(reuse.scope, analyzer.name, version, options, unit, inputs)
            for unit, inputs in units.items()}
    try:
        cached = reuse.cache.get_many(keys.values())
    except CacheError as exc:
        log.warning("%s: %s; analyzing every unit", analyzer.name, exc)
        cached = {}
    reused = {unit: cached[key] for unit, key in keys.items() if key in cached}
    todo = [unit for unit in keys if unit not in reused]
    if len(todo) > MAX_LISTED_UNITS:
        reused, todo = {}, list(keys)
    return Plan(keys, reused, todo)


def _keep(analyzer: Analyzer, run: AnalyzerRun, plan: Plan, reuse: Reuse, fresh: Dict[str, dict]) -> None:
    """Put the units this run analyzed whole into the cache; say how many were reused."""
    reused = plan.reused if run.mode in ("", "per-file") else {}    # a build's units are not reused
    reuse.reused += len(reused)
    reuse.analyzed += len(plan.keys) - len(reused)
    reuse.reused_units[analyzer.name] = sorted(reused)
    log.info("%s: %d of %d units reused from the cache", analyzer.name, len(reused), len(plan.keys))
    try:
        reuse.cache.put_many(analyzer.name, {plan.keys[unit]: outcome for unit, outcome in fresh.items()})
    except CacheError as exc:
        log.warning("%s: %s; its units are not kept", analyzer.name, exc)


def _execute(sandbox: Sandbox, argv: List[str], tree: Path, output: Path, limits: Limits,
             build: Optional[Path]) -> Execution:
    if build is None:
        return sandbox.run(argv, tree, output, limits)
    return sandbox.run(argv, tree, output, limits, build=build)


def _nothing_run(scratch: Path) -> Execution:
    """The execution of a command not run: every unit came from the cache."""
    empty = scratch / "nothing.stdout"
    empty.write_text("")
    return Execution(returncode=0, duration=0.0, timed_out=False, stdout_path=empty, tail="")


def _record_coverage(analyzer: Analyzer, run: AnalyzerRun, output: Path, report: Path, tree: Path) -> None:
    """What the run analyzed, for analyzers that count files; no file at all is a skipped run."""
    coverage = analyzer.coverage(output)
    if coverage is None and run.status == "ok":
        coverage = per_file_coverage(analyzer, report, tree)
    if coverage is None:
        return
    if run.status == "ok" and coverage.files_analyzed + coverage.files_failed == 0:
        # A compiling analyzer found only headers (or, for gcc, C++ sources): like any skipped
        # run it has no coverage, not one of "0 of 0 files".
        wanted = " or ".join(sorted(analyzer.languages))
        run.status = "skipped"
        run.error = f"no {wanted} source file to compile (headers are not compiled on their own)"
        run.error += f"; build mode not used: {coverage.fallback}" if coverage.fallback else ""
        return
    for field in dataclasses.fields(coverage):
        setattr(run, field.name, getattr(coverage, field.name))


def _read_report(analyzer: Analyzer, run: AnalyzerRun, report: Path, tree: Path) -> None:
    try:
        run.findings = analyzer.parse(report)
        unfinished, problems = analyzer.unfinished(report), analyzer.problems(report)
    except (ReportError, ValueError, KeyError, OSError) as exc:
        run.status, run.error = "failed", f"cannot parse its report: {exc}"
        return
    if unfinished:
        run.status = "timeout"
    run.error = "; ".join(text for text in (unfinished, problems) if text)


def _keep_partial(analyzer: Analyzer, run: AnalyzerRun, report: Path, tree: Path) -> None:
    """The findings a run stopped at its timeout had reported so far, for tools that report as they go."""
    try:
        findings = analyzer.parse_partial(report)
    except (ReportError, ValueError, KeyError, OSError) as exc:
        log.warning("%s: nothing kept of the stopped run: %s", analyzer.name, exc)
        return
    if findings:
        run.findings = findings
        run.error += f"; kept the {len(findings)} findings reported before it was stopped"


def tool_version(analyzer: Analyzer, tree: Path, sandbox: Sandbox, limits: Limits, scratch: Path) -> str:
    """The version the tool itself reports, run in the same sandbox as the analysis."""
    output = scratch / "version"
    output.mkdir()
    short = dataclasses.replace(limits, timeout=min(limits.timeout, VERSION_TIMEOUT))
    execution = sandbox.run(analyzer.version_argv(), tree, output, short)
    text = execution.stdout_path.read_text(errors="replace")
    try:
        return analyzer.parse_version(text)
    except ReportError as exc:
        log.warning("%s: %s", analyzer.name, exc)
        return UNKNOWN_VERSION
