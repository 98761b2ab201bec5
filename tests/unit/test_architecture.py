"""The tree is the architecture: no import cycles, and each layer imports only those below it.

Every ``import`` counts, at module level or inside a function: a deferred
import hides a cycle from Python, not from the reader.
"""

import ast
from pathlib import Path
from typing import Dict, List, Set

import kiskadee

PACKAGE = Path(kiskadee.__file__).parent

# Layers, lowest first. Modules at the top of the package that are not listed
# (config, errors, logs) are the foundation every layer may use; the driver runs
# inside the sandbox on its own and imports nothing of kiskadee.
LAYERS = ["core", "sources", "analysis", "store", "results", "service", "anitya", "cli"]
FOUNDATION = {"kiskadee", "kiskadee.config", "kiskadee.errors", "kiskadee.logs"}


def module_name(path: Path) -> str:
    parts = ["kiskadee", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> Dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported(name: str, path: Path, modules: Dict[str, Path]) -> Set[str]:
    """The kiskadee modules ``name`` imports, resolved to modules (not the names inside them)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    return {module for module in found if module in modules and module != name}


def import_graph() -> Dict[str, Set[str]]:
    modules = all_modules()
    return {name: imported(name, path, modules) for name, path in modules.items()}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> int:
    if module in FOUNDATION:
        return -1
    top = module.split(".")[1]
    return LAYERS.index("cli") if top == "__main__" else LAYERS.index(top)


def test_the_import_graph_has_no_cycles():
    assert cycles(import_graph()) == []


def test_every_module_belongs_to_a_layer():
    unplaced = [m for m in all_modules() if m not in FOUNDATION and m.split(".")[1] not in LAYERS + ["__main__"]]
    assert unplaced == []


def test_no_module_imports_from_a_layer_above_its_own():
    upward = sorted(f"{source} -> {target}" for source, targets in import_graph().items() for target in targets
                    if layer_of(target) > layer_of(source))
    assert upward == []


def test_core_imports_nothing_of_kiskadee_but_core_and_errors():
    outside = sorted(f"{source} -> {target}" for source, targets in import_graph().items()
                     if source.startswith("kiskadee.core") for target in targets
                     if not target.startswith("kiskadee.core") and target != "kiskadee.errors")
    assert outside == []


def test_the_sandbox_driver_imports_nothing_of_kiskadee_outside_itself():
    driver = "kiskadee.analysis.driver"
    outside = sorted(f"{source} -> {target}" for source, targets in import_graph().items()
                     if source.startswith(driver) for target in targets if not target.startswith(driver))
    assert outside == []


def test_the_graph_sees_a_deferred_import():
    """The walk counts imports inside functions too, so it can fail."""
    graph = import_graph()
    assert "kiskadee.analysis.analyzers.clang" in graph["kiskadee.analysis.analyzers"]
