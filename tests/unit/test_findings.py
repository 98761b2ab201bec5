from pathlib import Path

import pytest

from kiskadee.core.findings import Finding, assign_fingerprints


def tree(root: Path, top: str, text: str) -> Path:
    (root / top / "src").mkdir(parents=True)
    (root / top / "src" / "a.c").write_text(text)
    return root / top


def finding(line, message="Null pointer dereference", check="nullPointer"):
    return Finding(path="src/a.c", line=line, check_id=check, severity="high", message=message)


def test_fingerprint_survives_moved_lines_and_renamed_top_directory(tmp_path):
    old = tree(tmp_path, "pkg-1.0", "int f(void) {\n  char *p = 0;\n  return *p;\n}\n")
    new = tree(tmp_path, "pkg-1.1", "/* new header */\n\nint f(void) {\n  char *p = 0;\n  return   *p;\n}\n")
    before, after = finding(3), finding(5)
    assign_fingerprints("cppcheck", [before], old)
    assign_fingerprints("cppcheck", [after], new)
    assert before.fingerprint == after.fingerprint
    assert len(before.fingerprint) == 32


def test_numbers_in_messages_do_not_change_the_fingerprint(tmp_path):
    root = tree(tmp_path, "p", "x\n")
    a, b = finding(1, "Array index 10 out of bounds"), finding(1, "Array index 12 out of bounds")
    assign_fingerprints("cppcheck", [a], root)
    assign_fingerprints("cppcheck", [b], root)
    assert a.fingerprint == b.fingerprint


def test_a_changed_source_line_or_check_changes_the_fingerprint(tmp_path):
    one = tree(tmp_path, "one", "return *p;\n")
    two = tree(tmp_path, "two", "return *q;\n")
    a, b, c = finding(1), finding(1), finding(1, check="uninitvar")
    assign_fingerprints("cppcheck", [a], one)
    assign_fingerprints("cppcheck", [b], two)
    assign_fingerprints("cppcheck", [c], one)
    assert len({a.fingerprint, b.fingerprint, c.fingerprint}) == 3


def test_identical_findings_in_one_file_get_distinct_stable_fingerprints(tmp_path):
    root = tree(tmp_path, "p", "strcpy(a, b);\nstrcpy(a, b);\n")
    first = [finding(1, "copy", "buffer.strcpy"), finding(2, "copy", "buffer.strcpy")]
    again = [finding(2, "copy", "buffer.strcpy"), finding(1, "copy", "buffer.strcpy")]
    assign_fingerprints("flawfinder", first, root)
    assign_fingerprints("flawfinder", again, root)
    assert first[0].fingerprint != first[1].fingerprint
    assert {f.fingerprint for f in first} == {f.fingerprint for f in again}


def test_a_lone_finding_keeps_the_fingerprint_existing_databases_hold(tmp_path):
    """The value kiskadee computed before repeated findings were told apart by context."""
    root = tree(tmp_path, "p", "int f(void) {\n  char *p = 0;\n  return *p;\n}\n")
    lone = finding(3, "Null pointer dereference: p at 3")
    assign_fingerprints("cppcheck", [lone], root)
    assert lone.fingerprint == "e19bc3717acb24385196858c68922c7d"


ONE_USE = """static void unpack_a(char *out, const char *in) {
    int iv = in[0];
    memcpy(out, &iv, sizeof(iv));
}
"""
NEW_USE = """static void unpack_new(char *out, const char *in) {
    int iv = in[1] << 8;
    memcpy(out, &iv, sizeof(iv));
}
"""


def memcpys(text):
    numbers = [n for n, line in enumerate(text.splitlines(), 1) if "memcpy" in line]
    return [Finding(path="src/a.c", line=n, check_id="buffer.memcpy", severity="medium", message="copy")
            for n in numbers]


def test_identical_findings_are_told_apart_by_context_not_order(tmp_path):
    """A new function with the same flagged line, inserted before the old one: the old one keeps its fingerprint."""
    old_text = ONE_USE + "\n" + ONE_USE.replace("unpack_a", "unpack_b").replace("in[0]", "in[2]")
    new_text = NEW_USE + "\n" + old_text
    old, new = memcpys(old_text), memcpys(new_text)
    assign_fingerprints("flawfinder", old, tree(tmp_path, "p-1", old_text))
    assign_fingerprints("flawfinder", new, tree(tmp_path, "p-2", new_text))
    assert [f.line for f in new] == [3, 8, 13]
    assert [f.fingerprint for f in new[1:]] == [f.fingerprint for f in old]
    assert new[0].fingerprint not in {f.fingerprint for f in old}


def test_findings_identical_in_context_too_fall_back_to_order(tmp_path):
    text = ONE_USE + "\n" + ONE_USE
    found = memcpys(text)
    assign_fingerprints("flawfinder", found, tree(tmp_path, "p", text))
    assert len({f.fingerprint for f in found}) == 2


def test_the_function_name_tells_identical_findings_apart(tmp_path):
    text = "x();\nx();\nfree(p);\nx();\nx();\nx();\nx();\nfree(p);\nx();\nx();\n"     # the same neighbours
    found = [Finding(path="src/a.c", line=n, check_id="doubleFree", severity="high", message="m", function=name)
             for n, name in ((3, "f"), (8, "g"))]
    swapped = [Finding(path="src/a.c", line=n, check_id="doubleFree", severity="high", message="m", function=name)
               for n, name in ((3, "g"), (8, "f"))]
    assign_fingerprints("cppcheck", found, tree(tmp_path, "p", text))
    assign_fingerprints("cppcheck", swapped, tree(tmp_path, "q", text))
    assert (found[0].fingerprint, found[1].fingerprint) == (swapped[1].fingerprint, swapped[0].fingerprint)


def test_unknown_severity_is_refused():
    with pytest.raises(ValueError, match="severity"):
        Finding(path="a.c", line=1, check_id="x", severity="critical", message="m")
