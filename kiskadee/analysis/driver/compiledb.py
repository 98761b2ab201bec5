"""Reading a JSON compilation database (compile_commands.json) into units with their real flags.

Only the flags that change what the compiler sees are kept (preprocessor
definitions, include paths, forced includes, the language standard and a few
code-model switches): optimization, warnings, dependency files and output
names are the build's business, and another compiler than the build's
(clang for a gcc build) may not know them.
"""

import json
import os
import shlex
from pathlib import Path
from typing import Iterator, List, Sequence

from .units import Unit, language_of

# Flags kept with their argument, joined (-Ifoo) or separate (-I foo).
WITH_ARGUMENT = ("-I", "-D", "-U", "-include", "-imacros", "-isystem", "-iquote", "-idirafter")
KEPT_EXACT = {"-ansi", "-pthread", "-m32", "-m64", "-fsigned-char", "-funsigned-char",
              "-fshort-enums", "-fshort-wchar", "-fopenmp", "-fms-extensions", "-fgnu89-inline"}
KEPT_PREFIX = ("-std=", "-fno-builtin")


class CompileDatabaseError(Exception):
    """The compilation database is missing or not what the format says."""


def read_units(path: Path) -> List[Unit]:
    """The C and C++ units of a compilation database, each file once (its first command)."""
    try:
        entries = json.loads(path.read_text(errors="replace"))
    except (OSError, ValueError) as exc:
        raise CompileDatabaseError(f"cannot read {path.name}: {exc}") from None
    if not isinstance(entries, list):
        raise CompileDatabaseError(f"{path.name} is not a list of compile commands")
    units, seen = [], set()
    for entry in entries:
        unit = _unit(entry)
        if unit is not None and unit.path not in seen:
            seen.add(unit.path)
            units.append(unit)
    return units


def _unit(entry: object):
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        return None
    language = language_of(entry["file"])
    if not language:
        return None
    arguments = entry.get("arguments")
    if not isinstance(arguments, list):
        arguments = shlex.split(entry.get("command", ""))
    directory = entry.get("directory") or "."
    return Unit(entry["file"], os.path.abspath(directory), tuple(kept_flags(arguments[1:])), language)


def kept_flags(arguments: Sequence[str]) -> List[str]:
    """The flags of one command that matter for analysis, in their order."""
    return list(_kept(iter(arguments)))


def _kept(arguments: Iterator[str]) -> Iterator[str]:
    for argument in arguments:
        if argument in WITH_ARGUMENT:
            value = next(arguments, None)
            if value is not None:
                yield from (argument, value)
        elif argument.startswith(WITH_ARGUMENT) and not argument.startswith("-include-pch"):
            yield argument
        elif argument in KEPT_EXACT or argument.startswith(KEPT_PREFIX):
            yield argument
