"""The attention catalog: one file per module, registered by decorator, listed without importing torch."""

from attnsurgeon.catalog.registry import CATEGORIES, REGISTRY, ArgSpec, ModuleSpec, Registry, register_module

__all__ = ["CATEGORIES", "REGISTRY", "ArgSpec", "ModuleSpec", "Registry", "register_module"]
