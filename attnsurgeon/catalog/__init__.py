"""The attention catalog: one file per module, registered by decorator, listed without importing torch; plugins
(files and installed packages) join it through the same decorator."""

from attnsurgeon.catalog import foreign_plugins, plugins
from attnsurgeon.catalog.registry import CATEGORIES, REGISTRY, ArgSpec, ModuleSpec, Registry, register_module

__all__ = [
    "CATEGORIES",
    "REGISTRY",
    "ArgSpec",
    "ModuleSpec",
    "Registry",
    "foreign_plugins",
    "plugins",
    "register_module",
]
