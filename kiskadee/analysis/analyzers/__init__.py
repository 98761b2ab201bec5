"""Analyzer plug-ins: one module per tool, each turning the tool's report into Findings.

An analyzer knows how to ask its tool for its version, which command to run
over a source tree, where the tool leaves its report and how to parse it.
Running it is the business of ``kiskadee.analysis.pipeline`` and a sandbox backend.
"""

from typing import Dict, List, Sequence, Type

from kiskadee.analysis.analyzers.base import Analyzer


def registry() -> Dict[str, Type[Analyzer]]:
    """The analyzers kiskadee knows, by name."""
    from kiskadee.analysis.analyzers.clang import Clang
    from kiskadee.analysis.analyzers.cppcheck import Cppcheck
    from kiskadee.analysis.analyzers.flawfinder import Flawfinder
    from kiskadee.analysis.analyzers.framac import FramaC
    from kiskadee.analysis.analyzers.gcc import Gcc

    return {cls.name: cls for cls in (Cppcheck, Flawfinder, Clang, Gcc, FramaC)}


def make_analyzers(names: Sequence[str], settings: object) -> List[Analyzer]:
    """Instances of the named analyzers, each with its section of ``settings``."""
    known = registry()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"unknown analyzer {', '.join(unknown)}; known analyzers: {', '.join(sorted(known))}"
        )
    return [known[name](getattr(settings, name)) for name in names]
