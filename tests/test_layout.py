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
