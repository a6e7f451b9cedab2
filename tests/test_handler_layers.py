"""The layers inside handlers/, read from the source (function-local imports included).

Services below, routers above: a module that defines a ``Router`` may import services; a service never
imports a router module. The composition (``handlers/app.py``) is imported only by the entries. No
import cycle between handlers' modules, and only ``handlers/dialogs.py`` touches the Dialog table.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = ROOT / "handlers"
ENTRIES = {"handlers.app", "handlers.pipeline", "handlers.actions"}  # may import the composition


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in HANDLERS.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = ast.parse(path.read_text(encoding="utf-8"))
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str, tree: ast.Module) -> set[str]:
    """Our modules ``name`` imports anywhere in its body (``from pkg import sub`` counts as ``pkg.sub``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            targets = [t for t in subs if t in MODULES] or [node.module]
        for target in targets:
            resolved = _resolve(target) if target.startswith("handlers") else None
            if resolved is not None and resolved != name:
                found.add(resolved)
    return found


GRAPH = {name: _imports(name, tree) for name, tree in MODULES.items()}


def _is_router(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.Assign) and isinstance(n.value, ast.Call) and isinstance(n.value.func, ast.Name)
               and n.value.func.id == "Router" for n in tree.body)


def test_no_import_cycle_in_handlers() -> None:
    seen: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(GRAPH[node]):
            assert seen.get(nxt) != 1, " → ".join([*path[path.index(nxt):], nxt]) if nxt in path else nxt
            if nxt not in seen:
                visit(nxt, [*path, nxt])
        seen[node] = 2

    for start in sorted(GRAPH):
        if start not in seen:
            visit(start, [start])


def test_services_never_import_routers() -> None:
    routers = {name for name, tree in MODULES.items() if _is_router(tree)}
    assert {"handlers.common", "handlers.enterprise.rating", "handlers.staff.chat"} <= routers
    services = set(MODULES) - routers - ENTRIES
    assert {"handlers.reminders", "handlers.ratings", "handlers.relay", "handlers.dispatch"} <= services
    wrong = sorted(f"{s} → {t}" for s in services for t in GRAPH[s] & routers)
    assert wrong == []


def test_only_the_entries_import_the_composition() -> None:
    assert sorted(name for name, deps in GRAPH.items() if "handlers.app" in deps) == sorted(ENTRIES - {"handlers.app"})
    assert sorted(name for name, deps in GRAPH.items() if "handlers" in deps) == []  # the package file is empty


def test_only_dialogs_touches_the_dialog_table() -> None:
    users = sorted(
        name for name, tree in MODULES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "storage.models"
        and any(a.name == "Dialog" for a in node.names)
    )
    assert users == ["handlers.dialogs"]
