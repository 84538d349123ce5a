"""Fork blocks named after their attention (``C2f_EMA``, ``C3k2_CBAM``, ``C3_SE``) as attnsurgeon ``Augment`` rows.

Where the fork puts the attention is read, when its source is given, from the class definitions without running
them (``ast``): a block whose own ``__init__`` builds the attention applies it to its output; a block that builds a
bottleneck class whose ``__init__`` builds it has it in each bottleneck. No torch, no printing.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from attnsurgeon.core.augment_graph import AUGMENT_WHERE, AUGMENTABLE_BLOCKS
from attnsurgeon.errors import ModuleArgsError, UsageError

__all__ = ["AUGMENT_WHERE", "DEFAULT_WHERE", "ForkBlock", "placement", "split_name"]
DEFAULT_WHERE = "bottleneck"  # the most common published fork: Bottleneck_EMA inside C2f_EMA


@dataclass(frozen=True)
class ForkBlock:
    block: str  # the Ultralytics block: C2f
    attention: str  # the catalog module: EMA


def split_name(module: str, find: object) -> ForkBlock | None:
    """``C2f_EMA`` -> (C2f, EMA) when the first part is an augmentable block and a later part a catalog module
    (``find``: name -> spec or None, e.g. ``REGISTRY.find``)."""
    parts = [p for p in re.split(r"[_\-]", module) if p]
    if len(parts) < 2 or parts[0] not in AUGMENTABLE_BLOCKS:
        return None
    for part in parts[1:]:
        spec = find(part)  # type: ignore[operator]
        if spec is not None:
            return ForkBlock(parts[0], spec.name)
    return None


def _sources(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(path.rglob("*.py"))
    raise UsageError(f"--fork {path}: no such file or folder; give the fork's Python source folder or a .py file")


def _classes(path: Path) -> dict[str, tuple[ast.ClassDef, Path]]:
    out: dict[str, tuple[ast.ClassDef, Path]] = {}
    for file in _sources(path):
        try:
            tree = ast.parse(file.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            continue  # not Python this version reads: the class may be elsewhere
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                out.setdefault(node.name, (node, file))
    return out


def _called_names(cls: ast.ClassDef) -> set[str]:
    """Names called in ``__init__`` (``EMA(c2)``, ``nn.ModuleList(Bottleneck_EMA(...) for _ in range(n))``)."""
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    names = set()
    for node in ast.walk(init) if init is not None else ():
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else "")
    return names


def _calls(names: set[str], attention: str, aliases: tuple[str, ...]) -> bool:
    return bool(names & {attention, *aliases})


def placement(module: str, fork: ForkBlock, path: Path, aliases: tuple[str, ...] = ()) -> tuple[str, str]:
    """(where, how it was decided) for the fork class ``module`` in the source at ``path``; refused where the class
    is missing or builds the attention neither itself nor in a bottleneck class."""
    classes = _classes(path)
    if module not in classes:
        raise ModuleArgsError(f"--fork {path}: no class {module} in its Python files; give the folder that defines it")
    cls, file = classes[module]
    called = _called_names(cls)
    if _calls(called, fork.attention, aliases):
        return "output", f"{file.name}: {module}.__init__ builds {fork.attention} itself (after its last conv)"
    for name in sorted(called):
        inner = classes.get(name)
        if inner is not None and name != module and _calls(_called_names(inner[0]), fork.attention, aliases):
            return (
                "bottleneck",
                f"{inner[1].name}: {module} builds {name}, which builds {fork.attention} (in each bottleneck)",
            )
    raise ModuleArgsError(
        f"--fork {path}: {module} ({file.name}) builds {fork.attention} neither itself nor in a bottleneck class it "
        f"builds, so its placement is neither --where output nor bottleneck; write the row by hand"
    )
