"""A Python file read as a syntax tree, never run: what a command that builds no model knows of a plugin or class
file (its classes, what it imports). ``FILE.py:Class`` and a YAML's recorded classes are read this way until a model is
built with them (:func:`attnsurgeon.sources.named_classes.pending`)."""

from __future__ import annotations

import ast
from pathlib import Path

from attnsurgeon.errors import PluginError


def read(path: Path, label: str) -> ast.Module:
    """A file's syntax tree (nothing of it runs); unreadable or not Python is one line naming the file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PluginError(f"{label}: cannot read {path}: {exc.__class__.__name__}") from None
    try:
        return ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise PluginError(f"{label}: syntax error at line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:  # NUL bytes
        raise PluginError(f"{label}: not Python source ({exc})") from None


def classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    """The classes a module defines at its top level (inside ``if``/``try`` blocks too), by name."""
    out: dict[str, ast.ClassDef] = {}
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, ast.ClassDef):
            out.setdefault(node.name, node)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            stack[:0] = [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            stack[:0] = [n for h in getattr(node, "handlers", []) for n in h.body]
    return out


def imported_names(tree: ast.Module) -> tuple[set[str], bool]:
    """Names a module imports at its top level, and whether it star-imports (then any name may come from there)."""
    names: set[str] = set()
    star = False
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                star |= alias.name == "*"
                names.add((alias.asname or alias.name).split(".")[0])
    return names, star
