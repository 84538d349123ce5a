"""Plain ``nn.Module`` classes as plugins: what ``--plugin FILE.py:Class``, ``--plugin FILE.py`` (a file that
registers nothing), ``--module timm:CbamModule`` and a YAML's recorded sources do.

:mod:`attnsurgeon.sources.plugins` hands these over here (it imports nothing of this module: this module puts itself
into ``plugins.FOREIGN`` and ``Registry.resolve_source`` when the catalog package is imported). The classes' names are
checked by the same rules as a plugin file's, and each one is probed by the module contract before a model is
built with it (:mod:`attnsurgeon.catalog.probe`).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import attnsurgeon.sources.plugins as plugins
from attnsurgeon.catalog.registry import IDENTITY_INIT, REGISTRY, ModuleSpec, Registry
from attnsurgeon.core.augment_graph import AUGMENT_MODULE
from attnsurgeon.errors import PluginError, UsageError

# sources and foreign are imported when a foreign class is asked for: every command imports the catalog package.


def is_source(text: str) -> bool:
    """``FILE.py:Class``, ``LIBRARY:Class`` or ``...?channel=NAME`` (a catalog name or a plugin file is not)."""
    if ":" not in text and "?" not in text:
        return False
    import attnsurgeon.sources.named_classes as named_classes

    return named_classes.is_source(text)


def is_foreign(spec: Any) -> bool:
    return hasattr(spec, "channel_arg")  # a catalog.foreign.ForeignSpec, told apart without importing it


def reserved_names() -> frozenset[str]:
    """Names an adapter must not take as they are: Ultralytics' and attnsurgeon's own layers."""
    return plugins.ultralytics_names() | {IDENTITY_INIT, AUGMENT_MODULE}


def _register(specs: list[Any], label: str, registry: Registry) -> list[ModuleSpec]:
    import attnsurgeon.sources.named_classes as named_classes

    fresh = [s for s in specs if registry.find(s.name) is not s]
    if fresh:
        plugins.check_names(fresh, label, registry)
        named_classes.install(fresh)
        registry.renamed.update({s.foreign_name.lower(): s.name for s in fresh if s.foreign_name != s.name})
        for spec in fresh:
            registry.add_plugin([spec], named_classes.importer(spec), strict=True)
    return list(specs)


def add(text: str, registry: Registry = REGISTRY) -> list[ModuleSpec]:
    """One class from a source text (``FILE.py:Class``, ``timm:CbamModule``, ``?channel=NAME``). A file's class is
    read from its syntax tree and imported only when a model is built with it; a library's is imported now."""
    import attnsurgeon.sources.named_classes as named_classes

    source = named_classes.parse(text)
    if source is None or source.cls is None:
        if source is not None and source.is_file:
            return add_file_classes(Path(source.where), text, registry, source.channel)
        raise PluginError(f"plugin {text}: write FILE.py:ClassName, FILE.py or LIBRARY:ClassName")
    if source.is_file and not Path(source.where).expanduser().is_file():
        what = "is a directory" if Path(source.where).is_dir() else "no such file"
        raise PluginError(f"plugin {text}: {source.where} {what}")
    if source.is_file:
        return _register([named_classes.pending(source, text, reserved_names())], text, registry)
    return _register([named_classes.adapt(source, text, reserved_names())], text, registry)


def add_file_classes(
    path: Path, label: str, registry: Registry = REGISTRY, channel: str | None = None
) -> list[ModuleSpec]:
    """Every class a file defines with a ``forward`` of its own and a constructor it can be built with (a channel
    argument, or none at all: channel-free) — a file that registers nothing with ``@register_module`` — read from its
    syntax tree; when a model is built, a class that is no ``nn.Module`` is dropped, and the module chosen is probed
    by the contract (:func:`refuse`)."""
    import attnsurgeon.sources.named_classes as named_classes
    import attnsurgeon.sources.source_tree as source_tree

    found, refused = [], []
    resolved = path.expanduser().resolve()
    for name, node in source_tree.classes(source_tree.read(resolved, f"plugin {label}")).items():
        if not any(isinstance(n, ast.FunctionDef) and n.name == "forward" for n in node.body):
            refused.append(f"{name} (no forward)")
            continue
        source = named_classes.Source(str(resolved), name, channel, True)
        try:
            found.append(named_classes.pending(source, f"{path}:{name}", reserved_names(), lenient=True))
        except PluginError as exc:
            refused.append(f"{name} ({str(exc).rpartition(': ')[2] if 'channel' not in str(exc) else 'no channel'})")
    if not found:
        which = f"; its classes: {'; '.join(refused)}" if refused else " and defines no class"
        raise PluginError(
            f"plugin {label}: registers no module and offers no attention class{which} "
            "(decorate a class with @register_module(...) from attnsurgeon.catalog, or name one: FILE.py:ClassName)"
        )
    return _register(found, label, registry)


def recorded(specs: Sequence[Any], directory: Path) -> list[str]:
    """The ``attnsurgeon_plugins`` entries of the foreign modules among ``specs``."""
    foreign = [s for s in specs if is_foreign(s)]
    if not foreign:
        return []
    import attnsurgeon.sources.named_classes as named_classes

    return list(dict.fromkeys(named_classes.recorded_entry(s, directory) for s in foreign))


def refuse(spec: Any, args: Sequence[Any]) -> list[str]:
    """Before a model is built with a foreign class: every failure of the contract that breaks the model, worst first,
    in one line; returns the warnings (a size the model never meets at 640, a gradient zero only at initialisation).
    A channel named by hand (``--channel-arg``) must set the module's width: built for 64 channels, it must not
    take 128 as well."""
    import attnsurgeon.catalog.probe as probe
    import attnsurgeon.sources.named_classes as named_classes

    cls = named_classes.adapter_class(spec)
    found = probe.run(lambda: cls(probe.CHANNELS, *args), widths=lambda c: cls(c, *args))
    if found.refusals:
        raise PluginError(f"{spec.name} ({spec.origin}): {found.line()}{_layout_hint(spec, cls, args, found)}")
    doubled = 2 * probe.CHANNELS  # a multiple: a group count divides it, a true width does not take it
    if "?channel=" in spec.origin and not probe.forward_problem(cls(probe.CHANNELS, *args).eval(), doubled, (20, 20)):
        raise PluginError(
            f"{spec.name} ({spec.origin}): --channel-arg {spec.channel_arg} does not set the module's width: built "
            f"with {spec.channel_arg}={probe.CHANNELS}, it takes {doubled}-channel input as well; leave --channel-arg "
            "out (a class without a channel argument is built with its own arguments)"
        )
    return [f"{spec.name}: {w}" for w in found.warnings]


def _layout_hint(spec: Any, cls: Any, args: Sequence[Any], found: Any) -> str:
    """What a class that fails on (B, C, H, W) needs, when the probe recognises it: a token layout under which it
    passes (``--layout tokens``); a token class that works at one size only is fixed to its token count."""
    import attnsurgeon.catalog.probe as probe
    import attnsurgeon.sources.plain_classes as plain_classes

    forward = [text for rank, text in found.refusals if rank == probe.FORWARD]
    if (
        spec.layout in ("tokens", "qkv")
        and forward
        and not probe.forward_problem(cls(probe.CHANNELS, *args).eval(), probe.CHANNELS, (20, 20))
    ):
        return "; it is fixed to one token count at construction (it works at 20x20 only), and a detector feeds many"
    if spec.layout or not forward:
        return ""
    for layout in plain_classes.LAYOUTS:
        other = plain_classes.make_adapter(replace(spec, layout=layout), cls.foreign_class, lambda self, protocol: None)
        if not probe.run(lambda other=other: other(probe.CHANNELS, *args)).refusals:
            return f"; it works on {layout} ({plain_classes.LAYOUTS[layout]}): add --layout {layout}"
    return ""


def refuse_renamed(name: str, registry: Registry = REGISTRY) -> None:
    """A module name a user typed that is the own name of a class added under a prefixed name (``-m SEAttention``
    after ``--plugin se.py:SEAttention``): one line saying which name to use, never the catalog's module silently."""
    renamed = registry.renamed.get(str(name).lower())
    spec = registry.find(name)
    if renamed is not None and (spec is None or spec.name != renamed):
        what = f"the catalog's {spec.name}" if spec is not None else "no module"
        raise UsageError(f"{name} names {what}; the class {name} you added is {renamed}: use -m {renamed}")


def resolve(name: str) -> ModuleSpec | None:
    """``Registry.get`` of a name that is a source text (``--module timm:CbamModule``, ``--module f.py:C``)."""
    if not is_source(name):
        return None
    plugins.given([name])  # typed on the command line (-m FILE.py:Class): the user's own word
    return add(name)[0]


plugins.FOREIGN.append(sys.modules[__name__])
REGISTRY.resolve_source = resolve
