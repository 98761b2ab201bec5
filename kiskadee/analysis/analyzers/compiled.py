"""The base of analyzers that compile the code: clang, gcc -fanalyzer and Frama-C.

Their single sandbox command is the compile driver (``kiskadee.analysis.driver``),
shipped into the output directory before the run so that every sandbox
backend can run it with nothing but ``python3``: it picks the translation
units (build mode or per-file mode), runs the tool on each and leaves an
index with the raw reports. On the host, ``parse`` reads every raw report the
index names and ``coverage`` says what was analyzed.

The driver is given the sandbox's timeout less a reserve as its deadline: it
starts no unit after it and stops the units still running, so that it ends
with a whole index before the sandbox would kill it. If it is killed all the
same, the index it keeps current as it goes still names the reports of the
units it finished, and ``parse_partial`` reads them.
"""

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import kiskadee.analysis.driver
from kiskadee.analysis.analyzers.base import Analyzer, Coverage, ReportError
from kiskadee.analysis.driver import index, units
from kiskadee.analysis.driver.tools import TOOLS
from kiskadee.config import COMPILED_MODES
from kiskadee.core.findings import Finding
from kiskadee.errors import ConfigError

log = logging.getLogger(__name__)

DRIVER_DIR = ".kiskadee-driver"
DRIVER_PACKAGE = "kiskadee_build"
LAUNCHER = f"import sys\nfrom {DRIVER_PACKAGE}.driver import main\nsys.exit(main())\n"
DEADLINE_RESERVE = 0.05     # of the sandbox's timeout, kept for the driver to finish its index ...
DEADLINE_RESERVE_MIN = 2.0  # ... at least these seconds
DEADLINE_RESERVE_MAX = 60.0  # ... and at most these
REUSE = "kiskadee-reuse.json"       # in the output directory: the units the driver does not run again
MERGED = "kiskadee-reused.json"     # on the host only: the reused units' findings, beside the index


def driver_deadline(timeout: float) -> float:
    """The seconds the driver may take: the sandbox's timeout less a reserve to finish in."""
    reserve = min(DEADLINE_RESERVE_MAX, max(DEADLINE_RESERVE_MIN, timeout * DEADLINE_RESERVE))
    return max(timeout - reserve, timeout / 2)


class CompiledAnalyzer(Analyzer):
    """An analyzer run through the compile driver; subclasses parse one raw report."""

    tool = ""           # the driver's --tool
    builds = True       # may build the tree: it is given the analysis's shared build directory

    def __init__(self, settings: object):
        super().__init__(settings)
        if settings.mode not in COMPILED_MODES:     # settings made in code, not loaded
            raise ConfigError(f"analyzers.{self.name}.mode must be one of {', '.join(COMPILED_MODES)}, "
                              f"not {settings.mode!r}")

    def prepare(self, output: Path) -> None:
        """Copy the driver package into the output directory, with a launcher."""
        target = output / DRIVER_DIR
        shutil.copytree(Path(kiskadee.analysis.driver.__file__).parent, target / DRIVER_PACKAGE,
                        ignore=shutil.ignore_patterns("__pycache__", "__main__.py"))
        (target / "__main__.py").write_text(LAUNCHER)

    def argv(self, source: str, output: str, timeout: float, build_refusal: str = "") -> List[str]:
        settings = self.settings
        argv = [settings.python, "-E", "-s", f"{output}/{DRIVER_DIR}", "--tool", self.tool,
                "--program", self.program, "--output", output, "--mode", settings.mode,
                "--deadline", f"{driver_deadline(timeout):g}",
                "--jobs", str(settings.jobs), "--unit-timeout", f"{settings.unit_timeout:g}",
                "--configure-timeout", f"{settings.configure_timeout:g}",
                "--build-timeout", f"{settings.build_timeout:g}", "--time-budget", f"{settings.time_budget:g}"]
        if build_refusal:
            argv.append(f"--no-build={build_refusal}")
        argv += self.driver_args()
        return argv + [f"--arg={arg}" for arg in [*self.tool_args(), *settings.extra_args]]

    def sharing_build(self, argv: List[str], build: str) -> List[str]:
        """``argv`` building in (or taking the units of) the shared build directory ``build``."""
        at = argv.index("--deadline")
        return argv[:at] + ["--shared-build", build] + argv[at:]

    def driver_args(self) -> List[str]:
        """Driver options only this analyzer uses."""
        return []

    def tool_args(self) -> List[str]:
        """Options of the tool itself that come from its configuration section."""
        return []

    def report(self, stdout: Path, output: Path) -> Path:
        return output / index.INDEX

    def cache_units(self, tree: Path, files) -> Optional[Dict[str, object]]:
        """Per-file mode's units, each with its flags and the files it may include.

        Build mode's units are known only after the build: the driver reuses
        nothing there, and they are not kept.
        """
        sources, header_dirs, has_config = units.scan_tree(tree)
        template = "" if has_config else units.config_template(tree)
        flags = {"includes": units.include_order(header_dirs), "has_config": has_config,
                 "template": [template, files.digest(template) if template else ""]}
        wanted = TOOLS[self.tool][1]
        return {path: {"language": units.language_of(path), "flags": flags, "reads": files.closure(path)}
                for path in sources if units.language_of(path) in wanted}

    def argv_reusing(self, source: str, output: str, timeout: float, build_refusal: str,
                     todo: List[str], reused: Dict[str, dict], output_dir: Path) -> Optional[List[str]]:
        argv = self.argv(source, output, timeout, build_refusal)
        if not reused:
            return argv
        outcomes = {path: {"status": unit.get("status", "ok"), "reason": unit.get("reason", "")}
                    for path, unit in reused.items()}
        (output_dir / REUSE).write_text(json.dumps(outcomes))
        at = argv.index("--deadline")
        return argv[:at] + ["--reuse", f"{output}/{REUSE}"] + argv[at:]

    def fresh_units(self, report: Path, output: Path, todo: List[str]) -> Dict[str, dict]:
        """Each per-file unit this run analyzed to its end: its findings, and its status and reason.

        A unit that failed (did not compile, ran out of memory) fails again on the same
        input: it is kept too. One that timed out or was not started is not.
        """
        document = _read_index(output, partial=False)
        if document.get("mode") != "per-file":
            return {}
        found_by_unit = dict(self._per_unit(document, output, {}))
        wanted = set(todo)
        return {unit["file"]: {"status": unit["status"], "reason": unit["reason"],
                               "findings": [_as_cached(finding) for finding in found_by_unit.get(unit["file"], [])]}
                for unit in document["units"] if unit["status"] in ("ok", "failed") and unit["file"] in wanted}

    def merge_report(self, report: Path, reused: Dict[str, dict], scratch: Path) -> Path:
        merged = scratch / MERGED
        merged.write_text(json.dumps({"output": str(report.parent), "reused": reused}))
        return merged

    def parse(self, report: Path) -> List[Finding]:
        return self._parse(report, partial=False)

    def parse_partial(self, report: Path) -> List[Finding]:
        return self._parse(report, partial=True)

    def unfinished(self, report: Path) -> str:
        document = _read_index(_merged(report)[0], partial=False)
        if not document.get("stopped_at_deadline"):
            return ""
        analyzed = sum(1 for unit in document["units"] if unit["status"] == "ok")
        return (f"stopped at its deadline of {document['deadline']:g} s (the analysis timeout less a "
                f"reserve to finish in) with {analyzed} of {len(document['units'])} files analyzed; "
                "their findings are kept")

    def _parse(self, report: Path, partial: bool) -> List[Finding]:
        output, reused = _merged(report)
        document = _read_index(output, partial)
        if document.get("mode") != "per-file":
            reused = {}                             # the driver reuses units in per-file mode only
        try:
            findings: Dict[tuple, Finding] = {}
            for _, found in self._per_unit(document, output, reused):
                for finding in found:
                    key = (finding.path, finding.line, finding.column, finding.check_id, finding.message)
                    findings.setdefault(key, finding)    # a header's finding, seen from many units
            return list(findings.values())
        except (TypeError, AttributeError, KeyError) as exc:
            raise ReportError(f"malformed {index.INDEX} or cached findings: {exc}") from None

    def _per_unit(self, document: Dict, output: Path, reused: Dict[str, dict]) -> List[Tuple[str, List[Finding]]]:
        """Each analyzed unit's findings in the index's order, those of ``reused`` units from the cache."""
        roots = [document.get("copy_root") or "", document["source_root"]]
        found_by_unit, unreadable = [], 0
        for unit in document["units"]:
            if unit["file"] in reused:
                found_by_unit.append((unit["file"], [Finding(**f) for f in reused[unit["file"]]["findings"]]))
                continue
            reports = [_inside(output, name) for name in unit["reports"]]   # a forged index fails it all
            try:
                found = [finding for report in reports
                         for finding in self.parse_report(report, roots, unit["directory"])]
            except ReportError as exc:
                # One unit's broken report (its tool killed midway) costs that unit, not the analysis.
                log.warning("%s: %s: %s", self.name, unit.get("file"), exc)
                unit.update(status="failed", reason=f"its report could not be read: {exc}", reports=[])
                unreadable += 1
                continue
            found_by_unit.append((unit["file"], found))
        if unreadable:
            index.write(output, document)           # so that the coverage counts those units as failed
        return found_by_unit

    def parse_report(self, report: Path, roots: List[str], directory: str) -> Iterable[Finding]:
        """The findings of one unit's raw report, paths relative to the source root."""
        raise NotImplementedError

    def coverage(self, output: Path) -> Optional[Coverage]:
        document = index.read(output)
        try:
            return None if document is None else self._coverage(document)
        except (KeyError, TypeError, AttributeError) as exc:
            log.warning("%s: malformed %s: %s", self.name, index.INDEX, exc)
            return None

    def _coverage(self, document: Dict) -> Coverage:
        units = document["units"]
        failed = [u for u in units if u["status"] != "ok"]
        listed = [f"{u['file']}: {u['reason'] or u['status']}" for u in failed]
        if document.get("build_note"):
            log.info("%s: %s build: %s", self.name, document.get("mode"), document["build_note"])
        return Coverage(mode=str(document.get("mode", "")), files_analyzed=len(units) - len(failed),
                        files_failed=len(failed), fallback=str(document.get("fallback", "")),
                        failed_files="\n".join(listed))


def _as_cached(finding: Finding) -> dict:
    """A raw finding as the cache keeps it: before fingerprints, ranks and the functions kiskadee fills."""
    data = dataclasses.asdict(finding)
    data["cwes"] = list(data["cwes"])
    return data


def _merged(report: Path) -> Tuple[Path, Dict[str, dict]]:
    """The output directory and the reused units' findings of a report: the index, or a merged report."""
    if report.name != MERGED:
        return report.parent, {}
    document = json.loads(report.read_text())
    return Path(document["output"]), document["reused"]


def _inside(output: Path, name: str) -> Path:
    """A report named by the index, refused unless it lies in the output directory."""
    path = (output / name).resolve()
    if not path.is_relative_to(output.resolve()):
        raise ReportError(f"{index.INDEX} names a report outside the output directory: {name!r}")
    return path


def _read_index(output: Path, partial: bool) -> Dict:
    document = index.read(output)
    if document is None:
        raise ReportError(f"the compile driver left no readable {index.INDEX}")
    if not isinstance(document.get("units"), list) or not isinstance(document.get("source_root"), str):
        raise ReportError(f"malformed {index.INDEX}: no units or source root")
    if not document.get("finished") and not partial:
        raise ReportError(f"the compile driver did not finish ({index.INDEX} is partial)")
    return document
