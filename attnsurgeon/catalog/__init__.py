"""The attention catalog: the registry and the module contract's machinery; the built-in modules themselves are in
:mod:`attnsurgeon.catalog.modules`, one file per paper, registered by decorator and listed without importing torch.
Where else a module class can come from (plugin files, plain classes, libraries) is :mod:`attnsurgeon.sources`."""

from attnsurgeon.catalog.registry import CATEGORIES, REGISTRY, ArgSpec, ModuleSpec, Registry, register_module

__all__ = ["CATEGORIES", "REGISTRY", "ArgSpec", "ModuleSpec", "Registry", "register_module"]
