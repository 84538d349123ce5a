"""Which of a fork's definitions of a class a file of the fork uses, read from that file's imports with ``ast``.

A fork may define ``Attention`` in several files (an ``extra_modules/attention.py`` and an old copy in
``modules/block.py``); the one a block (``C2f_Attention``) builds is the one its own file defines, else the one its
imports name (``from .attention import Attention``, ``from ultralytics.nn.extra_modules.attention import *``),
followed through re-exports (a package ``__init__.py`` that imports it from a submodule). Where the imports do not
tell, every candidate is returned and the caller names them all. No torch, no printing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

MAX_HOPS = 4  # block.py -> package __init__.py -> submodule: re-exports are short chains


def used_definition(
    name: str, user: Path | None, files: Sequence[Path], trees: Mapping[Path, ast.Module], hops: int = 0
) -> list[Path]:
    """The files among ``files`` (each defines a class ``name``) that ``user`` means by ``name``: one when its own
    definitions or its imports tell, else all of them."""
    if len(files) == 1:
        return list(files)
    if user is None or user not in trees or hops > MAX_HOPS:
        return list(files)
    if user in files:
        return [user]
    for module, level in _imports_of(name, trees[user]):
        for target in _module_files(module, level, user, trees):
            if target in files:
                return [target]
            found = used_definition(name, target, files, trees, hops + 1)
            if len(found) == 1:
                return found
    return list(files)


def _imports_of(name: str, tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(module, level) of each module-level ``from M import name`` (or ``*``) in ``tree``, in order."""
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, ast.ImportFrom) and any(a.name in (name, "*") for a in node.names):
            yield node.module or "", node.level
        elif isinstance(node, (ast.If, ast.Try)):
            stack[:0] = [*node.body, *node.orelse, *[n for h in getattr(node, "handlers", []) for n in h.body]]


def _module_files(module: str, level: int, user: Path, trees: Mapping[Path, ast.Module]) -> list[Path]:
    """The fork's files that ``from <level dots><module> import ...`` in ``user`` names: relative to ``user``'s
    package, or, for an absolute import, every file whose path ends with the module's (``a.b`` -> ``.../a/b.py``)."""
    parts = [p for p in module.split(".") if p]
    if level:
        base = user.parent
        for _ in range(level - 1):
            base = base.parent
        target = base.joinpath(*parts)
        wanted = [target.with_suffix(".py"), target / "__init__.py"] if parts else [base / "__init__.py"]
        return [f for f in wanted if f in trees]
    if not parts:
        return []
    return [
        f
        for f in trees
        if list(f.with_suffix("").parts[-len(parts) :]) == parts
        or (f.name == "__init__.py" and list(f.parent.parts[-len(parts) :]) == parts)
    ]
