"""The code's shape, checked from its source: every import points down the floors, no import
circle, no private name reached across modules, short parameter lists, one home per public class
name, small folders."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The floors, from the bottom up: a module imports from its own package and those before it.
PACKAGES = ("implementations", "conformance", "benchmarks", "reports", "convcert")
#: Most parameters of a function (self/cls not counted); GPU kernels are exempt.
MAX_PARAMETERS = 8
#: Most modules directly in one folder: conformance's folders, and any other.
MAX_MODULES = {"conformance": 12, None: 15}


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(target module, imported name or None, line) of every import, function-local ones included."""
    out: list[tuple[str, str | None, int]] = []
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = _package_of(module).split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub, None, node.lineno) if sub in MODULES else (base, alias.name, node.lineno))
    return [(target, name, line) for target, name, line in out if target in MODULES]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for target, _, _ in _imports(module):
            if target != module:
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(graph) | {w for targets in graph.values() for w in targets}):
        if v not in index:
            visit(v)
    return found


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a package above the importer's own, as ``importer -> imported``."""
    floor = {package: n for n, package in enumerate(PACKAGES)}
    return sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                  if floor[target.split(".")[0]] > floor[module.split(".")[0]])


def test_every_import_points_down_the_floors():
    assert _upward(_graph()) == []


def test_an_upward_import_is_found_when_there_is_one():
    graph = {"conformance.cli": {"implementations.files", "benchmarks.harness"},
             "reports.render": {"benchmarks.records", "conformance.verdicts"}, "convcert.cli": {"reports"}}
    assert _upward(graph) == ["conformance.cli -> benchmarks.harness"]


def test_no_import_circle_in_the_packages():
    assert _cycles(_graph()) == []


def test_an_import_circle_is_found_when_there_is_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_private_name_is_imported_or_reached_from_another_module():
    offences = []
    for module, tree in TREES.items():
        aliases = {}
        for target, name, line in _imports(module):
            if name is not None and name.startswith("_") and not name.startswith("__") and target != module:
                offences.append(f"{module}:{line} imports {target}.{name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                for alias in node.names:
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                origin = aliases.get(node.value.id, "")
                if any(origin == m or origin.endswith("." + m.rpartition(".")[2]) for m in MODULES
                       if m != module and m.rpartition(".")[2] == origin.rpartition(".")[2]):
                    offences.append(f"{module}:{node.lineno} reaches {node.value.id}.{node.attr}")
    assert offences == []


def _is_gpu_kernel(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A Triton kernel: jitted where it is defined, or taking ``tl.constexpr`` parameters."""
    annotations = [ast.unparse(a.annotation) for a in node.args.args if a.annotation is not None]
    return (any("jit" in ast.unparse(d) for d in node.decorator_list)
            or any("constexpr" in a for a in annotations))


def test_no_function_outside_gpu_kernels_takes_more_than_eight_parameters():
    long = []
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not _is_gpu_kernel(node):
                a = node.args
                names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
                count = len(names) - (names[:1] in (["self"], ["cls"]))
                if count > MAX_PARAMETERS:
                    long.append(f"{module}.{node.name}: {count}")
    assert long == []


def test_no_public_class_name_is_defined_in_two_packages():
    homes: dict[str, set[str]] = defaultdict(set)
    for module, tree in TREES.items():
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                homes[node.name].add(module.split(".")[0])
    assert {name: sorted(p) for name, p in homes.items() if len(p) > 1} == {}


def test_no_folder_holds_too_many_modules():
    counts: dict[Path, int] = defaultdict(int)
    for path in MODULES.values():
        if path.name != "__init__.py":
            counts[path.parent] += 1
    crowded = {}
    for folder, n in counts.items():
        top = folder.relative_to(ROOT).parts[0]
        if n > MAX_MODULES.get(top, MAX_MODULES[None]):
            crowded[str(folder.relative_to(ROOT))] = n
    assert crowded == {}


def test_every_conformance_subpackage_opens_with_its_purpose():
    for path in (ROOT / "conformance").glob("*/__init__.py"):
        doc = ast.get_docstring(TREES[".".join(path.parent.relative_to(ROOT).parts)])
        assert doc and doc.strip(), f"{path} has no one-line purpose"
