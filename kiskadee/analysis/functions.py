"""Which function a finding is in, from the source itself, for analyzers that do not say.

Each C or C++ file of a tree is parsed once with tree-sitter's grammars and
reduced to the line spans of its function definitions; a line maps to the
innermost definition that encloses it. A method gets its class's name
(``Class::method``): the qualified name an out-of-class definition is written
with, or the enclosing classes of one defined in its class. A lambda is part
of the function it is written in. Files that are not C or C++, lie outside
the tree, are too big or cannot be read leave ``function`` empty. tree-sitter
recovers from what it cannot parse (unexpanded macros such as lz4's ``64 KB``
can make the whole file one error node): the definitions it still recognizes
inside errors count, and only a line whose definition it lost has none.
"""

import bisect
import logging
import os
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional

import tree_sitter
import tree_sitter_c
import tree_sitter_cpp

from kiskadee.core.findings import Finding

log = logging.getLogger(__name__)

MAX_BYTES = 16 * 1024 * 1024        # an amalgamation (sqlite3.c: 9 MB) parses in about a second
C_SUFFIXES = {".c", ".h"}
CPP_SUFFIXES = {".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++", ".ipp", ".tpp", ".txx"}
# Declarators wrapped around the name of a function being defined.
WRAPPERS = {"function_declarator", "pointer_declarator", "reference_declarator", "parenthesized_declarator",
            "attributed_declarator"}
CLASSES = {"class_specifier", "struct_specifier", "union_specifier"}


class Definition(NamedTuple):
    first: int      # 1-based lines
    last: int
    name: str


class _Grammars:
    """The C and C++ parsers, made on first use."""

    def __init__(self) -> None:
        self.c = tree_sitter.Parser(tree_sitter.Language(tree_sitter_c.language()))
        self.cpp = tree_sitter.Parser(tree_sitter.Language(tree_sitter_cpp.language()))

    def parse(self, suffix: str, source: bytes) -> Optional[tree_sitter.Tree]:
        if suffix in CPP_SUFFIXES or suffix == ".C":
            return self.cpp.parse(source)
        tree = self.c.parse(source)
        if suffix == ".h" and tree.root_node.has_error:
            # A '.h' header is as often C++: take the C++ reading when only it parses cleanly.
            cpp = self.cpp.parse(source)
            return tree if cpp.root_node.has_error else cpp
        return tree


class FunctionIndex:
    """The function definitions of one tree's C and C++ files, each file parsed once, on demand."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self._files: Dict[str, List[Definition]] = {}
        self._grammars: Optional[_Grammars] = None

    def function_at(self, path: str, line: int) -> str:
        """The name of the innermost function defined around ``line`` of ``path``, or ''."""
        if path not in self._files:
            self._files[path] = self._definitions(path)
        definitions = self._files[path]
        # Definitions nest, sorted by first line: the last one starting at or before the line
        # that also ends at or after it is the innermost.
        position = bisect.bisect_right(definitions, (line, float("inf")))
        for definition in reversed(definitions[:position]):
            if definition.last >= line:
                return definition.name
        return ""

    def fill(self, findings: Iterable[Finding]) -> None:
        """Set ``function`` of each finding whose analyzer left it empty."""
        for finding in findings:
            if not finding.function and finding.path and finding.line > 0:
                finding.function = self.function_at(finding.path, finding.line)

    def _definitions(self, path: str) -> List[Definition]:
        suffix = os.path.splitext(path)[1]
        if suffix.lower() not in C_SUFFIXES | CPP_SUFFIXES:
            return []
        source = self._read(path)
        if source is None:
            return []
        if self._grammars is None:
            self._grammars = _Grammars()
        tree = self._grammars.parse(suffix if suffix == ".C" else suffix.lower(), source)
        return sorted(definitions(tree.root_node)) if tree is not None else []

    def _read(self, path: str) -> Optional[bytes]:
        """The file's bytes when it is a regular file inside the tree and not too big."""
        if os.path.isabs(path):
            return None             # a system header, or a path the tool made up
        file = (self.root / path).resolve()
        try:
            if not file.is_relative_to(self.root) or not file.is_file() or file.stat().st_size > MAX_BYTES:
                return None
            return file.read_bytes()
        except OSError as exc:
            log.warning("cannot read %s for its functions: %s", path, exc)
            return None


def definitions(root: tree_sitter.Node) -> List[Definition]:
    """Every named function definition below ``root``, inside parse errors too."""
    found = []
    pending = [root]
    while pending:
        node = pending.pop()
        if node.type == "function_definition":
            name = definition_name(node)
            if name:
                found.append(Definition(node.start_point[0] + 1, node.end_point[0] + 1, name))
        pending.extend(node.children)
    return found


def definition_name(node: tree_sitter.Node) -> str:
    """The name a function definition defines, qualified by the classes it is defined in."""
    declarator = node.child_by_field_name("declarator")
    while declarator is not None and declarator.type in WRAPPERS:
        inner = declarator.child_by_field_name("declarator")
        if inner is None and declarator.named_children:     # parenthesized and attributed: no field name
            inner = declarator.named_children[0]
        declarator = inner
    if declarator is None or declarator.text is None:
        return ""
    name = " ".join(declarator.text.decode(errors="replace").split())
    if declarator.type in ("identifier", "field_identifier", "destructor_name", "operator_name",
                           "template_function", "operator_cast", "qualified_identifier"):
        name = name.replace(" :: ", "::").replace(":: ", "::")
        if name.endswith(")") and not name.endswith("operator()"):
            name = name[:name.rfind("(")].rstrip()      # a conversion operator's empty parameter list
        return _qualified(node, name)
    return ""


def _qualified(node: tree_sitter.Node, name: str) -> str:
    """``name`` prefixed with the classes whose body holds the definition (not its namespaces)."""
    parent = node.parent
    while parent is not None:
        if parent.type in CLASSES:
            class_name = parent.child_by_field_name("name")
            if class_name is not None and class_name.text:
                name = f"{class_name.text.decode(errors='replace')}::{name}"
        elif parent.type == "function_definition":
            break           # a class local to a function: its methods are named by the class alone
        parent = parent.parent
    return name
