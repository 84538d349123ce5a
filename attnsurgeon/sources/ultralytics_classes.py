"""Ultralytics' own modules as ``parse_model`` calls them, read from its source with ``ast`` (no torch, no import):
a class's constructor (``ultralytics/nn/modules``), the ``assert a == b`` its constructor makes, and whether
``parse_model`` passes it ``(c1, c2, *args[1:])`` (``base_modules``) and the repeats (``repeat_modules``).

``adopt`` checks a fork row named like an Ultralytics module against it: a YOLOv5 fork's ``PSA [c]`` is polarized
self-attention there, YOLOv10's ``PSA(c1, c2, e)`` here; a row whose args do not fit is never passed on as it is.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnsurgeon.catalog.values import format_flow
from attnsurgeon.sources.adapter import params_in_tree


@dataclass(frozen=True)
class UltralyticsClass:
    name: str
    file: str  # ultralytics/nn/modules/block.py
    params: tuple[inspect.Parameter, ...]
    equal: tuple[tuple[str, str], ...]  # ``assert c1 == c2`` in the constructor
    base: bool  # parse_model calls it (c1, c2=args[0] scaled, *args[1:])
    repeat: bool  # ... with the repeats inserted third

    def signature(self) -> str:
        plain = (p.replace(annotation=inspect.Parameter.empty) for p in self.params)
        return f"{self.name}({', '.join(map(str, plain))})"

    def call(self, args: Sequence[Any]) -> str:
        """How parse_model calls it with the YAML ``args``, in words."""
        if not self.base:
            return f"{self.name}({format_flow(list(args))[1:-1]})"
        rest = [*(["n"] if self.repeat else []), *map(repr, args[1:])]
        return f"{self.name}(c1, {args[0] if args else '?'}{''.join(', ' + r for r in rest)})"


def _modules_dir() -> Path | None:
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "nn"


@functools.lru_cache(maxsize=1)
def _read() -> tuple[dict[str, tuple[ast.ClassDef, str]], frozenset[str], frozenset[str]]:
    """Every class of ``ultralytics/nn/modules`` (first definition), and parse_model's base and repeat sets."""
    folder = _modules_dir()
    if folder is None:
        return {}, frozenset(), frozenset()
    classes: dict[str, tuple[ast.ClassDef, str]] = {}
    for path in sorted((folder / "modules").glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, (node, f"ultralytics/nn/modules/{path.name}"))
    sets: dict[str, frozenset[str]] = {}
    try:
        tasks = ast.parse((folder / "tasks.py").read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        tasks = ast.Module(body=[], type_ignores=[])
    for node in ast.walk(tasks):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("base_modules", "repeat_modules"):
                sets[name] = frozenset(n.id for n in ast.walk(node.value) if isinstance(n, ast.Name))
    return classes, sets.get("base_modules", frozenset()), sets.get("repeat_modules", frozenset())


def find(name: str) -> UltralyticsClass | None:
    """The Ultralytics class ``name`` as parse_model calls it; None when ``ultralytics/nn/modules`` has no such class
    or its constructor is inherited."""
    classes, base, repeat = _read()
    if name not in classes:
        return None
    node, file = classes[name]
    params = params_in_tree(node)
    if params is None:
        return None
    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    equal = []
    for stmt in init.body if init is not None else []:
        test = stmt.test if isinstance(stmt, ast.Assert) else None
        if isinstance(test, ast.Compare) and isinstance(test.ops[0], ast.Eq) and len(test.comparators) == 1:
            a, b = test.left, test.comparators[0]
            if isinstance(a, ast.Name) and isinstance(b, ast.Name):
                equal.append((a.id, b.id))
    return UltralyticsClass(name, file, tuple(params), tuple(equal), name in base, name in repeat)


def _number_expected(param: inspect.Parameter) -> bool:
    default, note = param.default, str(param.annotation)
    typed = note in ("int", "float") or (isinstance(default, (int, float)) and not isinstance(default, bool))
    return typed and not isinstance(default, bool)


def misfit(cls: UltralyticsClass, args: Sequence[Any], c1: int | None) -> str:
    """Why ``args`` (a YAML row's) do not fit ``cls`` as parse_model calls it with input channels ``c1`` (as
    written: the numbers a fork copies); "" when they fit."""
    if cls.base and not args:
        return "it gets no output channel count (args[0])"
    if cls.base and (not isinstance(args[0], int) or isinstance(args[0], bool)):
        return f"its first arg {args[0]!r} is not the output channel count parse_model reads there"
    call = [c1, args[0], *([1] if cls.repeat else []), *args[1:]] if cls.base else list(args)
    positional = [p for p in cls.params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in cls.params)
    if len(call) > len(positional) and not varargs:
        return f"that is {len(call)} positional arguments where it takes at most {len(positional)}"
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    if len(call) < len(required):
        return f"that is {len(call)} positional arguments where it needs {len(required)}"
    bound = dict(zip((p.name for p in positional), call, strict=False))
    for param in positional:
        value = bound.get(param.name)
        if isinstance(value, bool) and _number_expected(param):
            return f"{param.name}={value!r} is a flag where {param.name} is a number"
    for a, b in cls.equal:
        x, y = bound.get(a), bound.get(b)
        if isinstance(x, int) and isinstance(y, int) and x != y:
            return f"its constructor asserts {a} == {b}, and here {a}={x}, {b}={y}"
    return ""
