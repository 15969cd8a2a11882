"""medsyn's import layers: every module imports only from its own layer or a lower one, and no modules
import each other in a cycle.

``LAYERS`` below is the one statement of the layer order (docs quote it from here). A module belongs to
the layer of the longest prefix that names it, so ``medsyn.config.strict`` is L0 while the rest of
``medsyn.config`` is L6. The package root ``medsyn/__init__.py`` sits above every layer (it may
re-export), so nothing inside the package may import it.

Importing ``medsyn.config.strict`` first runs ``medsyn/__init__.py`` and ``medsyn/config/__init__.py``, so a
package above one of its own modules (the root above all, ``medsyn.config`` above ``strict``) may import
at module level nothing above that module's layer: it re-exports lazily (a module ``__getattr__``).

Every module under medsyn/ is parsed with ``ast`` (nothing is imported). What counts as an import:
- the upward check: every ``import``/``from ... import`` anywhere in a module (module level, inside
  functions and ``if TYPE_CHECKING:`` blocks; relative imports resolved), plus every string constant
  that is exactly a medsyn module name (``"medsyn.models.cvae:CVAE"`` in a name registry is an import
  made by ``importlib``). A lazy import defers the cost, not the dependency, so it may not point up either.
- the cycle check: module-level imports only (not inside a function, not under ``if TYPE_CHECKING:``).
  An import inside a function runs after every module has finished loading, so it is the legitimate
  way to break a cycle within one layer; it still has to point downward or sideways.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Bottom to top; a module may import only from its own layer or lower ones.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("medsyn.io", "medsyn.config.strict", "medsyn._version"),  # L0 plumbing, the typed-section parser, version
    ("medsyn.kernels", "medsyn._kernels", "medsyn._kernels_cuda"),  # L1 compiled kernels + torch fallbacks
    ("medsyn.data",),  # L2 sources, splits, image I/O
    ("medsyn.metrics",),  # L3 metric functions and feature extractors
    ("medsyn.training",),  # L4 loops, checkpoints, DP-SGD, DDP
    ("medsyn.models",),  # L5 generators and classifiers
    ("medsyn.config",),  # L6 typed sections gathering the paper defaults of the layers below
    ("medsyn.report",),  # L7 tables, figures, the results schema
    ("medsyn.evaluation",),  # L8 the assessment protocol
    ("medsyn.workflows",),  # L9 entry points called by the bundles
)
PACKAGE = "medsyn"
PACKAGE_ROOT = Path(__file__).resolve().parents[1] / PACKAGE
ROOT_LAYER = len(LAYERS)  # medsyn/__init__.py: above every layer

RULE = (
    "Rule (tests/test_import_layers.py::LAYERS): a medsyn module imports only from its own layer or a lower "
    "one. Bottom to top: " + "; ".join(f"L{i} {', '.join(prefixes)}" for i, prefixes in enumerate(LAYERS))
    + f"; {PACKAGE}/__init__.py above all."
)
_MODULE_STRING = re.compile(r"^medsyn(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?$")


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. "medsyn.metrics.prdc"
    target: str  # imported module, e.g. "medsyn.metrics.neighbors"
    line: int
    module_level: bool  # runs while the importing module loads (the cycle check uses only these)


def module_name(path: Path, root: Path = PACKAGE_ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(root: Path = PACKAGE_ROOT) -> dict[str, Path]:
    """Every module of the package (``.py`` sources and compiled extensions), by dotted name."""
    modules = {module_name(path, root): path for path in sorted(root.rglob("*.py")) if "__pycache__" not in path.parts}
    for extension in root.glob("*.so"):
        modules.setdefault(f"{root.name}.{extension.name.split('.')[0]}", extension)
    return modules


def _placement(module: str) -> tuple[int, str] | None:
    """(layer, the LAYERS prefix that places it) by the longest matching prefix."""
    if module == PACKAGE:
        return ROOT_LAYER, f"{PACKAGE}/__init__.py"
    best: tuple[int, str] | None = None
    for layer, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[1])):
                best = (layer, prefix)
    return best


def layer_of(module: str) -> int | None:
    """Index into LAYERS of ``module``; ROOT_LAYER for the package itself; None outside every layer."""
    placement = _placement(module)
    return None if placement is None else placement[0]


def layer_label(module: str) -> str:
    """``"L0 medsyn.config.strict"``: the module's layer and the prefix that puts it there."""
    layer, prefix = _placement(module)
    return prefix if layer == ROOT_LAYER else f"L{layer} {prefix}"


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: -(level - 1)]
    return ".".join([*base, name] if name else base)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(source: str, module: str, known: set[str], *, is_package: bool = False) -> Iterator[Import]:
    """The medsyn modules that ``module`` (whose code is ``source``) imports.

    ``from a.b import c`` imports module ``a.b.c`` when that is a module in ``known``, else module ``a.b``.
    """
    tree = ast.parse(source)
    module_level_nodes: set[int] = set()

    def collect_module_level(body: list[ast.stmt]) -> None:
        # statements that run at import time: the module body and its if/try/with blocks, not defs
        for statement in body:
            module_level_nodes.add(id(statement))
            if isinstance(statement, ast.If):
                if not _is_type_checking(statement.test):
                    collect_module_level(statement.body)
                collect_module_level(statement.orelse)
            elif isinstance(statement, ast.Try | ast.TryStar):
                for block in (statement.body, statement.orelse, statement.finalbody):
                    collect_module_level(block)
                for handler in statement.handlers:
                    collect_module_level(handler.body)
            elif isinstance(statement, ast.With):
                collect_module_level(statement.body)

    collect_module_level(tree.body)

    def in_package(name: str) -> bool:
        return name == PACKAGE or name.startswith(PACKAGE + ".")

    for node in ast.walk(tree):
        at_module_level = id(node) in module_level_nodes
        if isinstance(node, ast.Import):
            for alias in node.names:
                if in_package(alias.name):
                    yield Import(module, alias.name, node.lineno, at_module_level)
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(module, is_package, node.level, node.module) if node.level else node.module or ""
            )
            if not in_package(base):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield Import(module, candidate if candidate in known else base, node.lineno, at_module_level)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_STRING.match(node.value):
            target = node.value.partition(":")[0]
            if target in known:
                yield Import(module, target, node.lineno, False)


def all_imports(root: Path = PACKAGE_ROOT) -> list[Import]:
    modules = package_modules(root)
    known = set(modules)
    found: list[Import] = []
    for name, path in modules.items():
        if path.suffix == ".py":
            source = path.read_text(encoding="utf-8")
            found.extend(i for i in imports_of(source, name, known, is_package=path.name == "__init__.py")
                         if i.target != name)
    return found


def upward_imports(imports: list[Import]) -> list[str]:
    upward = []
    for i in imports:
        source_layer, target_layer = layer_of(i.source), layer_of(i.target)
        if source_layer is not None and target_layer is not None and target_layer > source_layer:
            how = "" if i.module_level else " (inside a function or a string)"
            upward.append(
                f"{i.source} ({layer_label(i.source)}) -> {i.target} ({layer_label(i.target)}) "
                f"line {i.line}{how}"
            )
    return sorted(set(upward))


def import_cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected groups (>= 2 modules) of the module-level import graph, each sorted."""
    graph: dict[str, set[str]] = {}
    for i in imports:
        if i.module_level:
            graph.setdefault(i.source, set()).add(i.target)
            graph.setdefault(i.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graph has ~200 nodes, recursion depth is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def test_every_module_has_a_layer():
    unplaced = sorted(name for name in package_modules() if layer_of(name) is None)
    assert not unplaced, f"modules outside every layer (add their package to LAYERS): {unplaced}\n{RULE}"


def test_no_module_imports_a_higher_layer():
    upward = upward_imports(all_imports())
    assert not upward, f"{len(upward)} upward import(s):\n  " + "\n  ".join(upward) + f"\n{RULE}"


def parents_loading_higher_layers(imports: list[Import], modules: set[str]) -> list[str]:
    """Importing ``a.b.c`` first runs ``a/__init__.py`` and ``a/b/__init__.py``. Where a package sits in a
    higher layer than one of its modules (``medsyn.config`` over ``medsyn.config.strict``, the package root
    over everything), the package's module-level imports would load that higher layer under the module."""
    loaded: dict[str, set[str]] = {}
    for i in imports:
        if i.module_level:
            loaded.setdefault(i.source, set()).add(i.target)
    found = []
    for module in sorted(modules):
        module_layer = layer_of(module)
        parts = module.split(".")
        for depth in range(1, len(parts)):
            package = ".".join(parts[:depth])
            package_layer = layer_of(package)
            if module_layer is None or package_layer is None or package_layer <= module_layer:
                continue
            for target in sorted(loaded.get(package, ())):
                target_layer = layer_of(target)
                if target_layer is not None and target_layer > module_layer:
                    found.append(
                        f"{package.replace('.', '/')}/__init__.py loads {target} ({layer_label(target)}) "
                        f"whenever {module} ({layer_label(module)}) is imported"
                    )
    return sorted(set(found))


def test_packages_load_nothing_above_their_lowest_module():
    found = parents_loading_higher_layers(all_imports(), set(package_modules()))
    assert not found, (
        "package __init__ imports that run under a lower-layer module (import lazily, e.g. a module "
        "__getattr__ as in medsyn/data/__init__.py):\n  " + "\n  ".join(found) + f"\n{RULE}"
    )


def test_no_module_level_import_cycles():
    cycles = import_cycles(all_imports())
    assert not cycles, (
        "module-level import cycles (break them by moving the shared code down, or import lazily inside the "
        "function that needs it):\n  " + "\n  ".join(" <-> ".join(group) for group in cycles)
    )


# The checker itself: these would let a violation through if the parsing were wrong.
KNOWN = {"medsyn.config", "medsyn.config.strict", "medsyn.config.sections", "medsyn.metrics", "medsyn.metrics.prdc",
         "medsyn.metrics.features", "medsyn.metrics.features.registry", "medsyn.models.cvae"}


@pytest.mark.parametrize(
    "module, expected",
    [
        ("medsyn.config.strict", 0),
        ("medsyn.config.sections", 6),
        ("medsyn.config", 6),
        ("medsyn.kernels.dispatch", 1),
        ("medsyn._kernels", 1),
        ("medsyn.metrics.features.extract", 3),
        ("medsyn", ROOT_LAYER),
        ("medsyn.iox", None),  # a prefix must end at a dot
    ],
)
def test_layer_of(module, expected):
    assert layer_of(module) == expected


@pytest.mark.parametrize(
    "source, module, is_package, expected",
    [
        ("from medsyn.config import strict", "medsyn.training.settings", False, ["medsyn.config.strict"]),
        ("from medsyn.config import SomeSection", "medsyn.training.settings", False, ["medsyn.config"]),
        ("from . import prdc", "medsyn.metrics.fid", False, ["medsyn.metrics.prdc"]),
        ("from .features.registry import X", "medsyn.metrics", True, ["medsyn.metrics.features.registry"]),
        ("from ..config.strict import X", "medsyn.metrics.fid", False, ["medsyn.config.strict"]),
        ("import medsyn.metrics.prdc as p", "medsyn.data.split", False, ["medsyn.metrics.prdc"]),
        ("import numpy, torch.nn", "medsyn.data.split", False, []),
        ('GENERATORS = {"cvae": "medsyn.models.cvae:CVAE"}', "medsyn.data.x", False, ["medsyn.models.cvae"]),
        ('"""Docstring naming medsyn.models.cvae in a sentence."""', "medsyn.data.x", False, []),
    ],
)
def test_imports_are_resolved(source, module, is_package, expected):
    assert [i.target for i in imports_of(source, module, KNOWN, is_package=is_package)] == expected


def test_lazy_and_type_checking_imports_count_upward_but_not_for_cycles():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from medsyn.metrics import prdc\n"
        "try:\n    import medsyn.config.sections\nexcept ImportError:\n    pass\n"
        "def f():\n    from medsyn.models.cvae import CVAE\n"
    )
    found = {i.target: i.module_level for i in imports_of(source, "medsyn.data.split", KNOWN)}
    assert found == {"medsyn.metrics.prdc": False, "medsyn.config.sections": True, "medsyn.models.cvae": False}
    upward = upward_imports(list(imports_of(source, "medsyn.data.split", KNOWN)))
    assert len(upward) == 3 and all("medsyn.data.split (L2 medsyn.data) -> " in line for line in upward)


def test_a_package_root_that_loads_a_higher_layer_is_found():
    edges = [Import("medsyn", "medsyn.workflows.quickstart", 1, True), Import("medsyn.config", "medsyn._version", 1, True),
             Import("medsyn.config", "medsyn.config.sections", 2, True), Import("medsyn.data", "medsyn.data.split", 1, False)]
    found = parents_loading_higher_layers(edges, {"medsyn.io.atomic", "medsyn.config.strict", "medsyn.data.split"})
    assert found == [
        "medsyn/__init__.py loads medsyn.workflows.quickstart (L9 medsyn.workflows) whenever medsyn.config.strict "
        "(L0 medsyn.config.strict) is imported",
        "medsyn/__init__.py loads medsyn.workflows.quickstart (L9 medsyn.workflows) whenever medsyn.data.split "
        "(L2 medsyn.data) is imported",
        "medsyn/__init__.py loads medsyn.workflows.quickstart (L9 medsyn.workflows) whenever medsyn.io.atomic "
        "(L0 medsyn.io) is imported",
        "medsyn/config/__init__.py loads medsyn.config.sections (L6 medsyn.config) whenever medsyn.config.strict "
        "(L0 medsyn.config.strict) is imported",
    ]


def test_cycles_are_found_and_lazy_imports_break_them():
    edges = [Import("a", "b", 1, True), Import("b", "c", 1, True), Import("c", "a", 1, True),
             Import("c", "d", 1, True), Import("d", "c", 1, False)]
    assert import_cycles(edges) == [["a", "b", "c"]]
