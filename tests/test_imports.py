"""The direction of dependencies (shared/DESIGN.md, docs/ARCHITECTURE.md) as a test.

Reads every module of our four packages with ``ast`` — function-local imports included, since an
import inside a function is still an arrow — and fails on a never-arrow (``handlers`` or ``scheduler``
importing ``bot``; ``storage`` importing anything of ours) and on any import cycle between modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "storage", "scheduler")
NEVER = {"handlers": ("bot",), "scheduler": ("bot",), "storage": ("bot", "handlers", "scheduler")}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The modules of ours that ``module`` imports (a ``from package import name`` of a submodule
    counts as the submodule, of anything else as the package)."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            subs = [f"{source}.{alias.name}" for alias in node.names]
            names = [s for s in subs if s in modules]
            if len(names) < len(subs):
                names.append(source)
        for name in names:
            if name.split(".")[0] in PACKAGES and (target := known(name)) and target != module:
                yield target


def _graph() -> dict[str, set[str]]:
    """Module → the modules it makes Python run: what it imports, and the packages around those
    (importing ``bot.console.live`` runs ``bot/console/__init__.py`` first) other than its own."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set(_imported(module, path, modules))
        for target in list(targets):
            parts = target.split(".")
            for i in range(1, len(parts)):
                package = ".".join(parts[:i])
                if package in modules and not (module == package or module.startswith(package + ".")):
                    targets.add(package)
        graph[module] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_no_never_arrows() -> None:
    bad = sorted(
        f"{source} -> {target}"
        for source, targets in _graph().items()
        for target in targets
        if target.split(".")[0] in NEVER.get(source.split(".")[0], ())
    )
    assert not bad, "imports against the design:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in cycles)


def test_the_checker_sees_arrows_and_cycles() -> None:
    """The checker itself: it finds a cycle, and it sees the real graph (else both tests above pass empty)."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = _graph()
    assert "handlers.pipeline" in graph["bot.pipeline.worker"]
    assert any(target.startswith("storage") for target in graph["handlers.cases"])
    assert "bot.console" in graph["bot.keys"]  # through bot.console.live: the package runs first
