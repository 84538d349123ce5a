"""The house rules: data flows one way between the rooms, the core needs no torch, no file grows past 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "attnsurgeon"
MAX_LINES = 400
# The rooms, bottom to top (docs/architecture.md): a room imports only the rooms listed for it. ``errors`` (the one
# exception tree) and ``_moved`` (old flat-layout names) are leaves every room may use.
LEAVES = {"errors", "_moved"}
ALLOWED = {
    "core": set(),
    "catalog": {"core"},
    "sources": {"catalog", "core"},
    "ultralytics_bridge": {"sources", "catalog", "core"},
    "costs": {"ultralytics_bridge", "sources", "catalog", "core"},
    "checks": {"costs", "ultralytics_bridge", "sources", "catalog", "core"},
    "ops": {"checks", "costs", "ultralytics_bridge", "sources", "catalog", "core"},
    "sweeps": {"ops", "checks", "costs", "ultralytics_bridge", "sources", "catalog", "core"},
    "figures": {"ops", "checks", "costs", "ultralytics_bridge", "sources", "catalog", "core"},
    "cli": {"figures", "sweeps", "ops", "checks", "costs", "ultralytics_bridge", "sources", "catalog", "core"},
}
# Pure modules: importable and usable without torch or Ultralytics (--help, list, insert --no-verify stay fast).
TORCH_FREE_ROOMS = {"core"}
TORCH_FREE = {
    "errors",
    "_moved",
    "ops.diagnose",
    "ops.loading",
    "ops.adopt_plan",
    "ops.fork_blocks",
    "figures.new_layers",
    "catalog.spec",
    "catalog.scan",
}
# Within the core: the layer graph knows no YAML, the YAML layer no catalog.
CORE_NEVER_IMPORTS = {
    "core.graph": {
        "core.yamlfile",
        "core.yamlfile.model_doc",
        "core.yamlfile.tree_edits",
        "core.yamlfile.text_writer",
        "core.report",
    }
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


def _room(module: str) -> str:
    return module.removeprefix("attnsurgeon.").split(".")[0]


def test_every_room_is_known():
    rooms = {_room(m) for m in _modules() if m.count(".") >= 1}
    assert rooms <= set(ALLOWED) | LEAVES | {"__main__"}, f"rooms docs/architecture.md does not state: {rooms}"


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_rooms_import_only_the_rooms_below(room):
    offenders = {
        m: sorted(bad)
        for m, deps in _graph().items()
        if _room(m) == room and (bad := {_room(d) for d in deps if _room(d) != room} - ALLOWED[room] - LEAVES)
    }
    assert not offenders, f"{room} imports rooms it may not: {offenders}"


def test_the_graph_knows_no_yaml():
    edges = _graph()
    for module, forbidden in CORE_NEVER_IMPORTS.items():
        found = {d.removeprefix("attnsurgeon.") for d in edges[f"attnsurgeon.{module}"]} & forbidden
        assert not found, f"{module} imports {sorted(found)}"


def test_leaves_import_nothing_of_the_package():
    edges = _graph()
    for leaf in LEAVES:
        assert not edges[f"attnsurgeon.{leaf}"], f"{leaf} imports {edges[f'attnsurgeon.{leaf}']}"


def test_core_imports_no_torch():
    heavy = {"torch", "ultralytics", "thop", "onnx", "onnxruntime", "matplotlib"}
    for name, path in _modules().items():
        short = name.removeprefix("attnsurgeon.")
        if short not in TORCH_FREE and _room(name) not in TORCH_FREE_ROOMS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        used = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        used |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not used & heavy, f"{name} imports {sorted(used & heavy)}"


def test_no_file_over_400_lines():
    # the package, its tests and its benchmarks: a long file is several concerns in one place
    folders = (PACKAGE, PACKAGE.parent / "tests", PACKAGE.parent / "benchmarks")
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for folder in folders
        for p in folder.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these by concern: {long}"


def _dumps(tree: ast.AST) -> list[int]:
    """Lines that write a model tree with ruamel's dump: ``text_writer.dump``, or a ``round_trip_yaml()``'s dump."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("text_writer"):
            lines += [node.lineno for a in node.names if a.name == "dump"]
        if not (isinstance(node, ast.Attribute) and node.attr == "dump"):
            continue
        owner = node.value.func if isinstance(node.value, ast.Call) else node.value
        if getattr(owner, "id", getattr(owner, "attr", "")) in ("text_writer", "round_trip_yaml"):
            lines.append(node.lineno)
    return lines


def test_text_writer_is_the_one_path_to_a_model_files_text():
    # every command that writes a model file goes through text_writer, which keeps the file's layout; ruamel's dump
    # (which re-flows flow-style rows and moves their comments) is only its fallback, inside it
    writer = "attnsurgeon.core.yamlfile.text_writer"
    found = {
        name: lines
        for name, path in _modules().items()
        if name != writer and (lines := _dumps(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert not found, f"these write a model tree with ruamel's dump, not through {writer}: {found}"


_MUTATORS = {"append", "extend", "update", "add", "insert", "setdefault"}


def _patches(source: str) -> list[str]:
    """Module-level statements that change something another project module owns: an attribute assigned, or a
    container of it mutated, on a name imported from ``attnsurgeon`` (``REGISTRY.resolve_source = resolve``,
    ``plugins.FOREIGN.append(...)``)."""
    tree = ast.parse(source)
    imported = {
        (a.asname or a.name).split(".")[0]
        for n in tree.body
        if isinstance(n, (ast.Import, ast.ImportFrom))
        and ((n.module or "") if isinstance(n, ast.ImportFrom) else n.names[0].name).startswith("attnsurgeon")
        for a in n.names
    }

    def root(node: ast.AST) -> str | None:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    found = []
    for n in tree.body:
        targets = n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(n, ast.AugAssign) else []
        if any(isinstance(t, (ast.Attribute, ast.Subscript)) and root(t) in imported for t in targets):
            found.append(ast.unparse(n))
        call = n.value if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) else None
        if (
            call
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in _MUTATORS
            and root(call.func) in imported
        ):
            found.append(ast.unparse(n))
    return found


def test_no_module_patches_another_at_import_time():
    # the two patches the sources room replaced with imports a reader can follow are what this finds
    assert _patches("from attnsurgeon.catalog.registry import REGISTRY\nREGISTRY.resolve_source = resolve\n")
    assert _patches("import attnsurgeon.sources.plugins as plugins\nplugins.FOREIGN.append(object())\n")
    assert not _patches("import sys\nsys.path.append('x')\nfrom attnsurgeon import x\nx.f(1)\n")
    found = {name: p for name, path in _modules().items() if (p := _patches(path.read_text(encoding="utf-8")))}
    assert not found, f"modules that change another module when imported: {found}"
