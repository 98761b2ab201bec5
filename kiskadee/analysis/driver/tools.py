"""How each analyzer is run on one translation unit, and what counts as that unit failing.

Each tool writes its raw reports under ``units/`` in the output directory;
the plug-ins on the host parse them (``kiskadee.analysis.analyzers.clang``, ``gcc``,
``framac``). Tool-specific options (checkers, warnings) come from the host as
extra arguments, so this module only knows how to call each tool.
"""

import json
import re
import shlex
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

from . import process
from .units import Unit

QUIET_EVA = "-eva-msg-key=-initial-state,-final-states"
ERROR_LINE = re.compile(r"\b(error|fatal)\b", re.I)
REASON_CHARS = 400


class Context(NamedTuple):
    """What every unit's run shares."""

    program: str
    extra_args: Sequence[str]
    output: Path
    env: Dict[str, str]
    unit_timeout: float
    max_entry_points: int
    deadline: process.Deadline

    def timeout(self) -> Optional[float]:
        """The timeout of a unit's next command: the per-file timeout, cut to the time left."""
        return self.deadline.cap(self.unit_timeout)


class UnitResult(NamedTuple):
    status: str             # ok, failed (did not compile, tool error), timeout
    reason: str
    reports: List[str]      # relative to the output directory
    seconds: float


def _status(outcome: process.Outcome) -> str:
    if outcome.timed_out:
        return "timeout"
    return "ok" if outcome.returncode == 0 else "failed"


def first_error(*texts: str) -> str:
    """The first line saying 'error' or 'fatal' in ``texts``, in their order; else the last line.

    A compiler's first error is the one to act on (the others often follow
    from it), and a tail of its messages may start in the middle of a line.
    """
    for text in texts:
        for line in text.splitlines():
            if ERROR_LINE.search(line):
                return _shortened(line.strip())
    for text in reversed(texts):
        lines = text.strip().splitlines()
        if lines:
            return _shortened(lines[-1].strip())
    return ""


def _shortened(line: str) -> str:
    return line if len(line) <= REASON_CHARS else line[:REASON_CHARS - 3].rstrip() + "..."


def _reason(outcome: process.Outcome, context: Context, *texts: str) -> str:
    if outcome.timed_out and context.deadline.passed():
        return context.deadline.STOPPED
    if outcome.timed_out:
        return f"exceeded the per-file timeout of {context.unit_timeout:g} s"
    if outcome.returncode != 0:
        return first_error(*texts) or f"exited with status {outcome.returncode}"
    return ""


def clang(unit: Unit, number: int, context: Context) -> UnitResult:
    """``clang --analyze`` with a SARIF report."""
    report = f"units/{number:05d}.sarif"
    argv = [context.program, "--analyze", "--analyzer-output", "sarif", "-o", str(context.output / report),
            *unit.flags, *context.extra_args, unit.file]
    outcome = _run(argv, unit, number, context)
    reason = _reason(outcome, context, outcome.stderr_head, outcome.stderr_tail)
    reports = [report] if (context.output / report).is_file() else []
    return UnitResult(_status(outcome), reason, reports, outcome.seconds)


def gcc(unit: Unit, number: int, context: Context) -> UnitResult:
    """``gcc -fanalyzer`` with JSON diagnostics (written on stderr, kept as the report)."""
    report = f"units/{number:05d}.json"
    argv = [context.program, "-fanalyzer", "-fdiagnostics-format=json", *unit.flags,
            *context.extra_args, "-c", unit.file, "-o", "/dev/null"]
    outcome = process.run(argv, Path(unit.directory), context.env, context.timeout(),
                          context.output / f"units/{number:05d}.out", context.output / report)
    diagnostics = _gcc_report(context.output / report)
    if diagnostics is None:
        # Killed midway (out of memory, a crash): what it wrote is no report. The unit failed,
        # and only it: its reason is what gcc said last, and no report is named for the host.
        reason = _reason(outcome, context, process.tail(context.output / report))
        return UnitResult("timeout" if outcome.timed_out else "failed",
                          reason or "its diagnostics are not the JSON gcc writes", [], outcome.seconds)
    reason = _reason(outcome, context, _gcc_errors(diagnostics))
    return UnitResult(_status(outcome), reason, [report], outcome.seconds)


def gcc_diagnostics(text: str) -> list:
    """The JSON array gcc writes on stderr; a fatal error appends plain text after it."""
    text = text.lstrip()
    return json.JSONDecoder().raw_decode(text)[0] if text else []


def _gcc_report(report: Path) -> Optional[list]:
    """The diagnostics of a gcc report, or None when it is not one (the run was cut short)."""
    try:
        diagnostics = gcc_diagnostics(report.read_text(errors="replace"))
    except (OSError, ValueError):
        return None
    return diagnostics if isinstance(diagnostics, list) else None


def _gcc_errors(diagnostics: list) -> str:
    errors = [d for d in diagnostics if isinstance(d, dict) and "error" in str(d.get("kind"))]
    return "\n".join(f"error: {d.get('message', '')}" for d in errors[:1])


def framac(unit: Unit, number: int, context: Context) -> UnitResult:
    """Frama-C: parse once listing entry points, then Eva from each entry point in turn."""
    saved = context.output / f"units/{number:05d}.sav"
    parse = [context.program, f"-cpp-extra-args={_cpp_args(unit.flags)}", unit.file,
             "-metrics", "-save", str(saved)]
    parsed = _run(parse, unit, number, context, suffix="parse")
    parse_out = context.output / f"units/{number:05d}.parse.out"
    if parsed.timed_out or parsed.returncode != 0:
        # The preprocessor's error on stderr says more than Frama-C's 'failed to run' on stdout.
        reason = _reason(parsed, context, parsed.stderr_head, joined(process.head(parse_out)))
        return UnitResult(_status(parsed), reason, [], parsed.seconds)
    entries = entry_points(process.tail(parse_out, 20000))[: context.max_entry_points]
    if not entries:
        saved.unlink()
        return UnitResult("ok", "", [], parsed.seconds)
    reports = [f"units/{number:05d}.eva{i:03d}.csv" for i in range(len(entries))]
    eva = _run(eva_argv(context, saved, entries, reports), unit, number, context, suffix="eva")
    saved.unlink()
    done = [r for r in reports if (context.output / r).is_file()]
    eva_log = process.tail(context.output / f"units/{number:05d}.eva.out")
    reason = _reason(eva, context, eva.stderr_head, joined(eva_log))
    return UnitResult(_status(eva), reason, done, parsed.seconds + eva.seconds)


def eva_argv(context: Context, saved: Path, entries: List[str], reports: List[str]) -> List[str]:
    """One Frama-C command running Eva from each entry point in turn, a CSV report per entry."""
    argv = [context.program, "-load", str(saved), "-lib-entry", QUIET_EVA, *context.extra_args]
    for step, (entry, report) in enumerate(zip(entries, reports)):
        argv += ([] if step == 0 else ["-then"]) + ["-main", entry, "-eva",
                                                    "-report-csv", str(context.output / report)]
    return argv


def joined(log: str) -> str:
    """Frama-C's messages with their indented continuation lines joined to them."""
    return re.sub(r"\n  +", " ", log)


def entry_points(metrics: str) -> List[str]:
    """The functions nothing in the unit calls, from Frama-C's ``-metrics`` output."""
    match = re.search(r"Potential entry points \(\d+\)\s*\n\s*=+\s*\n(.*?)\n\s*\n", metrics, re.S)
    if not match:
        return []
    return [name.strip() for name in match.group(1).split(";") if name.strip()]


def _cpp_args(flags: Sequence[str]) -> str:
    # Frama-C joins this comma-separated list into a shell command line.
    return ",".join(shlex.quote(flag).replace(",", "\\,") for flag in flags)


def _run(argv: List[str], unit: Unit, number: int, context: Context, suffix: str = "") -> process.Outcome:
    stem = f"units/{number:05d}" + (f".{suffix}" if suffix else "")
    return process.run(argv, Path(unit.directory), context.env, context.timeout(),
                       context.output / f"{stem}.out", context.output / f"{stem}.err")


TOOLS = {"clang": (clang, {"c", "c++"}), "gcc": (gcc, {"c"}), "framac": (framac, {"c"})}
