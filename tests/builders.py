"""Test data shared by several test modules: small real archives, events, tree snapshots, planted bugs."""

import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

from harness import HELLO_TARBALL

from kiskadee.core import ranking
from kiskadee.core.events import SourceEvent
from kiskadee.core.findings import Finding, fingerprint
from kiskadee.core.runs import AnalyzerRun

C_SOURCE = b"""#include <string.h>
void copy(char *out, const char *in) { char buf[16]; strcpy(buf, in); strcpy(out, buf); }
"""

# (path, line, check, cwe) each analyzer must report on tests/fixtures/planted;
# Eva does not report leaks (they are not UB).
PLANTED = {
    "clang": {("src/null_deref.c", 10, "core.NullDereference", 476), ("src/use_after_free.c", 13, "unix.Malloc", 416),
              ("src/double_free.c", 13, "unix.Malloc", 415),
              ("src/overflow.c", 10, "alpha.unix.cstring.OutOfBounds", 120), ("src/leak.c", 23, "unix.Malloc", 401)},
    "gcc": {("src/null_deref.c", 10, "analyzer-null-dereference", 476),
            ("src/use_after_free.c", 13, "analyzer-use-after-free", 416),
            ("src/double_free.c", 13, "analyzer-double-free", 415), ("src/overflow.c", 10, "stringop-overflow", 787),
            ("src/leak.c", 23, "analyzer-malloc-leak", 401)},
    "framac": {("src/null_deref.c", 10, "mem_access", 119), ("src/use_after_free.c", 13, "dangling_pointer", 416),
               ("src/double_free.c", 13, "dangling_pointer", 416), ("src/overflow.c", 10, "precondition.strcpy", 120)},
}


def c_tarball(top: str, source: bytes = C_SOURCE) -> bytes:
    """A small real .tar.gz holding ``top/src/copy.c``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in ((f"{top}/src/copy.c", source), (f"{top}/README", b"test archive\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hello_copy(directory: Path, version: str) -> Path:
    """The real hello tarball under another version's name (contents are what matter)."""
    path = directory / f"hello-{version}.tar.gz"
    shutil.copy(HELLO_TARBALL, path)
    return path


def anitya_event(package: str, version: str, backend: str, **meta) -> SourceEvent:
    """An event as the bus consumers make it (the format agreed for every Anitya announcement)."""
    fields = {"project_id": 1, "backend": backend, "homepage": "", "version_url": "", "ecosystem": "",
              "distributions": [], "topic": "org.release-monitoring.prod.anitya.project.version.update.v2"}
    fields.update(meta)
    return SourceEvent("anitya", package, version, meta=fields)


def snapshot(tree):
    """Every file under ``tree`` with its size and modification time."""
    return {os.path.relpath(os.path.join(d, f), tree): (os.stat(os.path.join(d, f)).st_size,
                                                        os.stat(os.path.join(d, f)).st_mtime_ns)
            for d, _, files in os.walk(tree) for f in files}


def finding(analyzer: str, path: str, line: int, check_id: str, severity: str = "medium",
            cwes=(), message: str = "", source_line: str = "") -> Finding:
    """A finding as ``analyzer`` reports it, fingerprinted as the runner does (``source_line``
    stands for the flagged line of code; the line number is no part of the fingerprint)."""
    made = Finding(path=path, line=line, check_id=check_id, severity=severity,
                   message=message or f"{check_id} at {path}", cwes=tuple(cwes))
    made.fingerprint = fingerprint(analyzer, made, source_line or f"{path}:{line}")
    return made


def ranked_runs(findings_by_analyzer, tool_version: str = "1.0"):
    """One ``ok`` AnalyzerRun per analyzer, ranked together as the pipeline ranks the analyzers
    of one run (``kiskadee.analysis.pipeline``): a run that leaves an analyzer out ranks without it."""
    ranking.rank(findings_by_analyzer)
    return [AnalyzerRun(analyzer, tool_version, "ok", duration=1.0, findings=list(findings))
            for analyzer, findings in findings_by_analyzer.items()]
