"""Which Debian source packages are mainly C or C++: the Debian fetcher's ``c_only`` filter.

``Sources`` has no language field; the build dependencies tell (see
``looks_like_c``). Apart from ``debian`` (the index, the network, the
fetcher's state), since these lists change with what the archive teaches.
"""

from typing import FrozenSet

# Debhelper add-ons that only packages written in another language use.
NON_C_HELPERS = frozenset((
    "dh-golang", "dh-sequence-golang", "dh-cargo", "dh-sequence-cargo",
    "haskell-devscripts", "haskell-devscripts-minimal", "dh-haskell",
    "maven-debian-helper", "gradle-debian-helper", "fp-compiler", "fpc",
    "gnat", "dh-ada-library", "dh-dlang", "ldc",
))
# Compilers and helpers of other languages that C/C++ packages use too, for
# bindings, add-ons or parts (firefox-esr needs rustc, libreoffice javahelper,
# notmuch dh-elpa, llvm dh-ocaml, node-sqlite3 dh-sequence-nodejs).
NON_C_TOOLS = frozenset((
    "golang-go", "golang-any", "cargo", "rustc", "ghc", "default-jdk", "default-jdk-headless",
    "javahelper", "dh-sequence-javahelper", "nodejs", "pkg-js-tools", "dh-nodejs",
    "dh-sequence-nodejs", "dh-elpa", "dh-sequence-elpa", "ocaml", "ocaml-nox", "dh-ocaml", "gdc",
))
C_BUILD_SYSTEMS = frozenset((
    "gcc", "g++", "clang", "cmake", "meson", "ninja-build", "autoconf", "autoconf2.69",
    "autoconf2.13", "automake", "dh-autoreconf", "libtool", "pkg-config", "pkgconf", "scons",
    "qt5-qmake", "qmake6", "qtbase5-dev", "qt6-base-dev",
))
# Library packages of other languages' ecosystems ("golang-x-dev", "librust-x-dev"...).
FOREIGN_LIBRARY_PREFIXES = ("golang-", "librust-", "libghc-", "node-")


def _c_evidence(names: FrozenSet[str]) -> bool:
    """Whether build dependencies show C/C++ code: a C/C++ build system, or
    at least as many C ``-dev`` libraries as libraries of other ecosystems."""
    if names & C_BUILD_SYSTEMS:
        return True
    foreign = sum(1 for n in names if n.startswith(FOREIGN_LIBRARY_PREFIXES) or "-ocaml-" in n)
    c_libraries = sum(1 for n in names if n.endswith("-dev") and not n.startswith(
        FOREIGN_LIBRARY_PREFIXES) and "-ocaml-" not in n)
    return c_libraries > 0 and c_libraries >= foreign


def looks_like_c(package) -> bool:
    """Guess whether a source package (a ``debian.SourcePackage``) is mainly C or C++.

    The heuristic, in order:

    1. a package whose only architecture is ``all`` compiles nothing: no;
    2. a build dependency on a helper used only by another language
       (``NON_C_HELPERS``: dh-golang, dh-cargo, haskell-devscripts,
       maven-debian-helper, fp-compiler, gnat...): no;
    3. a build dependency on a compiler or helper of another language that C
       and C++ packages use too (``NON_C_TOOLS``: golang-go, cargo, rustc,
       ghc, default-jdk, javahelper, nodejs, dh-elpa, dh-ocaml...): yes only
       with evidence of C/C++: a C/C++ build system (``C_BUILD_SYSTEMS``:
       cmake, meson, autoconf, libtool, pkg-config, g++...), or at least as
       many C ``-dev`` libraries as libraries of other ecosystems (golang-*,
       librust-*, libghc-*, node-*, *-ocaml-*);
    4. otherwise yes: debhelper alone builds C with make, as ``hello`` does.

    Only Build-Depends and Build-Depends-Arch count: Build-Depends-Indep
    serves the ``Architecture: all`` binaries (documentation, Emacs modes,
    Java jars), which say nothing about the compiled part.
    """
    if package.architecture.split() in ([], ["all"]):
        return False
    names = package.build_dependency_names
    if names & NON_C_HELPERS:
        return False
    if names & NON_C_TOOLS:
        return _c_evidence(names)
    return True
