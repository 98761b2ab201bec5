"""Version schemes (kiskadee.core.versions) and the Debian C/C++ heuristic (looks_like_c)."""

import pytest

from kiskadee.core import versions
from kiskadee.sources.debian import SourcePackage, looks_like_c, relation_names

# (a, b, expected compare(a, b)) from Debian policy 5.6.12 and dpkg's own examples.
DEBIAN_PAIRS = [
    ("1.0~rc1", "1.0", -1),
    ("1:0.9", "2.0", 1),
    ("2.10-3", "2.10-6", -1),
    ("2.10-3", "2.10-3", 0),
    ("0:2.10-3", "2.10-3", 0),
    ("1.0", "1.0-1", -1),
    ("1.0~~", "1.0~", -1),
    ("1.0~", "1.0", -1),
    ("1.0", "1.0+b1", -1),
    ("1.0a", "1.0+", -1),          # letters sort before non-letters
    ("3.23+nmu1", "3.23", 1),
    ("1.9.4-2", "1.9.4-4", -1),
    ("2.9", "2.10", -1),
]

# rpmvercmp cases from rpm's test suite (tests/rpmvercmp.at).
RPM_PAIRS = [
    ("1.0", "1.0", 0),
    ("1.0a", "1.0b", -1),
    ("1.0", "1.0.1", -1),
    ("2.0.1a", "2.0.1", 1),
    ("5.5p10", "5.5p1", 1),
    ("10xyz", "10.1xyz", -1),
    ("xyz.4", "8", -1),
    ("6.0.rc1", "6.0", 1),
    ("10b2", "10a1", 1),
    ("1.0a", "1.0aa", -1),
    ("10.0001", "10.1", 0),
    ("10.0001", "10.0039", -1),
    ("4.999.9", "5.0", -1),
    ("2.0", "2_0", 0),
    ("a+", "a_", 0),
    ("1.0~rc1", "1.0", -1),
    ("1.0~rc1", "1.0~rc2", -1),
    ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0^", "1.0", 1),
    ("1.0^git1", "1.0", 1),
    ("1.0^git1", "1.0^git2", -1),
    ("1.0^git1", "1.01", -1),
    ("1.0^20160101", "1.0.1", -1),
    ("1.0^20160102", "1.0^20160101^git1", 1),
    ("1.0~rc1^git1", "1.0~rc1", 1),
    ("1.0^git1", "1.0^git1~pre", 1),
    # epoch:version-release
    ("1:0.9", "2.0", 1),
    ("2.10-3", "2.10-6", -1),
    ("1.0", "1.0-1", -1),
    ("2:1", "10:0", -1),
]

PEP440_PAIRS = [
    ("1.0rc1", "1.0", -1),
    ("1.0", "1.0.0", 0),
    ("1.0.post1", "1.0", 1),
    ("1.0.dev1", "1.0a1", -1),
    ("1!0.1", "2.0", 1),
    ("2.10", "2.9", 1),
    # not PEP 440: compared the rpm way
    ("2023-01-05", "2023-02-01", -1),
    ("1.0b-fix", "1.0b-fix", 0),
    ("1.2.3_p1", "1.2.3_p2", -1),
    ("r25", "r100", -1),
]


@pytest.mark.parametrize("a, b, expected", DEBIAN_PAIRS)
def test_debian_pairs(a, b, expected):
    assert versions.compare("debian", a, b) == expected
    assert versions.compare("debian", b, a) == -expected


@pytest.mark.parametrize("a, b, expected", RPM_PAIRS)
def test_rpm_pairs(a, b, expected):
    assert versions.compare("rpm", a, b) == expected
    assert versions.compare("rpm", b, a) == -expected


@pytest.mark.parametrize("a, b, expected", PEP440_PAIRS)
def test_pep440_pairs(a, b, expected):
    assert versions.compare("pep440", a, b) == expected
    assert versions.compare("pep440", b, a) == -expected


def test_pep440_falls_back_to_rpm_when_one_side_is_not_pep440():
    # "1.0b-fix" is not PEP 440: the pair is compared the rpm way, where the
    # longer version (with letters after the common part) is the newer.
    assert versions.compare("pep440", "1.0", "1.0b-fix") == versions.compare("rpm", "1.0", "1.0b-fix")
    assert versions.compare("pep440", "1.0", "1.0b-fix") == -1
    # PEP 440 alone would call the pre-release 1.0b older than 1.0
    assert versions.compare("pep440", "1.0", "1.0b") == 1


def test_schemes_disagree_where_they_should():
    # PEP 440 knows "rc" is a pre-release; rpm only sees letters after digits.
    assert versions.compare("pep440", "1.0rc1", "1.0") == -1
    assert versions.compare("rpm", "1.0rc1", "1.0") == 1
    # Debian and rpm order "~" alike, but only Debian sorts letters before "+".
    assert versions.compare("debian", "1.0a", "1.0+") == -1
    assert versions.compare("rpm", "1.0a", "1.0+") == 1


def test_newest_and_sort_key():
    assert versions.newest("debian", ["1.9.1-2", "1.9.4-4", "1.9.4-2"]) == "1.9.4-4"
    assert versions.newest("debian", ["2.0", "1:0.9", "1.0~rc1"]) == "1:0.9"
    assert versions.newest("pep440", ["1.0rc1", "1.0", "0.9"]) == "1.0"
    assert versions.newest("rpm", ["1.0", "1.0^git1", "1.0~rc1"]) == "1.0^git1"
    assert sorted(["1.0", "1.0~rc1", "1.0^", "0.9"], key=versions.sort_key("rpm")) == [
        "0.9", "1.0~rc1", "1.0", "1.0^"]


def test_newest_needs_a_version():
    with pytest.raises(ValueError, match="at least one"):
        versions.newest("debian", [])


@pytest.mark.parametrize("call", [
    lambda: versions.compare("semver", "1", "2"),
    lambda: versions.newest("maven", ["1"]),
    lambda: versions.sort_key(""),
])
def test_unknown_scheme_is_refused_naming_the_known_ones(call):
    with pytest.raises(ValueError, match="debian, pep440, rpm"):
        call()


def test_schemes_constant():
    assert versions.SCHEMES == ("debian", "pep440", "rpm")


# --- the C/C++ heuristic of the Debian fetcher ---------------------------------

def package(architecture="any", build_depends="debhelper-compat (= 13)", indep=""):
    return SourcePackage(name="p", version="1", architecture=architecture,
                         build_depends=build_depends, build_depends_indep=indep)


def test_relation_names_strip_versions_arches_profiles_and_qualifiers():
    field = ("debhelper-compat (= 13), cargo:native, rustc:native <!nocheck>,\n"
             " libfoo-dev [amd64 i386] | libbar-dev (>= 2~), Qt5-Qmake")
    assert relation_names(field) == {
        "debhelper-compat", "cargo", "rustc", "libfoo-dev", "libbar-dev", "qt5-qmake"}
    assert relation_names("") == frozenset()


@pytest.mark.parametrize("architecture, build_depends, expected", [
    # plain C with debhelper and make, like hello
    ("any", "debhelper-compat (= 13), help2man, texinfo", True),
    ("any all", "debhelper-compat (= 13), cmake", True),
    ("amd64 i386", "debhelper-compat (= 13)", True),
    # Architecture: all builds nothing compiled
    ("all", "debhelper-compat (= 13), libssl-dev", False),
    ("", "debhelper-compat (= 13)", False),
    # helpers of other languages decide
    ("any", "debhelper-compat (= 13), dh-golang, golang-any, golang-github-foo-dev", False),
    ("any", "debhelper (>= 12), dh-cargo (>= 25), cargo:native, rustc:native, libssl-dev", False),
    ("any", "debhelper (>= 10), haskell-devscripts (>= 0.13), ghc", False),
    ("any", "debhelper-compat (= 13), maven-debian-helper, default-jdk", False),
    ("any", "debhelper-compat (= 13), fp-compiler", False),
    ("any", "debhelper-compat (= 13), gnat, dh-ada-library", False),
    # compilers of other languages alone: not C
    ("any", "debhelper, golang-go, jq, rsync", False),
    ("any", "debhelper-compat (= 13), ocaml-nox, libfindlib-ocaml-dev", False),
    ("any", "debhelper-compat (= 13), cargo, librust-pyo3-dev, librust-asn1-dev, libssl-dev", False),
    ("any", "debhelper-compat (= 13), nodejs, node-foo", False),
    # ... with a C/C++ build system or mostly C libraries: C/C++ with parts in another language
    ("any", "debhelper-compat (= 13), cargo, rustc, autoconf2.13, libgtk-3-dev", True),
    ("any", "debhelper-compat (= 13), default-jdk, javahelper, g++, libboost-dev", True),
    ("any", "debhelper-compat (= 13), default-jdk, libapr1-dev, libssl-dev", True),
    ("any", "debhelper-compat (= 13), dh-elpa, emacs-nox, libgmime-3.0-dev, libxapian-dev", True),
    ("any", "debhelper-compat (= 13), dh-ocaml, ocaml-nox, cmake, libffi-dev", True),
    ("any", "debhelper-compat (= 13), dh-sequence-nodejs, node-gyp, libsqlite3-dev, libssl-dev", True),
])
def test_looks_like_c(architecture, build_depends, expected):
    assert looks_like_c(package(architecture, build_depends)) is expected


def test_build_depends_indep_does_not_count():
    # gzip builds its win32 binary (Architecture: all) with mingw; a Java binding
    # jar or an Emacs mode in Build-Depends-Indep says nothing about the C part.
    assert looks_like_c(package("any all", "debhelper (>= 11), texinfo",
                                indep="dh-elpa, maven-debian-helper, default-jdk")) is True
