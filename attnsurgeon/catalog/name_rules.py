"""The names a module added to the catalog may take: not an Ultralytics name (``parse_model`` resolves those
first), not attnsurgeon's own layers (``IdentityInit``, ``Augment``), not a built-in's or another plugin's name or
alias. Plugin files, installed entry points and plain classes are all held to these rules when they are added."""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path
from typing import Any

from attnsurgeon.catalog.spec import IDENTITY_INIT, ModuleSpec
from attnsurgeon.core import diskcache
from attnsurgeon.core.augment_graph import AUGMENT_MODULE
from attnsurgeon.errors import PluginError


@functools.lru_cache(maxsize=1)
def ultralytics_names() -> frozenset[str]:
    """The names ``parse_model`` resolves in ``ultralytics.nn.tasks``, read from its source (no torch import; cached
    on disk while tasks.py is unchanged): its module namespace (top-level imports, classes, functions), which
    ``globals()[name]`` looks in; an import inside a function is no such name. The one reader of tasks.py: plugin
    name checks, ``new-module`` and ``adopt`` all use it."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.origin:
        return frozenset()
    tasks = Path(spec.origin).parent / "nn" / "tasks.py"
    return frozenset(diskcache.cached("ultralytics-names", [tasks, Path(__file__)], lambda: _names_in(tasks)))


def _names_in(tasks: Path) -> tuple[str, ...]:
    tree = ast.parse(tasks.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
    return tuple(sorted(names))


def check_free(specs: list[ModuleSpec], label: str, registry: Any) -> None:
    """A plugin's names and aliases must not be taken by a built-in, another plugin, Ultralytics or a wrapper."""
    taken: dict[str, str] = {}
    for spec in registry.specs():
        if spec.source != specs[0].source:
            owner = "the built-in module" if registry.is_builtin(spec.name) else f"{spec.source}'s module"
            taken[spec.name.lower()] = f"{owner} {spec.name}"
            taken.update({a.lower(): f"an alias of {owner} {spec.name}" for a in spec.aliases})
    own: dict[str, str] = {}
    for spec in specs:
        for name in (spec.name, *spec.aliases):
            what = "name" if name == spec.name else f"alias {name!r} of"
            subject = f"module {name!r}" if name == spec.name else f"{what} {spec.name}"
            if name in ultralytics_names() or name in (IDENTITY_INIT, AUGMENT_MODULE):
                clash = (
                    f"attnsurgeon's {name} layer"
                    if name in (IDENTITY_INIT, AUGMENT_MODULE)
                    else "an Ultralytics module name"
                )
                raise PluginError(f"plugin {label}: {subject} is {clash}; rename it (register_module(name=...))")
            clash = taken.get(name.lower()) or own.get(name.lower())
            if clash:
                raise PluginError(
                    f"plugin {label}: {subject} is taken by {clash}; rename it (register_module(name=...))"
                )
            own[name.lower()] = f"{spec.name} in the same file"
