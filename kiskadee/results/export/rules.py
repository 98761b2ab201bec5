"""The SARIF rules of an export: each check's own documentation, its CWEs and, for
security rules, GitHub code scanning's ``security-severity``.

The texts come from ``ruletexts``, a table generated from the analyzers'
documentation of their checks by ``packaging/refresh-rule-texts`` (cppcheck's
``--errorlist``, flawfinder's rule set, clang's checker help, gcc's warning
help), shipped rather than asked of the tools at export time: an export is
then fast, and the same on every host, with or without the analyzers
installed. Frama-C's alarms are described by kiskadee's own alarm table. A
check none of them documents gets a text made from its id and CWE.

A rule is a security rule when one of its CWEs is in a security class of
``kiskadee.core.ranking`` (memory safety, injection, numeric, resource, API
misuse); its ``security-severity`` is that of its most severe class, on
GitHub's scale (9.0 and over critical, 7.0 high, 4.0 medium).
"""

import re
from typing import Dict, Iterable, List, Optional, Tuple

from kiskadee.analysis.analyzers.framac import ALARMS, PRECONDITION
from kiskadee.core import ranking
from kiskadee.results.export.ruletexts import TEXTS

SECURITY_SEVERITY = {"memory-safety": 9.0, "injection": 9.0, "numeric": 7.0, "resource": 5.0,
                     "api-misuse": 4.0}
MAX_DESCRIPTION = 1024    # GitHub's limit on shortDescription and fullDescription
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|[._\-]+")
_DOCS = {
    "clang": "https://clang.llvm.org/docs/analyzer/checkers.html#{anchor}",
    "gcc": "https://gcc.gnu.org/onlinedocs/gcc/Warning-Options.html",
}


def descriptor(analyzer: str, check: str, cwes: Iterable[int]) -> Dict:
    """The reportingDescriptor of ``analyzer``'s check ``check``, seen with ``cwes``."""
    cwes = sorted(set(cwes))
    short, full, advice = _documented(analyzer, check) or _generated(analyzer, check, cwes)
    rule = {"id": check,
            "shortDescription": {"text": _shortened(short)},
            "fullDescription": {"text": _shortened(full or short)},
            "help": _help(analyzer, check, full or short, advice, cwes)}
    uri = help_uri(analyzer, check)
    if uri:
        rule["helpUri"] = uri
    properties = _properties(cwes)
    if properties:
        rule["properties"] = properties
    return rule


def security_severity(cwes: Iterable[int]) -> Optional[str]:
    """GitHub's security-severity ("9.0") of a rule with these CWEs; None for no security class."""
    scores = [SECURITY_SEVERITY[c] for c in map(ranking.cwe_class, cwes) if c in SECURITY_SEVERITY]
    return f"{max(scores):.1f}" if scores else None


def help_uri(analyzer: str, check: str) -> str:
    """Where the tool documents the check, '' where it has no page per check."""
    if analyzer == "clang":
        return _DOCS["clang"].format(anchor=check.lower().replace(".", "-"))
    if analyzer == "gcc" and check in TEXTS["gcc"]:
        return _DOCS["gcc"] if not check.startswith("analyzer-") else \
            "https://gcc.gnu.org/onlinedocs/gcc/Static-Analyzer-Options.html"
    return ""


def _documented(analyzer: str, check: str) -> Optional[Tuple[str, str, str]]:
    if analyzer == "framac":
        if check in ALARMS:
            return f"Frama-C Eva alarm: {ALARMS[check]}", \
                f"Frama-C's Eva plug-in could not prove the absence of an {ALARMS[check]} here.", ""
        if check.startswith("precondition."):
            clause = check[len("precondition."):]
            return f"Frama-C Eva: {PRECONDITION}{clause}", \
                f"A call may break the C library specification's precondition '{clause}'.", ""
        return None
    return TEXTS.get(analyzer, {}).get(check)


def _generated(analyzer: str, check: str, cwes: List[int]) -> Tuple[str, str, str]:
    words = " ".join(w.lower() for w in _WORD_BREAK.split(check) if w)
    short = f"{analyzer}: {words or check}"
    weakness = f", a case of {', '.join(f'CWE-{c}' for c in cwes)}" if cwes else ""
    full = (f"Reported by {analyzer}'s check '{check}'{weakness}. {analyzer} documents no description "
            "of this check; each result's message says what it found.")
    return short, full, ""


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_DESCRIPTION else text[:MAX_DESCRIPTION - 3] + "..."


def _help(analyzer: str, check: str, full: str, advice: str, cwes: List[int]) -> Dict:
    lines = [full]
    if advice:
        lines.append(f"Suggestion: {advice}")
    markdown = list(lines)
    if cwes:
        lines.append("Weakness: " + ", ".join(f"CWE-{c}" for c in cwes))
        markdown.append("Weakness: " + ", ".join(
            f"[CWE-{c}](https://cwe.mitre.org/data/definitions/{c}.html)" for c in cwes))
    uri = help_uri(analyzer, check)
    if uri:
        lines.append(f"Documentation: {uri}")
        markdown.append(f"[{analyzer} documentation]({uri})")
    return {"text": "\n\n".join(lines), "markdown": "\n\n".join(markdown)}


def _properties(cwes: List[int]) -> Dict:
    tags = [f"external/cwe/cwe-{c}" for c in cwes]
    severity = security_severity(cwes)
    if severity is None:
        return {"tags": tags} if tags else {}
    return {"tags": ["security"] + tags, "security-severity": severity}
