"""Ranking measured on labelled code: kiskadee's rank against severity order and each feature alone.

Data: the Toyota ITC benchmarks (BSD) in /work/shared/benchmarks/itc-benchmarks.
``01.w_Defects`` and ``03.w_Defects_Cpp`` hold functions with one planted
defect each, its line marked ``/*ERROR:...*/``; ``02.wo_Defects`` and
``04.wo_Defects_Cpp`` the same functions without it. A finding inside a
function of a w_Defects file that contains an ERROR line is a true positive;
every other finding is a false positive. The few defects that are global
declarations (invalid_extern.c) are units of one line. The C++ files carry no
ERROR marks in this copy of the suite, so they are analyzed (as part of the
tree) but not scored: only 01.w_Defects and 02.wo_Defects are.

The five analyzers (cppcheck, flawfinder, clang, gcc, framac) run in per-file
mode over a copy of the suite exactly as a runner runs them
(``kiskadee.analysis.pipeline.run_analyzer``, local sandbox, kiskadee's default
limits); each analyzer's normalized findings are cached as JSON under
``~/.cache/kiskadee-bench/`` keyed by the tool's version, so a re-run only
ranks and scores. The first run took 3 minutes 8 seconds here (2 CPUs
shared with other work, load 1.7, ``--jobs 1``: framac 126 s, clang 35 s, gcc
22 s, cppcheck and flawfinder 1 s each) and 73 s with ``--jobs 2`` on idle
CPUs; a cached run takes about 3 seconds, the 20 extra folds included.

Files are split by name into two halves with a stable hash (the same name in
01 and 02 goes to the same half); each ranking that has parameters is fitted
on one half and scored on the other, and then the other way round (2-fold).
Nothing is scored on what it was fitted on.

Printed per fold and ranking, over the held-out half's findings:

  P@Q     precision of the top quarter of the findings by rank
  P@20    precision of the 20 highest ranked, P@100 of the 100 highest
  REC@Q   share of the held-out bad functions with a true positive in the top quarter
  REC     share of the held-out bad functions with any true positive (the same for every ranking)

Precision is the expected one when findings of equal score come in random
order; for recall ties are broken by a stable hash of the finding, never by
the label.

After the two folds, a summary over ``--splits`` more random 2-fold splits
(file names hashed with a salt): the mean held-out difference from severity
order and in how many folds a ranking beats it at P@Q, P@20 and P@100 alike.
The rank's few weights (severity step, shrinkage strengths, agreement bonus)
were chosen on 20 other salted folds than these; the per-check counts are
fitted on each fold's fitting half only.

Run:  .venv/bin/python bench/ranking.py [--refresh] [--jobs N] [--splits N] [--write-priors]
``--write-priors`` refits kiskadee/core/priors.py on the whole suite.
"""

import argparse
import hashlib
import itertools
import json
import re
import shutil
import sys
import tempfile
import time
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Tuple

from kiskadee.analysis.analyzers import make_analyzers
from kiskadee.analysis.pipeline import run_analyzer, tool_version
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.analysis.sandbox.local import LocalSandbox
from kiskadee.config import Config, from_mapping
from kiskadee.core import languages, ranking
from kiskadee.core.findings import Finding

SUITE = Path("/work/shared/benchmarks/itc-benchmarks")
PARTS = ("01.w_Defects", "02.wo_Defects", "03.w_Defects_Cpp", "04.wo_Defects_Cpp", "include")
ANALYZERS = ("cppcheck", "flawfinder", "clang", "gcc", "framac")
CACHE = Path.home() / ".cache" / "kiskadee-bench"
COMPILED = ("clang", "gcc", "framac")
SEVERITY = {"high": 3.0, "medium": 2.0, "low": 1.0, "info": 0.0}


def copy_suite(work: Path) -> Path:
    """The suite's C and C++ trees and headers, without its build files (so per-file mode is what runs)."""
    tree = work / "itc"
    for part in PARTS:
        shutil.copytree(SUITE / part, tree / part, ignore=shutil.ignore_patterns("Makefile*"))
    return tree


def settings(jobs: int):
    sections = {name: {"mode": "per-file", "jobs": jobs} for name in COMPILED}
    return from_mapping({"analyzers": sections}).analyzers


def collect(refresh: bool, jobs: int) -> Tuple[Dict[str, List[Finding]], Dict[str, str]]:
    """Every analyzer's findings on the suite and its version; from the cache when that version is cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    defaults = Config().analysis
    limits = Limits(7200.0, defaults.memory_limit_mb, defaults.max_output_bytes)
    sandbox = LocalSandbox()
    found: Dict[str, List[Finding]] = {}
    versions: Dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="kk-bench-rank-") as work:
        tree = copy_suite(Path(work))
        detected = languages.detect(tree)
        for analyzer in make_analyzers(ANALYZERS, settings(jobs)):
            scratch = Path(tempfile.mkdtemp(dir=work))
            version = tool_version(analyzer, tree, sandbox, limits, scratch)
            versions[analyzer.name] = version
            cached = CACHE / f"itc-{analyzer.name}-{_slug(version)}.json"
            if cached.exists() and not refresh:
                found[analyzer.name] = [Finding(**_tuples(row)) for row in json.loads(cached.read_text())]
                continue
            started = time.monotonic()
            run = run_analyzer(analyzer, tree, sandbox, limits, detected, work)
            print(f"# ran {analyzer.name} {version}: {run.status} in {time.monotonic() - started:.0f} s, "
                  f"{len(run.findings)} findings {run.error[:200]}", file=sys.stderr, flush=True)
            if run.status != "ok":
                raise SystemExit(f"{analyzer.name} did not finish: {run.status} {run.error[:500]}")
            cached.write_text(json.dumps([_row(f) for f in run.findings]))
            found[analyzer.name] = run.findings
    return found, versions


def _slug(version: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", version)[:40] + "-" + hashlib.sha256(version.encode()).hexdigest()[:8]


def _row(finding: Finding) -> dict:
    row = dict(vars(finding))
    row["cwes"] = list(finding.cwes)
    return row


def _tuples(row: dict) -> dict:
    row["cwes"] = tuple(row["cwes"])
    return row


# ---------------------------------------------------------------- labels

_CONTROL = re.compile(r"^\s*(if|for|while|switch|else|do|return|sizeof)\b")
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_STRING = re.compile(r""""(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'""")


def functions(text: str) -> List[Tuple[int, int]]:
    """(first line, last line) of each function definition, for ITC's uniform C style.

    Comments and literals are blanked (keeping line numbers), then braces are
    matched; a top-level brace block whose header has a parameter list and is
    not a control statement is a function, from its header's line to its
    closing brace.
    """
    code = _STRING.sub(lambda m: '""', _COMMENT.sub(lambda m: "\n" * m.group().count("\n") + " ", text))
    ranges, depth, header_start, opened, header = [], 0, 1, 0, ""
    for number, line in enumerate(code.split("\n"), start=1):
        for char in line:
            if depth == 0 and char not in "{};" and not header.strip():
                header_start = number
            if char == "{":
                if depth == 0:
                    opened, is_function = header_start, "(" in header and not _CONTROL.match(header)
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    if is_function:
                        ranges.append((opened, number))
                    header = ""
            elif char == ";" and depth == 0:
                header = ""
            elif depth == 0:
                header += char
        if depth == 0:
            header += " "
    return ranges


def bad_functions(root: Path) -> Dict[str, List[Tuple[int, int]]]:
    """Per w_Defects C file (relative path), the line ranges of the functions with an ERROR line."""
    bad: Dict[str, List[Tuple[int, int]]] = {}
    for path in sorted((root / "01.w_Defects").glob("*.c")):
        text = path.read_text(errors="replace")
        errors = [n for n, line in enumerate(text.split("\n"), start=1) if "/*ERROR:" in line]
        spans = functions(text)
        inside = [s for s in spans if any(s[0] <= n <= s[1] for n in errors)]
        # a few defects are global declarations (invalid_extern.c): the line alone is the unit
        alone = [(n, n) for n in errors if not any(s[0] <= n <= s[1] for s in spans)]
        bad[f"01.w_Defects/{path.name}"] = inside + alone
    return bad


def label(finding: Finding, bad: Dict[str, List[Tuple[int, int]]]):
    """The bad function (path, first line) the finding is in, or None for a false positive."""
    for first, last in bad.get(finding.path, ()):
        if first <= finding.line <= last:
            return (finding.path, first)
    return None


def half(path: str) -> int:
    """0 or 1: a stable split of file families by file name."""
    return hashlib.sha256(Path(path).name.encode()).digest()[0] % 2


# ---------------------------------------------------------------- rankings

def old_rank(found: Dict[str, List[Finding]]) -> Dict[int, float]:
    """kiskadee's rank until issue 15 (severity + 2 per other analyzer nearby + CWE class - file noise)."""
    spots = defaultdict(set)
    for analyzer, findings in found.items():
        for f in findings:
            spots[(f.path, f.line)].add(analyzer)
    per_file = Counter(f.path for fs in found.values() for f in fs)
    scores = {}
    for analyzer, findings in found.items():
        for f in findings:
            others = set().union(*(spots.get((f.path, n), set()) for n in range(f.line - 2, f.line + 3)))
            others.discard(analyzer)
            scores[id(f)] = (SEVERITY[f.severity] + 2.0 * len(others)
                             + ranking.cwe_weight(f.cwe) - math.log10(per_file[f.path]) / 2)
    return scores
def features(found: Dict[str, List[Finding]], table: dict) -> Dict[str, Dict[int, float]]:
    """Each ranking by name: finding id -> score (higher first)."""
    per_file = Counter(f.path for fs in found.values() for f in fs)
    spots = ranking._spots(found.items())
    nearby = defaultdict(set)
    for (path, line), seen in spots.items():
        for n in range(line - ranking.NEIGHBOURHOOD, line + ranking.NEIGHBOURHOOD + 1):
            nearby[(path, n)] |= {a for a, _ in seen}
    every = [(a, f) for a, fs in found.items() for f in fs]
    scores = {
        "severity": {id(f): SEVERITY[f.severity] for _, f in every},
        "cwe class": {id(f): ranking.cwe_weight(f.cwe) for _, f in every},
        "agreement (count)": {id(f): len(nearby[(f.path, f.line)] - {a}) for a, f in every},
        "indep. agreement": {id(f): float(ranking._independent_agreement(spots, a, f)) for a, f in every},
        "file noise": {id(f): -math.log10(per_file[f.path]) for _, f in every},
        "analyzer prior": {id(f): ranking.analyzer_precision(a, table) for a, f in every},
        "check prior": {id(f): ranking.check_precision(a, f.check_id, table) for a, f in every},
        "old rank": old_rank(found),
    }
    ranking.rank(found, table)
    scores["new rank"] = {id(f): f.rank for _, f in every}
    # what the new rank would gain from the terms it dropped, and lose without agreement
    scores["new + cwe class"] = {id(f): f.rank + ranking.cwe_weight(f.cwe) for _, f in every}
    scores["new + file noise"] = {id(f): f.rank - math.log10(per_file[f.path]) / 2 for _, f in every}
    scores["new - agreement"] = {id(f): f.rank - scores["indep. agreement"][id(f)] * ranking.AGREEMENT_BONUS
                                 for _, f in every}
    return scores


def score(held: List[Finding], by_id: Dict[int, float], labels: Dict[int, object],
          bad_total: int) -> Dict[str, float]:
    """Precision at the top quarter, 20 and 100; recall of bad functions at the top quarter and overall.

    Precision is the expected one when findings of equal score are in random
    order (severity order has few distinct scores, so the order within a tie
    would otherwise decide it); recall breaks ties by a hash of the finding.
    """
    quarter = max(1, math.ceil(len(held) / 4))
    ordered = sorted(held, key=lambda f: (-by_id[id(f)], tiebreak(f)))
    groups: List[Tuple[int, int]] = []          # (findings, real ones) per score, best first
    for _, tied in itertools.groupby(ordered, key=lambda f: by_id[id(f)]):
        tied = list(tied)
        groups.append((len(tied), sum(labels[id(f)] is not None for f in tied)))

    def precision(depth: int) -> float:
        real, left = 0.0, depth
        for size, hits in groups:
            taken = min(size, left)
            real, left = real + hits * taken / size, left - taken
            if not left:
                break
        return real / (depth - left)

    def recall(depth: int) -> float:
        return len({labels[id(f)] for f in ordered[:depth]} - {None}) / bad_total

    return {"P@Q": precision(quarter), "P@20": precision(20), "P@100": precision(100),
            "REC@Q": recall(quarter), "REC": recall(len(ordered))}


def tiebreak(finding: Finding) -> str:
    """A stable order of findings, the same however the analyzers were run (not the fingerprint's occurrence)."""
    key = f"{finding.path}:{finding.line}:{finding.column}:{finding.check_id}:{finding.message}"
    return hashlib.sha256(key.encode()).hexdigest()


COLUMNS = ("P@Q", "P@20", "P@100", "REC@Q", "REC")
PRECISIONS = ("P@Q", "P@20", "P@100")


def fold(found: Dict[str, List[Finding]], bad: Dict[str, List[Tuple[int, int]]], labels: Dict[int, object],
         side: Callable[[str], int], held_out: int) -> Tuple[Dict[str, Dict[str, float]], str]:
    """Every ranking fitted on the files ``side`` does not put in ``held_out``, scored on the others."""
    fitted_on = [(a, f.check_id, labels[id(f)] is not None)
                 for a, fs in found.items() for f in fs if side(f.path) != held_out]
    scores = features(found, ranking.fit(fitted_on))
    held = [f for fs in found.values() for f in fs if side(f.path) == held_out]
    bad_total = sum(len(spans) for path, spans in bad.items() if side(path) == held_out)
    real = sum(labels[id(f)] is not None for f in held)
    rows = {name: score(held, by_id, labels, bad_total)
            for name, by_id in scores.items()}
    return rows, (f"{len(held)} findings, {real} real ({real / len(held):.1%}), {bad_total} bad functions; "
                  f"fitted on {len(fitted_on)} findings")


def evaluate(found: Dict[str, List[Finding]], bad: Dict[str, List[Tuple[int, int]]], splits: int) -> None:
    """Fit on one half, score on the other, both ways; a table per fold, then a summary of random splits."""
    labels = {id(f): label(f, bad) for fs in found.values() for f in fs}
    for held_out in (0, 1):
        rows, summary = fold(found, bad, labels, half, held_out)
        print(f"\nfold {held_out + 1}, held-out half {held_out}: {summary}")
        print(f"{'RANKING':<20}" + "".join(f"{k:>7}" for k in COLUMNS))
        for name, row in rows.items():
            print(f"{name:<20}" + "".join(f"{row[k]:>7.1%}" for k in COLUMNS))
    if splits:
        print(f"\n{splits} more 2-fold splits (file names hashed with a salt): mean held-out difference from "
              "severity order in points, and the folds where the ranking beats it at P@Q, P@20 and P@100 alike")
        print(f"{'RANKING':<20}" + "".join(f"{k:>7}" for k in COLUMNS[:4]) + "   WINS")
        results = [fold(found, bad, labels, salted(salt), held_out)[0]
                   for salt in range(1, splits + 1) for held_out in (0, 1)]
        for name in ("old rank", "check prior", "new rank", "new + cwe class", "new + file noise", "new - agreement"):
            deltas = {k: sum(r[name][k] - r["severity"][k] for r in results) / len(results) for k in COLUMNS[:4]}
            wins = sum(all(r[name][k] > r["severity"][k] for k in PRECISIONS) for r in results)
            print(f"{name:<20}" + "".join(f"{100 * deltas[k]:>+7.1f}" for k in COLUMNS[:4]) +
                  f"  {wins:>2}/{len(results)}")


def salted(salt: int) -> Callable[[str], int]:
    return lambda path: hashlib.sha256(f"{salt}:{Path(path).name}".encode()).digest()[0] % 2


PRIORS_MODULE = Path(__file__).resolve().parent.parent / "kiskadee" / "core" / "priors.py"


def write_priors(found: Dict[str, List[Finding]], bad: Dict[str, List[Tuple[int, int]]],
                 versions: Dict[str, str]) -> None:
    """Refit the shipped priors table on the whole suite and write it as kiskadee/core/priors.py."""
    table = ranking.fit((a, f.check_id, label(f, bad) is not None) for a, fs in found.items() for f in fs)
    lines = ["PRIORS = {"]
    for analyzer, record in sorted(table.items()):
        lines.append(f"    {json.dumps(analyzer)}: {{")
        lines.append(f"        \"real\": {record['real']}, \"total\": {record['total']},  # {versions[analyzer]}")
        lines.append("        \"checks\": {")
        for check, (real, total) in sorted(record["checks"].items()):
            lines.append(f"            {json.dumps(check)}: ({real}, {total}),")
        lines.append("        },")
        lines.append("    },")
    lines.append("}")
    real = sum(r["real"] for r in table.values())
    total = sum(r["total"] for r in table.values())
    PRIORS_MODULE.write_text(PRIORS_DOC.format(date=time.strftime("%Y-%m-%d", time.gmtime()), real=real,
                                               total=total) + "\n".join(lines) + "\n")
    print(f"wrote {PRIORS_MODULE}: {real} real of {total} findings", file=sys.stderr)


PRIORS_DOC = '''"""How often each analyzer's checks were right on labelled code: the shipped ranking priors.

Per analyzer: ``real`` and ``total`` findings, and per check id the pair
(real, total). ``kiskadee.core.ranking`` turns them into shrunk precision
estimates; a check missing here gets its analyzer's.

Fitted on {date} by ``.venv/bin/python bench/ranking.py --write-priors`` from
the Toyota ITC benchmarks (BSD; 01.w_Defects and 02.wo_Defects, the C files):
the five analyzers in per-file mode, the tool versions in the comments; a
finding inside a function with a planted defect counted real, any other not.
{real} of {total} findings were real. Refit after upgrading an analyzer.
"""

'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refresh", action="store_true", help="run the analyzers even when cached")
    parser.add_argument("--jobs", type=int, default=1, help="files analyzed at once by clang, gcc, framac")
    parser.add_argument("--splits", type=int, default=10, help="random 2-fold splits summarized (default 10)")
    parser.add_argument("--write-priors", action="store_true", help="refit kiskadee/core/priors.py on all of it")
    args = parser.parse_args()
    started = time.monotonic()
    found, versions = collect(args.refresh, args.jobs)
    found = {a: [f for f in fs if f.path.startswith(("01.", "02."))] for a, fs in found.items()}
    bad = bad_functions(SUITE)
    print(f"ITC C files: {', '.join(f'{k} {len(v)}' for k, v in found.items())} findings; "
          f"{sum(map(len, bad.values()))} bad functions")
    evaluate(found, bad, args.splits)
    if args.write_priors:
        write_priors(found, bad, {a: versions[a] for a in found})
    print(f"\n{time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
