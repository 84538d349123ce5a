"""docs/architecture.md is true: it names every module of the package in its room, and every module, function or
class it names exists (as sqlite-utils tests that every command is documented)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from attnsurgeon._moved import MOVED

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "attnsurgeon"
DOC = ROOT / "docs" / "architecture.md"
ROOM_HEADING = re.compile(r"^### `(?P<folder>[\w/.]+)/`", re.M)
MODULE_ROW = re.compile(r"^\| `(?P<name>\w+)` \|", re.M)
DOTTED = re.compile(r"`(?P<ref>attnsurgeon(?:\.\w+)+)(?:\(\))?`")


def _sections() -> dict[str, list[str]]:
    """Folder (``core/yamlfile``) -> the module names its table lists, in order."""
    text = DOC.read_text(encoding="utf-8")
    heads = list(ROOM_HEADING.finditer(text))
    out = {}
    for head, nxt in zip(heads, [*heads[1:], None], strict=True):
        body = text[head.end() : nxt.start() if nxt else len(text)]
        body = body.split("\n## ", 1)[0]  # a room's table ends at the next top-level section
        out[head["folder"]] = MODULE_ROW.findall(body)
    return out


def _folders() -> dict[str, set[str]]:
    """Every package folder -> its modules (``__init__`` only where it holds more than a docstring)."""
    out: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        folder = path.parent.relative_to(ROOT).as_posix().removeprefix("attnsurgeon").strip("/")
        if path.stem == "__init__" and not _has_code(path):
            continue
        out.setdefault(folder or ".", set()).add(path.stem)
    return out


def _has_code(path: Path) -> bool:
    import ast

    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def test_every_module_is_named_in_its_room():
    named = _sections()
    missing = {
        f"{folder}/{module}.py"
        for folder, modules in _folders().items()
        if folder != "catalog/modules"  # the 33 papers: the doc names the folder, `attnsurgeon list` the modules
        for module in modules
        if module not in named.get(folder, [])
    }
    assert not missing, f"docs/architecture.md does not name: {sorted(missing)}"


def test_every_module_named_exists():
    real = _folders()
    ghosts = [
        f"{folder}/{name}.py"
        for folder, names in _sections().items()
        for name in names
        if name not in real.get(folder, ())
    ]
    assert not ghosts, f"docs/architecture.md names modules that do not exist: {ghosts}"


def _resolve(ref: str) -> object:
    parts = ref.split(".")
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        try:
            obj: object = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        # an old path is named only where the page speaks of old paths, and must be one _moved answers
        assert obj.__name__ == name or name in MOVED, f"{name} is neither a module nor an old path _moved knows"
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(ref)


@pytest.mark.parametrize("ref", sorted({m["ref"] for m in DOTTED.finditer(DOC.read_text(encoding="utf-8"))}))
def test_every_dotted_name_in_the_doc_resolves(ref):
    _resolve(ref)  # a module, function or class that was renamed away raises here
