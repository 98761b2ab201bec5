"""Build mode: configure the tree with its own build system and take its compile commands.

Nothing is written into the source tree (it may be mounted read-only):
autotools trees are configured and built in a writable copy under the output
directory, with ``bear`` recording the compiler invocations of ``make -k``;
CMake and Meson configure into a build directory there and write
``compile_commands.json`` themselves. Any failure is a ``BuildFailed`` whose
text says why, and the driver falls back to per-file mode.
"""

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

from . import process
from .compiledb import CompileDatabaseError, read_units
from .units import Unit


SHARED = "kiskadee-build.json"      # in a shared build directory: the build's outcome, for the next analyzer


class BuildFailed(Exception):
    """The build system could not configure or produced no compile commands; the text says why."""


class BuildSettings(NamedTuple):
    jobs: int
    configure_timeout: float
    build_timeout: float
    deadline: process.Deadline


class Build(NamedTuple):
    system: str
    units: List[Unit]
    copy_root: Optional[str]    # the writable copy the units were compiled in, if any
    note: str                   # what went wrong short of failing, e.g. make's exit status


def detect(root: Path) -> str:
    """The build system of a tree: 'autotools' (a generated configure), 'cmake', 'meson' or ''."""
    configure = root / "configure"
    if configure.is_file() and os.access(configure, os.X_OK):
        return "autotools"
    if (root / "CMakeLists.txt").is_file():
        return "cmake"
    if (root / "meson.build").is_file():
        return "meson"
    return ""


def build(system: str, root: Path, work: Path, settings: BuildSettings, env: Dict[str, str]) -> Build:
    """Configure (and for autotools build) ``root`` under ``work``; the units it compiles."""
    work.mkdir(parents=True, exist_ok=True)
    if system == "autotools":
        return _autotools(root, work, settings, env)
    if system == "cmake":
        _require("cmake", env)
        _step(["cmake", "-S", str(root), "-B", str(work / "cmake"), "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"],
              root, settings.configure_timeout, work, "cmake", env, settings.deadline)
        return Build(system, _units(work / "cmake" / "compile_commands.json"), None, "")
    if system == "meson":
        _require("meson", env)
        _require("ninja", env)
        _step(["meson", "setup", str(work / "meson"), str(root)], root, settings.configure_timeout,
              work, "meson", env, settings.deadline)
        return Build(system, _units(work / "meson" / "compile_commands.json"), None, "")
    raise BuildFailed(f"unknown build system {system!r}")


def shared_build(system: str, root: Path, work: Path, settings: BuildSettings, env: Dict[str, str]) -> Build:
    """The build another analyzer of this tree made in ``work``, or a new one left there for the next.

    A failure is shared too (the next analyzer falls back at once, for the same
    reason), except one at this analyzer's deadline: the next has time of its own.
    """
    outcome = work / SHARED
    if outcome.is_file():
        saved = json.loads(outcome.read_text())
        if saved.get("failed"):
            raise BuildFailed(saved["failed"])
        units = [Unit(u[0], u[1], tuple(u[2]), u[3]) for u in saved["units"]]
        return Build(saved["system"], units, saved["copy_root"], saved["note"])
    for left in work.iterdir() if work.is_dir() else ():    # an analyzer before stopped at its deadline
        shutil.rmtree(left) if left.is_dir() and not left.is_symlink() else left.unlink()
    try:
        made = build(system, root, work, settings, env)
    except BuildFailed as exc:
        if not settings.deadline.passed():
            _save(outcome, {"failed": str(exc)})
        raise
    _save(outcome, {"system": made.system, "units": [list(unit) for unit in made.units],
                    "copy_root": made.copy_root, "note": made.note})
    return made


def _save(path: Path, outcome: Dict) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(outcome))
    os.replace(partial, path)


def _autotools(root: Path, work: Path, settings: BuildSettings, env: Dict[str, str]) -> Build:
    _require("make", env)
    _require("bear", env)
    tree = work / "tree"
    writable_copy(root, tree)
    _step(["./configure"], tree, settings.configure_timeout, work, "configure", env, settings.deadline)
    database = work / "compile_commands.json"
    outcome = _run(["bear", "--output", str(database), "--", "make", "-k", f"-j{settings.jobs}"],
                   tree, settings.build_timeout, work, "make", env, settings.deadline)
    note = "" if outcome.returncode == 0 else f"make exited with status {outcome.returncode}"
    if outcome.timed_out:
        note = f"make {_overran(settings.build_timeout, settings.deadline)}"
    return Build("autotools", _units(database), str(tree), note)


def writable_copy(root: Path, copy: Path) -> None:
    """Copy the tree keeping links and timestamps (so make does not rerun autoconf), owner-writable."""
    shutil.copytree(root, copy, symlinks=True)
    for directory, dirs, files in os.walk(copy):
        for name in [directory] + [os.path.join(directory, f) for f in dirs + files]:
            if not os.path.islink(name):
                mode = os.stat(name).st_mode
                os.chmod(name, mode | stat.S_IWUSR | (stat.S_IXUSR if os.path.isdir(name) else 0))


def _require(program: str, env: Dict[str, str]) -> None:
    if shutil.which(program, path=env.get("PATH")) is None:
        raise BuildFailed(f"{program} is not installed")


def _run(argv: List[str], cwd: Path, timeout: float, work: Path, name: str,
         env: Dict[str, str], deadline: process.Deadline) -> process.Outcome:
    return process.run(argv, cwd, env, deadline.cap(timeout), work / f"{name}.out", work / f"{name}.err")


def _overran(timeout: float, deadline: process.Deadline) -> str:
    """How a step that timed out overran: its own timeout or the analyzer's deadline."""
    return f"was {deadline.STOPPED}" if deadline.passed() else f"exceeded its {timeout:g} s timeout"


def _step(argv: List[str], cwd: Path, timeout: float, work: Path, name: str, env: Dict[str, str],
          deadline: process.Deadline) -> None:
    outcome = _run(argv, cwd, timeout, work, name, env, deadline)
    if outcome.timed_out:
        raise BuildFailed(f"{name} {_overran(timeout, deadline)}")
    if outcome.returncode != 0:
        last = (outcome.stderr_tail or process.tail(work / f"{name}.out")).splitlines()[-3:]
        raise BuildFailed(f"{name} exited with status {outcome.returncode}: {' / '.join(last)}")


def _units(database: Path) -> List[Unit]:
    if not database.is_file():
        raise BuildFailed(f"no {database.name} was written")
    try:
        units = read_units(database)
    except CompileDatabaseError as exc:
        raise BuildFailed(str(exc)) from None
    if not units:
        raise BuildFailed("the build compiled no C or C++ file")
    return units
