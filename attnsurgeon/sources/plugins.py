"""Plugin files: attention modules from a user's own files (``--plugin PATH.py``); installed packages add theirs
through entry points (:mod:`attnsurgeon.catalog.entry_points`).

A plugin file registers its classes with the same :func:`~attnsurgeon.catalog.registry.register_module` decorator as
the built-ins, and is read the same way: its syntax tree first (so ``list``/``info`` never import torch), the file
itself only when a class is needed. Its names are held to :mod:`attnsurgeon.catalog.name_rules`.

Each rule is checked when a plugin is added, a failure is one :class:`PluginError` line naming the plugin and the rule.
A plain ``nn.Module`` class (``FILE.py:Class``, ``timm:Class``, a file that registers nothing) is no plugin file's
module: :func:`attnsurgeon.sources.add` tells the two apart and hands such a class to :mod:`.named_classes`.

Instances of a plugin file's classes pickle as "the class ``Q`` of the plugin at ``PATH``" (:func:`rebuild`), so a
checkpoint trained with a plugin module loads in a fresh process as long as the file is at that path or in the
current directory.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import attnsurgeon.sources.source_tree as source_tree
from attnsurgeon.catalog import name_rules
from attnsurgeon.catalog.registry import IDENTITY_INIT, REGISTRY, ModuleSpec, Registry, scan_file
from attnsurgeon.core.augment_graph import AUGMENT_MODULE
from attnsurgeon.errors import PluginError, RegistryError
from attnsurgeon.sources.file_import import import_file

# The top-level key of a model YAML that lists the plugin files its rows need (relative to the YAML's directory).
YAML_KEY = "attnsurgeon_plugins"
YAML_COMMENT = "plugin files of this model's modules (see attnsurgeon)"
_FILES: dict[Path, list[ModuleSpec]] = {}  # resolved path -> specs, so adding a file twice is free


def module_name_for(path: Path) -> str:
    """A unique, stable module name for a plugin file (two files may share a stem)."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    stem = re.sub(r"\W", "_", path.stem)
    return f"attnsurgeon_plugin_{stem}_{digest}"


def add_file(path: str | Path, registry: Registry = REGISTRY, run: bool = True) -> list[ModuleSpec]:
    """Add the modules a plugin file registers; returns their specs, none for a file that registers nothing (its plain
    classes are :func:`attnsurgeon.sources.add_file_classes`). Raises PluginError naming the file and rule. ``run``
    False (a file a YAML lists): a file whose registrations cannot be read without running it is refused."""
    given = Path(path).expanduser()
    label = str(path)
    if given.suffix != ".py":
        raise PluginError(f"plugin {label}: a plugin must be a Python file (.py)")
    if not given.is_file():
        what = "is a directory" if given.exists() else "no such file"
        raise PluginError(f"plugin {label}: {what} (attnsurgeon new-module NAME writes one)")
    resolved = given.resolve()
    if resolved in _FILES:
        return _FILES[resolved]
    tree = source_tree.read(resolved, f"plugin {label}")
    module_name = module_name_for(resolved)
    try:
        specs = scan_file(resolved, module_name, tree)
    except RegistryError as exc:
        if "must be literals" not in str(exc):
            raise PluginError(f"plugin {label}: {exc}") from None
        if not run:
            raise PluginError(
                f"plugin {label}: its @register_module arguments are not literals, so only running it tells what it "
                f"registers, and a model file never runs code on reading; name it yourself: --plugin {label}"
            ) from None
        ran = _import_file(resolved, module_name, label)
        specs = [s for s in REGISTRY.specs_of_module(ran.__name__) if s.source == str(resolved)]
    if not specs:  # a file as its authors wrote it: its plain classes are no plugin's (attnsurgeon.sources.add)
        return []
    name_rules.check_free(specs, label, registry)
    registry.add_plugin(specs, lambda: _import_file(resolved, module_name, label), strict=True)
    _FILES[resolved] = specs
    return specs


def _import_file(path: Path, module_name: str, label: str) -> ModuleType:
    """Import a plugin file once (imports torch through it); its classes become picklable by path."""
    module = import_file(path, module_name, label)
    _check_classes(module, label)
    _picklable_by_path(module, path)
    return module


def _check_classes(module: ModuleType, label: str) -> None:
    from attnsurgeon.catalog.base import AttentionModule

    for spec in REGISTRY.specs_of_module(module.__name__):
        cls = getattr(module, spec.import_path.partition(":")[2])
        if not issubclass(cls, AttentionModule):
            raise PluginError(
                f"plugin {label}: {spec.name} must subclass attnsurgeon.catalog.base.AttentionModule, which passes "
                "the input channels c1 when Ultralytics builds the layer"
            )


def _picklable_by_path(module: ModuleType, path: Path) -> None:
    """Make every nn.Module class of the file pickle as (plugin path, class name) and allow it in safe loads."""
    import torch

    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, torch.nn.Module) and value.__module__ == module.__name__
    ]
    for cls in classes:
        cls.__attnsurgeon_plugin__ = str(path)  # type: ignore[attr-defined]
        cls.__reduce_ex__ = _reduce_by_path  # type: ignore[method-assign,assignment]
    allow_in_safe_load([*classes, rebuild])


def _reduce_by_path(self: Any, protocol: int) -> tuple[Any, ...]:
    cls = type(self)
    state = self.__getstate__() if hasattr(self, "__getstate__") else self.__dict__
    return (rebuild, (cls.__attnsurgeon_plugin__, cls.__qualname__), state)


def rebuild(path: str, qualname: str) -> Any:
    """Unpickling a plugin module: load the plugin file (at its recorded path, else in the current directory)."""
    recorded = Path(path)
    found = next((p for p in (recorded, Path.cwd() / recorded.name) if p.is_file()), None)
    if found is None:
        raise PluginError(
            f"module {qualname} needs the plugin {recorded.name}, which is neither at {recorded} nor in the current "
            f"directory; put {recorded.name} in one of those places"
        )
    add_file(found)
    cls = getattr(REGISTRY.import_plugin(module_name_for(found.resolve())), qualname)
    return cls.__new__(cls)


def allow_in_safe_load(objects: Iterable[Any]) -> None:
    """Allow classes (and :func:`rebuild`) in ``torch.load(weights_only=True)`` (``ULTRALYTICS_SAFE_LOAD=1``)."""
    import torch

    allowed = sorted(set(objects), key=lambda c: f"{c.__module__}.{c.__qualname__}")
    if hasattr(torch.serialization, "add_safe_globals"):
        torch.serialization.add_safe_globals(allowed)


def given(paths: Iterable[str | Path]) -> None:
    """Files the user named on purpose (``--plugin``, ``-m FILE.py:Class``): a YAML may then name them from anywhere."""
    import attnsurgeon.sources.named_classes as named_classes

    for path in paths:
        where = named_classes.file_of(str(path))
        if where is not None:
            GIVEN.add(Path(os.path.abspath(Path(where).expanduser())))


GIVEN: set[Path] = set()  # absolute paths of the files the user named on purpose in this process


def plugin_file(spec: ModuleSpec) -> Path | None:
    """The file a module comes from when it is a plugin file's (not a built-in's or an installed package's)."""
    return Path(spec.source) if spec.import_path.startswith("attnsurgeon_plugin_") else None


def unknown_modules(names: Iterable[Any], registry: Registry = REGISTRY) -> list[str]:
    """Row module names that neither Ultralytics, attnsurgeon's wrappers nor the catalog (with its plugins) defines."""
    known = name_rules.ultralytics_names() | {IDENTITY_INIT, AUGMENT_MODULE}
    return sorted(
        {
            n
            for n in names
            if isinstance(n, str)
            and not n.startswith(("nn.", "torchvision.ops."))
            and n not in known
            and registry.find(n) is None
        }
    )


def row_modules(data: Any) -> list[Any]:
    """The module names of a model YAML's rows, with the module an ``IdentityInit`` or ``Augment`` row wraps."""
    rows = [r for r in [*(data.get("backbone") or []), *(data.get("head") or [])] if isinstance(r, list) and len(r) > 3]
    wrapped = [r[3][0] for r in rows if r[2] == IDENTITY_INIT and isinstance(r[3], list) and r[3]]
    wrapped += [r[3][2] for r in rows if r[2] == AUGMENT_MODULE and isinstance(r[3], list) and len(r[3]) > 2]
    return [r[2] for r in rows] + wrapped


def shape_change(module: Any, x: Any) -> str:
    """What a module does to the shape of ``x`` ("" when it keeps it): an attention module must keep it."""
    import torch

    with torch.no_grad():
        y = module(x)
    got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
    return "" if got == tuple(x.shape) else f"changes the shape: {tuple(x.shape)} -> {got}"


def refuse_shape_change(spec: ModuleSpec) -> list[str]:
    """Before a model is built with a plugin file's module (imports torch): one line naming the plugin when the module
    changes its input's shape (:func:`attnsurgeon.sources.refuse` decides when to ask); nothing for another module."""
    if plugin_file(spec) is None:
        return []
    import torch

    torch.manual_seed(0)
    change = shape_change(REGISTRY.load_class(spec.name)(64).eval(), torch.randn(1, 64, 15, 20))
    if change:
        raise PluginError(
            f"plugin {spec.source}: {spec.name} {change}; an attention module must return a tensor shaped like its "
            "input ('attnsurgeon check-module' runs every check)"
        )
    return []
