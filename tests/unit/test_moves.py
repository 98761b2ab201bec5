"""The second pass of a release diff: findings paired across files and within one."""

from kiskadee.core.moves import Located, pair

_ids = iter(range(1, 10_000))


def at(path, line, check="buffer.memcpy", message="Does not check for buffer overflows (CWE-120)",
       analyzer="flawfinder", function="", fingerprint=""):
    return Located(next(_ids), analyzer, path, line, check, message, function, fingerprint)


def where(pairs):
    return [(o.path, o.line, n.path, n.line) for o, n in pairs]


def test_a_file_renamed_with_a_language_change_pairs_its_findings_in_order():
    old = [at("src/lib.cpp", 10), at("src/lib.cpp", 30, check="buffer.strcpy"), at("src/lib.cpp", 50)]
    new = [at("src/lib.c", 52), at("src/lib.c", 12), at("src/lib.c", 33, check="buffer.strcpy")]
    assert where(pair(old, new)) == [("src/lib.cpp", 10, "src/lib.c", 12), ("src/lib.cpp", 30, "src/lib.c", 33),
                                     ("src/lib.cpp", 50, "src/lib.c", 52)]


def test_a_lone_alike_finding_in_an_unrelated_file_is_not_a_move():
    """Without the line text, one memcpy gone from a.c and one come to b.c may well be a fix and a new bug."""
    assert pair([at("src/a.c", 10)], [at("src/b.c", 10)]) == []


def test_a_block_of_findings_moved_into_another_file_is_a_move():
    old = [at("src/a.c", 10), at("src/a.c", 20, check="buffer.strcpy"), at("src/a.c", 90, check="format.printf")]
    new = [at("src/util.c", 200), at("src/util.c", 210, check="buffer.strcpy"), at("src/b.c", 5, check="format.printf")]
    assert where(pair(old, new)) == [("src/a.c", 10, "src/util.c", 200), ("src/a.c", 20, "src/util.c", 210)]


def test_numbers_in_messages_do_not_matter_but_the_check_and_function_do():
    old = [at("x/Foo.cc", 3, check="arrayIndexOutOfBounds", message="Array 'a[10]' index 10", analyzer="cppcheck",
              function="f")]
    new = [at("y/foo.c", 3, check="arrayIndexOutOfBounds", message="Array 'a[12]' index 12", analyzer="cppcheck",
              function="f"),
           at("y/foo.c", 9, check="arrayIndexOutOfBounds", message="Array 'a[12]' index 12", analyzer="cppcheck",
              function="g")]
    assert where(pair(old, new)) == [("x/Foo.cc", 3, "y/foo.c", 3)]
    assert pair(old, [at("y/foo.c", 3, check="uninitvar", analyzer="cppcheck", function="f")]) == []


def test_the_same_function_named_by_the_tool_pairs_across_unrelated_files():
    old = [at("src/a.c", 10, analyzer="cppcheck", check="nullPointer", message="Null pointer", function="parse")]
    new = [at("src/b.c", 40, analyzer="cppcheck", check="nullPointer", message="Null pointer", function="parse"),
           at("src/c.c", 40, analyzer="cppcheck", check="nullPointer", message="Null pointer", function="other")]
    assert where(pair(old, new)) == [("src/a.c", 10, "src/b.c", 40)]


def test_repeated_findings_on_the_same_line_text_pair_within_their_file():
    """Fingerprints sharing the base part: the same line text, the code around it changed."""
    old = [at("a.c", 10, fingerprint="a" * 16 + "1" * 16), at("a.c", 90, fingerprint="b" * 16 + "1" * 16)]
    new = [at("a.c", 15, fingerprint="c" * 16 + "1" * 16), at("a.c", 99, fingerprint="2" * 32),
           at("a.c", 95, fingerprint="d" * 16 + "1" * 15 + "x")]        # not a digest: never alike
    assert where(pair(old, new)) == [("a.c", 10, "a.c", 15)]


def test_a_lone_finding_that_got_a_copy_pairs_with_one_of_the_copies():
    """Alone, its fingerprint is the base; repeated, each copy's ends with the base's first half."""
    old = [at("a.c", 10, fingerprint="1" * 16 + "9" * 16)]
    new = [at("a.c", 3, fingerprint="c" * 16 + "1" * 16), at("a.c", 12, fingerprint="d" * 16 + "1" * 16)]
    assert where(pair(old, new)) == [("a.c", 10, "a.c", 12)]       # the nearest: the other was added


def test_pairs_do_not_depend_on_the_order_given():
    old = [at("a/one.c", n) for n in (1, 2, 3)] + [at("a/two.c", n) for n in (1, 2)]
    new = [at("b/one.c", n) for n in (5, 6)] + [at("b/two.c", n) for n in (7, 8, 9)]
    assert where(pair(old, new)) == where(pair(list(reversed(old)), list(reversed(new))))
    # same stems first; then the one left of one.c has enough alike findings in two.c to go with them
    assert where(pair(old, new)) == [("a/one.c", 1, "b/one.c", 5), ("a/one.c", 2, "b/one.c", 6),
                                     ("a/two.c", 1, "b/two.c", 7), ("a/two.c", 2, "b/two.c", 8),
                                     ("a/one.c", 3, "b/two.c", 9)]


def test_files_of_the_same_stem_both_still_there_are_not_a_rename():
    old = [at("src/a/util.c", 10), at("src/b/util.c", 30, check="buffer.strcpy")]
    new = [at("src/b/util.c", 12), at("src/a/util.c", 31, check="buffer.strcpy")]
    assert pair(old, new) == []


def test_single_findings_of_several_renamed_files_each_go_to_their_own_file():
    old = [at("examples/printVersion.c", 10, check="format.printf"), at("programs/datagen.c", 187)]
    new = [at("examples/print_version.c", 10, check="format.printf"), at("tests/datagen.c", 186)]
    assert where(pair(old, new)) == [("examples/printVersion.c", 10, "examples/print_version.c", 10),
                                     ("programs/datagen.c", 187, "tests/datagen.c", 186)]
