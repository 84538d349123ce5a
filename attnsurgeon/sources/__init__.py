"""Where a module class comes from, and the one place that turns what a user gave into catalog entries.

An entry is what ``-m``/``--module``, ``--plugin``, ``info``, ``check-module``, a sweep's module list or a line of a
model YAML's ``attnsurgeon_plugins`` names. :func:`resolve` reads one module (``-m``); :func:`add` one plugin entry
(``--plugin``, a recorded line), :func:`add_files` the ones the user named on purpose:

=================================  =========================================================  =======================
entry                              what it is                                                 read by
=================================  =========================================================  =======================
``SE``, ``cbam``                   a catalog name or alias                                    ``catalog.registry``
``mine.py``                        a plugin file that registers with ``@register_module``     :mod:`.plugins`
``mine.py`` (registers nothing)    every plain ``nn.Module`` class it defines                 :func:`add_file_classes`
``mine.py:MyAttn``                 one plain class of a file                                  :mod:`.named_classes`
``timm:CbamModule``                a library's class (``ultralytics:CBAM``, ``timm.layers:X``)  :mod:`.named_classes`
``...?channel=dim&layout=tokens``  the channel argument, the layout, named by hand            ``named_classes.parse``
=================================  =========================================================  =======================

A plain class gets a catalog entry (``adapter.ForeignSpec``) and the one generated adapter ``(c1, *hyper)``
(:mod:`.adapter`); a file's class is read from its syntax tree (:mod:`.source_tree`) and imported only when a
model is built with it (:mod:`.file_import`); before that build it is held to the module contract (:func:`refuse`).
What a YAML records is :mod:`.recorded`; which classes of a library pass the contract, :mod:`.libraries`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import attnsurgeon.sources.plugins as plugins
from attnsurgeon.catalog import name_rules
from attnsurgeon.catalog.registry import IDENTITY_INIT, REGISTRY, ModuleSpec, Registry
from attnsurgeon.core.augment_graph import AUGMENT_MODULE
from attnsurgeon.errors import PluginError, UnknownModuleError, UsageError

# named_classes is imported when a plain class is asked for (a few ms): every command resolves a catalog name.


def is_source(text: str) -> bool:
    """``FILE.py:Class``, ``LIBRARY:Class`` or ``...?channel=NAME`` (a catalog name or a plugin file is not)."""
    if ":" not in text and "?" not in text:
        return False
    import attnsurgeon.sources.named_classes as named_classes

    return named_classes.is_source(text)


def resolve(name: str, registry: Registry = REGISTRY) -> ModuleSpec:
    """The module a user named (``-m``): a catalog name or alias (plugins' included), or a class as its authors wrote
    it (``-m FILE.py:Class``, ``-m timm:CbamModule``), added now; else one line with the closest catalog names."""
    spec = registry.find(name)
    text = str(name)
    if spec is None and ":" in text and is_source(text):
        plugins.given([text])  # typed on the command line (-m FILE.py:Class): the user's own word
        spec = add(text, registry)[0]
    if spec is None:
        raise UnknownModuleError(f"unknown module {name!r}; {registry.suggestion(name)}")
    return spec


def add(entry: str | Path, registry: Registry = REGISTRY, run: bool = True) -> list[ModuleSpec]:
    """The modules one plugin entry adds (table above); a failure is one :class:`PluginError` line naming it. ``run``
    False (a file a YAML lists): a plugin file whose registrations only running it tells is refused."""
    text = str(entry)
    if is_source(text):
        return _add_class(text, registry)
    specs = plugins.add_file(entry, registry, run)
    if specs:
        return specs
    return add_file_classes(Path(entry).expanduser().resolve(), text, registry)


def add_files(entries: Iterable[str | Path], registry: Registry = REGISTRY) -> list[ModuleSpec]:
    """Add the plugins the user names on purpose (``--plugin``; a YAML may then list them from any folder)."""
    entries = list(entries)
    plugins.given(entries)
    return [spec for entry in entries for spec in add(entry, registry)]


# --------------------------------------------------------------------------------------------------------------------
# Plain classes: their catalog entries


def reserved_names() -> frozenset[str]:
    """Names an adapter must not take as they are: Ultralytics' and attnsurgeon's own layers."""
    return name_rules.ultralytics_names() | {IDENTITY_INIT, AUGMENT_MODULE}


def _register(specs: list[Any], label: str, registry: Registry) -> list[ModuleSpec]:
    import attnsurgeon.sources.named_classes as named_classes

    fresh = [s for s in specs if registry.find(s.name) is not s]
    if fresh:
        name_rules.check_free(fresh, label, registry)
        named_classes.install(fresh)
        registry.renamed.update({s.foreign_name.lower(): s.name for s in fresh if s.foreign_name != s.name})
        for spec in fresh:
            registry.add_plugin([spec], named_classes.importer(spec), strict=True)
    return list(specs)


def _add_class(text: str, registry: Registry) -> list[ModuleSpec]:
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


def refuse_renamed(name: str, registry: Registry = REGISTRY) -> None:
    """A module name a user typed that is the own name of a class added under a prefixed name (``-m SEAttention``
    after ``--plugin se.py:SEAttention``): one line saying which name to use, never the catalog's module silently."""
    renamed = registry.renamed.get(str(name).lower())
    spec = registry.find(name)
    if renamed is not None and (spec is None or spec.name != renamed):
        what = f"the catalog's {spec.name}" if spec is not None else "no module"
        raise UsageError(f"{name} names {what}; the class {name} you added is {renamed}: use -m {renamed}")


# --------------------------------------------------------------------------------------------------------------------
# Before a model is built with a user's class


def refuse(spec: ModuleSpec | None, args: Sequence[Any] = (), probe: bool = True) -> list[str]:
    """Before a model is built with a user's module (``probe``: only when verifying, it imports torch): one line when
    it breaks the model — a plain class failing the module contract (:func:`refuse_plain`), a plugin file's module
    changing its input's shape (``plugins.refuse_shape_change``); returns the probe's warnings."""
    if not probe or spec is None:
        return []
    import attnsurgeon.sources.adapter as adapter

    if adapter.is_foreign(spec):
        return refuse_plain(spec, list(args))
    return plugins.refuse_shape_change(spec)


def refuse_plain(spec: Any, args: Sequence[Any]) -> list[str]:
    """Before a model is built with a plain class: every failure of the contract that breaks the model, worst first,
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
    import attnsurgeon.sources.adapter as adapter

    forward = [text for rank, text in found.refusals if rank == probe.FORWARD]
    if (
        spec.layout in ("tokens", "qkv")
        and forward
        and not probe.forward_problem(cls(probe.CHANNELS, *args).eval(), probe.CHANNELS, (20, 20))
    ):
        return "; it is fixed to one token count at construction (it works at 20x20 only), and a detector feeds many"
    if spec.layout or not forward:
        return ""
    for layout in adapter.LAYOUTS:
        other = adapter.make_adapter(replace(spec, layout=layout), cls.foreign_class, lambda self, protocol: None)
        if not probe.run(lambda other=other: other(probe.CHANNELS, *args)).refusals:
            return f"; it works on {layout} ({adapter.LAYOUTS[layout]}): add --layout {layout}"
    return ""
