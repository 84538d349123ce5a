"""Modules installed packages add to the catalog: the ``attnsurgeon.modules`` entry-point group, read once when the
catalog is first listed (:meth:`attnsurgeon.catalog.registry.Registry.specs`). A broken entry point is skipped with
a warning naming it, so it never disables the built-in catalog."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import attnsurgeon.catalog.name_rules as name_rules
from attnsurgeon.catalog.scan import scan_file
from attnsurgeon.catalog.spec import ModuleSpec
from attnsurgeon.core import diskcache
from attnsurgeon.errors import PluginError, RegistryError, first_line

ENTRY_POINT_GROUP = "attnsurgeon.modules"


def installed_entry_points() -> tuple[tuple[str, str], ...]:
    """(name, value) of every installed ``attnsurgeon.modules`` entry point. Cached on disk, keyed by the folders on
    ``sys.path``: installing or removing a distribution adds or removes its metadata folder in one of them. The
    script's own folder (``sys.path[0]``, the current one under ``python -m``) is left out of the key: every output
    written there would change it, and no distribution is installed there."""
    searched = sys.path if sys.flags.safe_path else sys.path[1:]
    folders = [p for p in dict.fromkeys(searched) if p and os.path.isdir(p)]
    return diskcache.cached("entry-points", [*folders, Path(__file__)], _read_entry_points)


def _read_entry_points() -> tuple[tuple[str, str], ...]:
    from importlib.metadata import entry_points  # ~25 ms to import: only when the cache has no answer

    return tuple((ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP))


def discover(registry: Any) -> None:
    """Add the modules of every ``attnsurgeon.modules`` entry point; a broken one becomes a warning naming it."""
    for ep_name, ep_value in installed_entry_points():
        module_name = ep_value.partition(":")[0].strip()
        label = f"entry point {ep_name!r} ({ep_value})"
        try:
            specs = _entry_point_specs(module_name, registry)
            if not specs:
                raise PluginError(f"plugin {label}: registers no module with @register_module")
            name_rules.check_free(specs, label, registry)
        except Exception as exc:
            why = first_line(exc, typed=False)
            message = why if why.startswith(f"plugin {label}") else f"plugin {label}: {why}"
            registry.plugin_warnings.append(f"{message}; skipped")
            continue
        registry.add_plugin(specs, lambda name=module_name: importlib.import_module(name), strict=False)


def _entry_point_specs(module_name: str, registry: Any) -> list[ModuleSpec]:
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise PluginError(f"cannot find the module {module_name}")
    try:
        return scan_file(Path(spec.origin), module_name)
    except RegistryError as exc:
        if "must be literals" not in str(exc):
            raise
    module = importlib.import_module(module_name)  # registrations that are code: only running it tells
    return registry.specs_of_module(module.__name__)
