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


def test_unknown_severity_is_refused():
    with pytest.raises(ValueError, match="severity"):
        Finding(path="a.c", line=1, check_id="x", severity="critical", message="m")
