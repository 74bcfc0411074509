"""The architecture the folders promise: the science (``claims``), the results records (``repro.results``), the
report and the pipeline import each other only downwards, and no package imports its way back to itself.

Imports are read from the source (every ``import`` statement, module-level and inside functions, since a lazy import
is still a dependency), so the test needs no import side effects and fails on the line that adds a cycle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, Path]:
    mods = {}
    for p in [*REPO.glob("repro/**/*.py"), *REPO.glob("claims/**/*.py")]:
        name = ".".join(p.relative_to(REPO).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    return mods


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """First-party modules ``path`` imports; ``from repro import provenance`` is ``repro.provenance``."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in MODULES)
        elif isinstance(node, ast.ImportFrom) and node.module in MODULES and node.level == 0:
            for a in node.names:
                out.add(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module)
    return out


def package(module: str) -> str:
    """``claims`` is one package; ``repro.<x>`` is one package per subpackage or module of repro."""
    parts = module.split(".")
    return "claims" if parts[0] == "claims" else ".".join(parts[:2])


def package_graph() -> dict[str, set[str]]:
    g: dict[str, set[str]] = defaultdict(set)
    for mod, path in MODULES.items():
        for dep in _imports(path):
            if package(dep) != package(mod):
                g[package(mod)].add(package(dep))
    return g


def _cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``g`` as a list of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in sorted(g.get(n, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_no_package_imports_its_way_back_to_itself() -> None:
    cycle = _cycle(package_graph())
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle or [])


def test_cycle_finder_finds_a_planted_cycle() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(g) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("pkg, forbidden", [
    # the science and the report read saved results; neither may reach into the machinery that runs a plan
    ("claims", ("repro.pipeline", "repro.cli", "repro.report")),
    ("repro.report", ("repro.pipeline", "repro.cli")),
    # the records every layer reads sit below all of them
    ("repro.results", ("claims", "repro.pipeline", "repro.report", "repro.cli", "repro.plots")),
])
def test_layers_import_only_downwards(pkg: str, forbidden: tuple[str, ...]) -> None:
    bad = sorted(f"{mod} imports {dep}" for mod, path in MODULES.items() if package(mod) == pkg
                 for dep in _imports(path) if package(dep) in forbidden)
    assert not bad, "; ".join(bad)


def test_the_graph_sees_lazy_imports() -> None:
    """The pipeline imports the report inside a function only; the graph must still see that edge, or a lazy
    import could hide a cycle."""
    assert "repro.report" in package_graph()["repro.pipeline"]
    assert "claims" in package_graph()["repro.pipeline"]


def test_orchestration_left_claims() -> None:
    assert not any((REPO / "claims" / f"{m}.py").exists() for m in ("runner", "plan", "jobs", "distributed",
                                                                      "progress"))


# -- inside a package: no reaching into a sibling's private helpers, no import cycle between its modules (issue 42) --
#
# The rule: an edge A -> B is any import of sibling module B anywhere in A's source -- at module level, inside a
# function, under ``if TYPE_CHECKING:`` -- written absolutely (``from repro.pipeline.shards import x``, ``import
# repro.pipeline.shards``, ``from repro.pipeline import shards``) or relatively (``from .shards import x``). A
# function-level import that keeps a cycle from failing at import time still leaves the cycle in the design, so it
# counts. Importing from the package itself (its ``__init__``) is an edge to the package's node. A private name is
# one with a leading underscore that is not a dunder; taking one from a sibling (``from .shards import _helper``, or
# ``shards._helper`` on an imported sibling module) is what the first check refuses: a helper two modules share is
# public in the module that owns it.

# Packages held to both rules; add one here once its modules satisfy them.
# repro.curvature: its operators share public helpers (repro.curvature.base), and interop <-> operators is broken
INTRA_PACKAGES = ["repro.pipeline", "repro.curvature"]


def package_modules(pkg: str, root: Path = REPO) -> dict[str, Path]:
    """The modules of package ``pkg`` under ``root`` (subpackages included), by dotted name; its ``__init__`` is
    ``pkg``."""
    mods = {}
    for p in sorted(root.joinpath(*pkg.split(".")).rglob("*.py")):
        name = ".".join(p.relative_to(root).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    return mods


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def sibling_imports(pkg: str, root: Path = REPO) -> list[tuple[str, int, str, str | None]]:
    """Every import, anywhere in a module of ``pkg``, of another module of ``pkg``: (importer, line, imported
    module, the name taken from it -- None when the module itself is imported). ``mod._name`` on a name bound to a
    sibling module counts as taking ``_name``."""
    mods = package_modules(pkg, root)
    out: list[tuple[str, int, str, str | None]] = []
    for mod, path in mods.items():
        is_init = path.name == "__init__.py"
        aliases: dict[str, str] = {}  # a local name bound to a sibling module -> that module
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in mods:
                        out.append((mod, node.lineno, a.name, None))
                        aliases[a.asname or a.name] = a.name  # without ``as``, reached as the full dotted name
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_init else mod.split(".")[:-1]
                    base = base[:len(base) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for a in node.names:
                    if f"{source}.{a.name}" in mods:
                        out.append((mod, node.lineno, f"{source}.{a.name}", None))
                        aliases[a.asname or a.name] = f"{source}.{a.name}"
                    elif source in mods:
                        out.append((mod, node.lineno, source, a.name))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                target = aliases.get(ast.unparse(node.value))
                if target is not None:
                    out.append((mod, node.lineno, target, node.attr))
    return [i for i in out if i[2] != i[0]]


def private_imports(pkg: str, root: Path = REPO) -> list[str]:
    return [f"{mod}:{line} takes {name} from {source}" for mod, line, source, name in sibling_imports(pkg, root)
            if name is not None and _private(name)]


def module_graph(pkg: str, root: Path = REPO) -> dict[str, dict[str, int]]:
    """importer -> {imported sibling module: the line of its first import there}."""
    g: dict[str, dict[str, int]] = {m: {} for m in package_modules(pkg, root)}
    for mod, line, source, _ in sorted(sibling_imports(pkg, root)):
        g[mod].setdefault(source, line)
    return g


def describe_cycle(g: dict[str, dict[str, int]], cycle: list[str]) -> str:
    return " -> ".join(cycle) + " (" + ", ".join(f"{a} imports {b} at line {g[a][b]}"
                                                  for a, b in zip(cycle, cycle[1:])) + ")"


@pytest.mark.parametrize("pkg", INTRA_PACKAGES)
def test_no_module_takes_a_siblings_private_name(pkg: str) -> None:
    bad = private_imports(pkg)
    assert not bad, "; ".join(bad)


@pytest.mark.parametrize("pkg", INTRA_PACKAGES)
def test_no_import_cycle_inside_the_package(pkg: str) -> None:
    g = module_graph(pkg)
    cycle = _cycle(g)
    assert cycle is None, f"import cycle inside {pkg}: " + describe_cycle(g, cycle or [])


def test_the_package_checks_catch_planted_private_imports_and_a_lazy_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "pkgx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pkgx.a import f\n", encoding="utf-8")
    (pkg / "a.py").write_text("from pkgx.b import _helper, public\n\n\ndef f():\n    return 1\n", encoding="utf-8")
    (pkg / "b.py").write_text("import os\n\n\ndef _helper():\n    from . import c\n    return c\n\n\n"
                              "def public():\n    return os.sep\n", encoding="utf-8")
    (pkg / "c.py").write_text("import pkgx.a as a\nfrom pkgx import d\n\nx = a._private, d.__name__, a.__doc__\n",
                              encoding="utf-8")
    (pkg / "d.py").write_text("from .a import f as _f\n", encoding="utf-8")  # a private alias of a public name
    assert private_imports("pkgx", tmp_path) == ["pkgx.a:1 takes _helper from pkgx.b",
                                                 "pkgx.c:4 takes _private from pkgx.a"]
    g = module_graph("pkgx", tmp_path)
    assert g == {"pkgx": {"pkgx.a": 1}, "pkgx.a": {"pkgx.b": 1}, "pkgx.b": {"pkgx.c": 5},
                 "pkgx.c": {"pkgx.a": 1, "pkgx.d": 2}, "pkgx.d": {"pkgx.a": 1}}
    cycle = _cycle(g)
    assert cycle == ["pkgx.a", "pkgx.b", "pkgx.c", "pkgx.a"]
    assert describe_cycle(g, cycle) == ("pkgx.a -> pkgx.b -> pkgx.c -> pkgx.a (pkgx.a imports pkgx.b at line 1, "
                                        "pkgx.b imports pkgx.c at line 5, pkgx.c imports pkgx.a at line 1)")

