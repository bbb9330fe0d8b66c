"""The package's layering holds: each module imports only modules of its own
layer or of layers below it, there is no import cycle, TensorFlow is imported
in one place only (graphfix/core/tfimport.py), and nothing else imports
lazily inside a function.

The import graph is read from the source with ``ast`` (every ``import`` and
``from … import``, wherever it sits), so a cycle hidden by a function-local
import is caught too.
"""
from __future__ import annotations

import ast
import os

import networkx as nx
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Lowest first.  A module may import its own layer and the ones before it.
LAYERS = ("graphfix.core", "graphfix.analysis", "graphfix.patch", "graphfix.engine", "rewrites",
          "graphfix.render", "graphfix.api", "graphfix.verification", "graphfix", "graphfix.cli")
LAZY_TENSORFLOW = "graphfix.core.tfimport"


def _layer(module: str) -> int:
    if module == "cli":
        return LAYERS.index("graphfix.cli")
    best = None
    for i, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(LAYERS[best]):
                best = i
    assert best is not None, f"{module} is in no layer"
    return best


def _modules() -> dict[str, str]:
    mods = {"cli": os.path.join(ROOT, "cli.py")}
    for base in ("graphfix", "rewrites"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, base)):
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(dirpath, f)
                    name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    mods[name[: -len(".__init__")] if name.endswith(".__init__") else name] = path
    return mods


def _imports(module: str, path: str, known: set[str]):
    """(imported module, line, inside a function or class?) for every import in ``path``."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    nested = set()
    for scope in ast.walk(tree):
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            nested.update(id(n) for n in ast.walk(scope) if n is not scope)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from pkg import mod`` imports the submodule; ``from mod import name`` the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            yield t, node.lineno, id(node) in nested


@pytest.fixture(scope="module")
def imports():
    mods = _modules()
    known = set(mods)
    return mods, {m: list(_imports(m, p, known)) for m, p in mods.items()}


def test_every_module_has_a_layer(imports):
    mods, _ = imports
    for m in mods:
        _layer(m)


def test_imports_go_down_the_layers(imports):
    mods, edges = imports
    bad = []
    for m, targets in edges.items():
        for t, line, _ in targets:
            if t in mods and t != m and _layer(t) > _layer(m):
                bad.append(f"{os.path.relpath(mods[m], ROOT)}:{line}: {m} ({LAYERS[_layer(m)]}) imports "
                           f"{t} ({LAYERS[_layer(t)]})")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_no_import_cycle(imports):
    mods, edges = imports
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for m, targets in edges.items():
        g.add_edges_from((m, t) for t, _, _ in targets if t in mods and t != m)
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_tensorflow_is_imported_in_one_place_and_nothing_imports_lazily(imports):
    mods, edges = imports
    bad = []
    for m, targets in edges.items():
        for t, line, nested in targets:
            where = f"{os.path.relpath(mods[m], ROOT)}:{line}"
            if t.split(".")[0] == "tensorflow" and m != LAZY_TENSORFLOW:
                bad.append(f"{where}: imports {t} (TensorFlow comes from {LAZY_TENSORFLOW})")
            elif nested and m != LAZY_TENSORFLOW:
                bad.append(f"{where}: imports {t} inside a function")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path):
    """The import reader resolves relative and submodule imports (so the tests
    above can fail): a module of the core importing a rule is against the order."""
    src = tmp_path / "m.py"
    src.write_text("from graphfix.render import sarif\nfrom . import ir\ndef f():\n    import rewrites\n"
                   "try:\n    import rich\nexcept ImportError:\n    rich = None\n")
    known = {"graphfix.render.sarif", "graphfix.core.ir", "rewrites"}
    got = sorted(_imports("graphfix.core.m", str(src), known), key=lambda t: t[1])
    assert got == [("graphfix.render.sarif", 1, False), ("graphfix.core.ir", 2, False), ("rewrites", 4, True),
                   ("rich", 6, False)]
    assert _layer("graphfix.render.sarif") > _layer("graphfix.core.m")
