"""Exporting a version's results for the tools people already use: SARIF 2.1.0,
Firehose XML and JSON (gathered by ``collect``)."""

from typing import Dict

from kiskadee.results.export.collect import Export, as_json_data, collect

__all__ = ["FORMATS", "Export", "collect", "render"]

FORMATS = ("sarif", "firehose", "json")


def render(export: Export, fmt: str) -> bytes:
    """The export in format ``fmt`` (one of FORMATS), as bytes to write."""
    if fmt == "sarif":
        from kiskadee.results.export.sarif import to_sarif

        return _json_bytes(to_sarif(export))
    if fmt == "firehose":
        from kiskadee.results.export.firehose import to_firehose

        return to_firehose(export)
    if fmt == "json":
        return _json_bytes(as_json_data(export))
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def _json_bytes(data: Dict) -> bytes:
    import json

    return (json.dumps(data, indent=2, sort_keys=False) + "\n").encode("utf-8")
