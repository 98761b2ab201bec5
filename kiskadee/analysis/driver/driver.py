"""The driver's command line: choose the units, run the tool on each, keep the index current.

Run inside the sandbox with the source tree as working directory::

    python3 DRIVER --tool clang --program clang --output OUT [--mode auto|per-file] ...

It exits 0 when it could run the tool at all, whatever became of single
files (they are counted in the index), 2 on bad usage and 3 when the tool's
program is missing. With ``--deadline`` every step is cut short at that many
seconds after the start and the units not analyzed by then are counted as
such, so the index is whole when the sandbox's own timeout would strike.
"""

import argparse
import json
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional

from . import buildmode, index, process
from .tools import TOOLS, Context, UnitResult
from .units import Unit, per_file_units

INDEX_EVERY = 5.0       # seconds between index updates while units run


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kiskadee-compile-driver")
    parser.add_argument("--tool", choices=sorted(TOOLS), required=True)
    parser.add_argument("--program", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--mode", choices=("auto", "per-file"), default="auto")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--unit-timeout", type=float, default=0.0)
    parser.add_argument("--configure-timeout", type=float, default=600.0)
    parser.add_argument("--build-timeout", type=float, default=1200.0)
    parser.add_argument("--time-budget", type=float, default=0.0,
                        help="seconds after building when no new unit is started; 0: none")
    parser.add_argument("--deadline", type=float, default=0.0,
                        help="seconds after the start when everything stops; 0: none")
    parser.add_argument("--max-entry-points", type=int, default=20)
    parser.add_argument("--no-build", default="", metavar="REASON",
                        help="never run the tree's build system (mode auto then means per-file), because REASON")
    parser.add_argument("--reuse", default="", metavar="FILE",
                        help="JSON: per-file units (paths from the source root) whose outcome the host has "
                             "cached, each with its status and reason; not run again in per-file mode")
    parser.add_argument("--shared-build", default="", metavar="DIR",
                        help="build mode: build in DIR, or take the units of the build already there "
                             "(one build of the tree for every compiled analyzer)")
    parser.add_argument("--arg", dest="extra_args", action="append", default=[],
                        help="extra argument for the tool, repeatable")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    deadline = process.Deadline(args.deadline)
    root, output = Path.cwd(), Path(args.output)
    env = process.tool_environment(output)
    if shutil.which(args.program, path=env["PATH"]) is None:
        print(f"kiskadee-compile-driver: '{args.program}' is not installed", file=sys.stderr)
        return 3
    (output / "units").mkdir(parents=True, exist_ok=True)
    document = {"format": index.FORMAT, "tool": args.tool, "source_root": str(root),
                "output_root": str(output), "copy_root": None, "fallback": "", "build_note": "",
                "finished": False, "units": []}
    units = choose_units(args, root, output, env, document, deadline)
    reused = read_reuse(args.reuse) if document.get("mode") == "per-file" else {}
    run_units(args, units, Context(args.program, args.extra_args, output, env, args.unit_timeout,
                                   args.max_entry_points, deadline), document, reused)
    document.update(finished=True, deadline=args.deadline, stopped_at_deadline=deadline.reached)
    index.write(output, document)
    return 0


def choose_units(args: argparse.Namespace, root: Path, output: Path, env: Dict[str, str],
                 document: Dict, deadline: process.Deadline) -> List[Unit]:
    """Build mode when asked, allowed and possible, else per-file mode; the index records which and why."""
    languages = TOOLS[args.tool][1]
    system = buildmode.detect(root) if args.mode == "auto" else ""
    if system and args.no_build:
        # configure, make, cmake and meson run the package's own code: not where the sandbox forbids it.
        document["fallback"] = f"{system}: {args.no_build}"
    elif system:
        units = build_units(args, system, root, output, env, document, deadline)
        if units:
            return units
    units, guesses = per_file_units(root, output / "generated")
    document.update(mode="per-file", guesses=guesses)
    return [u for u in units if u.language in languages]


def build_units(args: argparse.Namespace, system: str, root: Path, output: Path, env: Dict[str, str],
                document: Dict, deadline: process.Deadline) -> List[Unit]:
    """The units the tree's own build compiles, or [] with the reason as the index's fallback."""
    settings = buildmode.BuildSettings(args.jobs, args.configure_timeout, args.build_timeout, deadline)
    try:
        if args.shared_build:
            build = buildmode.shared_build(system, root, Path(args.shared_build), settings, env)
        else:
            build = buildmode.build(system, root, output / "build", settings, env)
    except buildmode.BuildFailed as exc:
        document["fallback"] = f"{system}: {exc}"
        return []
    units = [u for u in build.units if u.language in TOOLS[args.tool][1]]
    if units:
        document.update(mode=system, copy_root=build.copy_root, build_note=build.note)
    else:
        document["fallback"] = f"{system}: the build compiled no file this analyzer reads"
    return units


def display_path(unit: Unit, document: Dict) -> str:
    """The unit's file relative to the source root (or its copy) where it lies there."""
    return index.source_path(unit.path, [document["copy_root"] or "", document["source_root"]])


def read_reuse(path: str) -> Dict[str, UnitResult]:
    """The units the host has cached (``--reuse``), each with the outcome it recorded."""
    if not path:
        return {}
    with open(path, encoding="utf-8") as stream:
        cached = json.load(stream)
    return {name: UnitResult(str(outcome["status"]), str(outcome["reason"]), [], 0.0)
            for name, outcome in cached.items()}


def run_units(args: argparse.Namespace, units: List[Unit], context: Context, document: Dict,
              reused: Optional[Dict[str, UnitResult]] = None) -> None:
    """Run the tool on every unit not ``reused``, ``--jobs`` at a time, within the time budget and the deadline."""
    analyze = TOOLS[args.tool][0]
    reused = reused or {}
    budget = process.Deadline(args.time_budget)
    results: List[Optional[UnitResult]] = [None] * len(units)
    lock, last_write = threading.Lock(), [time.monotonic()]

    def one(number: int) -> None:
        cached = reused.get(display_path(units[number], document))
        if cached is not None:
            result = cached
        elif context.deadline.passed():
            result = UnitResult("skipped", context.deadline.NOT_STARTED, [], 0.0)
        elif budget.passed():
            result = UnitResult("skipped", f"the time budget of {args.time_budget:g} s was spent", [], 0.0)
        else:
            result = analyze(units[number], number + 1, context)
        with lock:
            results[number] = result
            if time.monotonic() - last_write[0] >= INDEX_EVERY:
                _record(document, units, results, context.output)
                last_write[0] = time.monotonic()

    document["reused"] = len([u for u in units if display_path(u, document) in reused])
    _record(document, units, results, context.output)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(one, range(len(units))))
    _record(document, units, results, context.output)


def _record(document: Dict, units: List[Unit], results: List[Optional[UnitResult]], output: Path) -> None:
    document["units"] = [
        {"file": display_path(unit, document), "directory": unit.directory,
         "status": result.status if result else "pending", "reason": result.reason if result else "",
         "reports": result.reports if result else [], "seconds": round(result.seconds, 3) if result else 0}
        for unit, result in zip(units, results)
    ]
    index.write(output, document)
