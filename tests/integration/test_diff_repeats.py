"""Identical findings in one file, told apart by their context, with the real flawfinder.

The case of pillow 10.4.0's ``src/libImaging/Unpack.c``: two new unpackers,
each with the same ``memcpy(_out, &iv, sizeof(iv));`` as the existing ones,
were inserted before them. Numbered by order of occurrence, the old
unpackers' findings took the new ones' fingerprints: ``diff`` called the
wrong lines new, and a waiver given on 10.3.0's line 799 showed on 10.4.0's
line 813, in a new function. The C file below is built the same way (the
unpackers after Unpack.c's ``unpackI16B_I16``-style helpers, cut short).
Both releases are analyzed into SQLite and into PostgreSQL (``new_database``),
the second time from the analysis cache the two share (``analysis_cache``).
"""

import json

import pytest
from harness import run_kiskadee, write_config

UNPACKER = """
static void
{name}(UINT8 *_out, const UINT8 *in, int pixels) {{
    int i;
    {kind} iv;
    for (i = 0; i < pixels; i++) {{
        iv = {expression};
        memcpy(_out, &iv, sizeof(iv));
        in += {step};
        _out += sizeof(iv);
    }}
}}
"""
HEADER = "#include <string.h>\n\ntypedef unsigned char UINT8;\ntypedef unsigned short UINT16;\n"
OLD = [("unpackI16B", "UINT16", "in[1] + (in[0] << 8)", 2), ("unpackI32", "unsigned int",
        "in[0] + (in[1] << 8) + (in[2] << 16) + (in[3] << 24)", 4)]
NEW = [("unpackI12_I16", "UINT16", "(in[0] << 4) + (in[1] >> 4)", 3), ("unpackI12B_I16", "UINT16",
        "(in[1] << 4) + (in[0] >> 4)", 3)]


def unpack_c(unpackers) -> str:
    return HEADER + "".join(UNPACKER.format(name=n, kind=k, expression=e, step=s) for n, k, e, s in unpackers)


@pytest.fixture(scope="module")
def unpack(tmp_path_factory, new_database, analysis_cache):
    """imaging 1.0 with the two old unpackers, 1.1 with two new ones inserted before them; analyzed."""
    work = tmp_path_factory.mktemp("repeats")
    db = new_database(work)
    config = write_config(work / "kiskadee.toml", {"analysis.cache": f'path = "{analysis_cache}"'})
    for version, unpackers in (("1.0", OLD), ("1.1", NEW + OLD)):
        source = work / f"imaging-{version}" / "src" / "libImaging"
        source.mkdir(parents=True)
        (source / "Unpack.c").write_text(unpack_c(unpackers))
        result = run_kiskadee("analyze", source.parent.parent, "--db", db, "--analyzers", "flawfinder",
                              config=config)
        assert result.returncode == 0, result.stderr
    return db, work


def memcpy_lines(work, version):
    text = (work / f"imaging-{version}" / "src" / "libImaging" / "Unpack.c").read_text().splitlines()
    return [number for number, line in enumerate(text, 1) if "memcpy(_out" in line]


def findings(db, *args):
    result = run_kiskadee(*args, "--format", "json", "--db", db)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_copies_in_the_new_functions_are_new_and_the_old_ones_unchanged(unpack):
    db, work = unpack
    old_lines, new_lines = memcpy_lines(work, "1.0"), memcpy_lines(work, "1.1")
    assert len(old_lines) == 2 and len(new_lines) == 4
    data = findings(db, "diff", "imaging", "1.0", "1.1", "--all")
    assert sorted(f["line"] for f in data["new_findings"] if f["check_id"] == "buffer.memcpy") == new_lines[:2]
    assert data["fixed_findings"] == [] and data["moved_findings"] == []
    unchanged = sorted(f["line"] for f in data["unchanged_findings"] if f["check_id"] == "buffer.memcpy")
    assert unchanged == new_lines[2:]


def test_a_waiver_stays_on_its_function(unpack):
    db, work = unpack
    old = findings(db, "show", "imaging", "1.0")["findings"]
    second = memcpy_lines(work, "1.0")[1]               # the copy in unpackI32, like 10.3.0's line 799
    (waived,) = [f for f in old if f["check_id"] == "buffer.memcpy" and f["line"] == second]
    result = run_kiskadee("waive", waived["fingerprint"][:12], "--as", "false-positive", "--db", db)
    assert result.returncode == 0, result.stderr
    new = findings(db, "show", "imaging", "1.1")["findings"]
    shown = {f["line"] for f in new if f["check_id"] == "buffer.memcpy" and f["waiver"]}
    assert shown == {memcpy_lines(work, "1.1")[3]}      # still in unpackI32, the last function
