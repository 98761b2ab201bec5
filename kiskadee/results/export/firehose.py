"""Firehose XML export, built with the ``firehose`` library's model (the format of the
Fedora static analysis project and of Debile).

A Firehose document describes one generator's results. Exporting a single
analyzer (``--analyzer``) names that tool and its version; exporting several
names kiskadee, and each issue says which analyzer found it in its custom
fields. Analyzers that failed or timed out become ``<failure>`` results and
skipped ones ``<info>`` results, so a reader sees what was not analyzed.
Versions from the Debian fetcher are described as a ``<debian-source>``.
"""

from typing import Dict, List, Optional

from firehose import model

from kiskadee import __version__
from kiskadee.results.export.collect import Export


def to_firehose(export: Export) -> bytes:
    """The Firehose XML document of an export, as UTF-8 bytes."""
    return analysis(export).to_xml_bytes()


def analysis(export: Export) -> model.Analysis:
    """The export as a ``firehose.model.Analysis``."""
    metadata = model.Metadata(_generator(export.analyses), _sut(export), None,
                              model.Stats(wallclocktime=sum(a["duration"] for a in export.analyses)))
    results: List[model.Result] = [_issue(f) for f in export.findings]
    results += [_outcome(a) for a in export.analyses if a["status"] != "ok"]
    return model.Analysis(metadata, results, _fields({
        "package": export.package, "fetcher": export.fetcher, "version": export.version,
        "previous-version": export.previous, "source-url": export.source_url, "sha256": export.sha256,
        "analyzers": "; ".join(f"{a['analyzer']} {a['analyzer_version']} {a['status']}" for a in export.analyses),
    }))


def _generator(analyses: List[Dict]) -> model.Generator:
    if len(analyses) == 1:
        return model.Generator(name=analyses[0]["analyzer"], version=analyses[0]["analyzer_version"])
    return model.Generator(name="kiskadee", version=__version__)


def _sut(export: Export) -> Optional[model.Sut]:
    if export.fetcher != "debian":
        return None
    upstream, _, revision = export.version.rpartition("-")
    if not upstream:            # a native package: no Debian revision
        return model.DebianSource(export.package, export.version, None)
    return model.DebianSource(export.package, upstream, revision)


def _issue(finding: Dict) -> model.Issue:
    function = model.Function(finding["function"]) if finding["function"] else None
    location = model.Location(model.File(finding["path"], None), function,
                              model.Point(finding["line"], finding["column"]))
    waiver = finding["waiver"] or {}
    fields = _fields({
        "analyzer": finding["analyzer"], "fingerprint": finding["fingerprint"],
        "rank": f"{finding['rank']:g}", "survived": finding["survived"],
        "baseline-state": finding["baseline_state"],
        "waiver": waiver.get("kind"), "waiver-comment": waiver.get("comment"),
    })
    return model.Issue(finding["cwe"], finding["check_id"], location, model.Message(finding["message"]),
                       None, None, severity=finding["severity"], customfields=fields)


def _outcome(analysis: Dict) -> model.Result:
    """A failed or timed-out analyzer as a <failure>, a skipped one as an <info>."""
    fields = _fields({"analyzer": analysis["analyzer"], "analyzer-version": analysis["analyzer_version"],
                      "status": analysis["status"]})
    message = model.Message(analysis["error"] or analysis["status"])
    if analysis["status"] == "skipped":
        return model.Info("skipped", None, message, fields)
    return model.Failure(analysis["status"], None, message, fields)


def _fields(values: Dict) -> model.CustomFields:
    """Custom fields without the empty ones (Firehose holds strings and integers)."""
    return model.CustomFields((k, v) for k, v in values.items() if v not in (None, ""))
