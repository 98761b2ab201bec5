"""The analyze use case: a version's source fetched, unpacked and run through the analyzers.

``analyze_source`` is the one way a source is analyzed, by ``kiskadee
analyze`` (which stores the outcome itself) and by a runner (which sends it
to the monitor). Each analyzer that applies runs in a sandbox; one
analyzer's crash, timeout or absence never stops the others: each outcome
becomes an ``AnalyzerRun`` with a status of ok, failed, timeout or skipped.
"""

import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from kiskadee.analysis.analyzers.base import Analyzer, ReportError, files_read, per_file_coverage
from kiskadee.analysis.functions import FunctionIndex
from kiskadee.analysis.sandbox.base import Limits, Sandbox
from kiskadee.config import AnalysisConfig
from kiskadee.core import languages, ranking
from kiskadee.core.events import SourceEvent
from kiskadee.core.findings import assign_fingerprints
from kiskadee.core.runs import AnalyzerRun
from kiskadee.errors import AnalyzerUnavailable
from kiskadee.sources.fetcher import Fetcher
from kiskadee.sources.prepare import unpack_source, work_directory

log = logging.getLogger(__name__)

VERSION_TIMEOUT = 60.0
UNKNOWN_VERSION = "unknown"


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
        runs = analyze_tree(root, analyzers, sandbox, limits,
                            lambda name: tell(f"analyzing {event.package} {event.version} with {name}"), str(work))
    return AnalyzedSource(runs, source.url, source.sha256)


def analyze_tree(
    tree: Path,
    analyzers: Sequence[Analyzer],
    sandbox: Sandbox,
    limits: Limits,
    progress: Optional[Progress] = None,
    work_dir: Optional[str] = None,
) -> List[AnalyzerRun]:
    """Run each analyzer over ``tree``; rank the findings of all of them together.

    Each analyzer's output directory is made in ``work_dir`` (the system's
    temporary directory when None) and removed after its report is read.
    """
    found = languages.detect(tree)
    log.info("languages in %s: %s", tree.name, found or "none recognized")
    functions = FunctionIndex(tree)     # shared: each file is parsed once for every analyzer
    runs = []
    for analyzer in analyzers:
        if progress:
            progress(analyzer.name)
        runs.append(run_analyzer(analyzer, tree, sandbox, limits, found, work_dir, functions))
    ranking.rank({run.analyzer: run.findings for run in runs})
    return runs


def run_analyzer(
    analyzer: Analyzer, tree: Path, sandbox: Sandbox, limits: Limits, found: Dict[str, int],
    work_dir: Optional[str] = None, functions: Optional[FunctionIndex] = None,
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
            run = _run(analyzer, tree, sandbox.for_analyzer(analyzer.name), limits, Path(scratch))
        except AnalyzerUnavailable as exc:
            log.error("%s: %s", analyzer.name, exc)
            return AnalyzerRun(analyzer.name, UNKNOWN_VERSION, "failed", error=str(exc))
    # After the fingerprints: they use only the function the tool itself names, and do not
    # change with the parser's reading of the source.
    assign_fingerprints(analyzer.name, run.findings, tree)
    (functions or FunctionIndex(tree)).fill(run.findings)
    return run


def _run(analyzer: Analyzer, tree: Path, sandbox: Sandbox, limits: Limits, scratch: Path) -> AnalyzerRun:
    version = tool_version(analyzer, tree, sandbox, limits, scratch)
    output = scratch / "output"
    output.mkdir()
    analyzer.prepare(output)
    source_in, output_in = sandbox.paths(tree, output)
    argv = analyzer.argv(source_in, output_in, limits.timeout, sandbox.build_refusal)
    execution = sandbox.run(argv, tree, output, limits)
    run = AnalyzerRun(analyzer.name, version, "ok", duration=round(execution.duration, 3))
    report = analyzer.report(execution.stdout_path, output)
    if execution.timed_out:
        run.status, run.error = "timeout", f"exceeded its timeout of {limits.timeout:g} s"
        _keep_partial(analyzer, run, report, tree)
    elif execution.returncode not in analyzer.exit_codes:
        run.status = "failed"
        run.error = f"exited with status {execution.returncode}: {execution.tail[-1000:]}"
    else:
        _read_report(analyzer, run, report, tree)
    _record_coverage(analyzer, run, output, report, tree)
    log.info("%s: %s in %.1f s, %d findings", analyzer.name, run.status, run.duration, len(run.findings))
    return run


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
