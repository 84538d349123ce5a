"""The house rules: data flows one way between the rooms, the core needs no torch, no file grows past 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "attnsurgeon"
MAX_LINES = 400
# Pure rooms: importable and usable without torch or Ultralytics (--help, list, insert --no-verify stay fast).
TORCH_FREE = {
    "graph",
    "augment_graph",
    "positions",
    "yamlio",
    "sizes",
    "report",
    "errors",
    "diagnose",
    "adopt",
    "names",
    "adoption",
    "channels",
    "yamledit",
    "diskcache",
    "flowstyle",
    "flowedit",
    "yolo_repos",
    "fork_blocks",
    "catalog.spec",
    "catalog.scan",
}
# Rooms below the commands must never reach up to them.
NEVER_IMPORTS = {
    "catalog": {"api", "pipeline", "profile", "verify", "weights", "checkpoints", "module_costs", "cli", "ultra"},
    "graph": {"yamlio", "api", "pipeline", "ultra", "catalog"},
    "yamlio": {"api", "pipeline", "ultra", "catalog"},
    "ultra": {"api", "pipeline", "profile", "verify", "weights"},
    "profile": {"api", "pipeline"},
    "weights": {"api", "pipeline", "profile"},
    "pipeline": {"api", "cli"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``name`` imports anywhere in the file (inside functions too: a lazy import is still a
    dependency)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    # A package's face (__init__ re-exporting its parts) is not a dependency of the parts it re-exports.
    return {m: {t for t in _imports(m, p, known) if "." in t} for m, p in modules.items()}


def test_no_import_cycles():
    edges = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("room", sorted(NEVER_IMPORTS))
def test_rooms_do_not_reach_up(room):
    edges = _graph()
    short = {m: {t.removeprefix("attnsurgeon.").split(".")[0] for t in deps} for m, deps in edges.items()}
    offenders = {
        m: sorted(deps & NEVER_IMPORTS[room])
        for m, deps in short.items()
        if m.removeprefix("attnsurgeon.").split(".")[0] == room and deps & NEVER_IMPORTS[room]
    }
    assert not offenders, f"{room} imports rooms above it: {offenders}"


def test_core_imports_no_torch():
    heavy = {"torch", "ultralytics", "thop", "onnx", "onnxruntime"}
    for name, path in _modules().items():
        if name.removeprefix("attnsurgeon.") not in TORCH_FREE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        used = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        used |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not used & heavy, f"{name} imports {sorted(used & heavy)}"


def test_no_file_over_400_lines():
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these by concern: {long}"
