"""The package's shape, checked from its source (nothing is imported): layers follow the data's path, no
import circle, small folders, one registration place per kind.

Run alone: ``.venv/bin/python -m pytest tests/test_architecture.py -q``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "weakloc"

# Lower layers never import higher ones (the data's path: sources -> masks -> generators -> dataset ->
# methods -> predictions -> metrics -> report). One layer per top-level module or folder of weakloc.
LAYERS = [
    {"errors", "config", "files", "device"},  # base: used everywhere
    {"data"},  # reading images, masks, layouts; never generating
    {"generate"},  # masks, generators, the writer, the built-in benchmark
    {"methods"},  # the localizers
    {"train"},  # the training loop and checkpoints
    {"predict"},  # running a trained localizer, saved predictions, rendering
    {"evaluate"},  # metrics and scoring
    {"experiment"},  # declarative experiments and their reports
    {"serve"},  # the web page
    {"cli"},  # the command line
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
MAX_TOP_LEVEL_MODULES = 6
MAX_MODULES_PER_FOLDER = 8
DUNDER = {"__init__", "__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, name: str) -> list[tuple[str, bool]]:
    """(imported weakloc module, at module level?) for every import statement of a file (module level: run
    on import, including under ``if TYPE_CHECKING``; else inside a function)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = {id(child) for stmt in tree.body if not isinstance(stmt, (ast.FunctionDef, ast.ClassDef))
                 for child in ast.walk(stmt)}
    found = []  # imports under "if TYPE_CHECKING:" count too: a circle of types is still a circle of layers
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                root = ".".join(base + ([node.module] if node.module else []))
            else:
                root = node.module or ""
            # "from . import x" may import a submodule x: count it when it is one
            targets = [f"{root}.{a.name}" if f"{root}.{a.name}" in modules() else root for a in node.names]
        else:
            continue
        for target in targets:
            if target.startswith("weakloc"):
                found.append((target, id(node) in top_level))
    return found


def layer_of(name: str) -> int | None:
    parts = name.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None  # None: the package root (the API facade)


def graph(module_level_only: bool) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    known = modules()
    for name, path in known.items():
        for target, at_top in imports(path, name):
            if at_top or not module_level_only:
                while target not in known and "." in target:  # "from weakloc.x import y" with y a name
                    target = target.rpartition(".")[0]
                if target != name:
                    edges[name].add(target)
    return edges


def test_every_top_level_module_and_folder_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
            if (p.suffix == ".py" and p.stem not in DUNDER) or (p.is_dir() and (p / "__init__.py").exists())}
    assert tops <= set(RANK), f"give these a layer in LAYERS: {sorted(tops - set(RANK))}"


def test_no_module_imports_a_layer_above_it():
    upward = []
    for name, targets in graph(module_level_only=False).items():
        mine = layer_of(name)
        for target in targets:
            theirs = layer_of(target)
            if mine is None:  # the package root: module-level imports must be base only (load() is lazy)
                continue
            if theirs is not None and theirs > mine:
                upward.append(f"{name} -> {target}")
    assert not upward, "imports of a higher layer:\n" + "\n".join(sorted(upward))


def test_root_imports_only_the_base_at_import_time():
    root = graph(module_level_only=True).get("weakloc", set())
    assert all(layer_of(t) == 0 for t in root), root


def test_no_import_circle():
    edges = graph(module_level_only=True)
    # a package's __init__ importing its own submodules (registries) is not a circle through the package
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                if not node.startswith(nxt + "."):  # a submodule importing its own package's __init__
                    cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif state.get(nxt) is None:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for start in sorted(modules()):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_a_planted_upward_import(tmp_path, monkeypatch):
    """The rules above would fail on a data module importing the methods (so they cannot pass vacuously)."""
    fake = tmp_path / "weakloc"
    for rel in ("__init__.py", "data/__init__.py", "methods/__init__.py", "methods/base.py"):
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_text("")
    (fake / "data" / "load.py").write_text("from ..methods.base import thing\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    with pytest.raises(AssertionError, match="weakloc.data.load -> weakloc.methods.base"):
        test_no_module_imports_a_layer_above_it()


def test_folders_stay_small():
    loose = [p.stem for p in PACKAGE.glob("*.py") if p.stem not in DUNDER]
    assert len(loose) <= MAX_TOP_LEVEL_MODULES, loose
    for folder in [p for p in PACKAGE.rglob("*") if p.is_dir() and (p / "__init__.py").exists()]:
        flat = [p.stem for p in folder.glob("*.py") if p.stem not in DUNDER]
        assert len(flat) <= MAX_MODULES_PER_FOLDER, (folder, flat)


def test_nothing_in_the_package_is_only_for_tests():
    names = {p.stem for p in PACKAGE.rglob("*.py")}
    assert not names & {"testing", "fixtures", "conftest"}, names
