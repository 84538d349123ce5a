"""The module registry: what the catalog holds, readable without importing torch.

Built-in modules live one per file in this package and register with the :func:`register_module` decorator. So that
``list``, ``info`` and ``insert --no-verify`` never pay for importing torch, the built-in entries are read from the
source files' syntax trees (the decorator's keyword arguments and the ``__init__`` signature must be literals); the
real classes are imported only when a model is built. Plugins register at run time through the same decorator.
A test keeps the two views equal for every built-in entry.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attnsurgeon.catalog.entry_points as entry_points
from attnsurgeon.catalog.argcheck import check_names, limits_from
from attnsurgeon.catalog.scan import CATALOG_DIR, scan_builtins, scan_file
from attnsurgeon.catalog.spec import (
    C1_FIRST,
    CATEGORIES,
    IDENTITY_INIT,
    META_FIELDS,
    MISSING,
    RESERVED_ATTRIBUTES,
    ArgSpec,
    ModuleSpec,
)
from attnsurgeon.core.graph import SHAPE_KEEPING_MODULES
from attnsurgeon.core.names import close_names
from attnsurgeon.errors import PluginError, RegistryError, UnknownModuleError

__all__ = [
    "CATALOG_DIR",
    "CATEGORIES",
    "IDENTITY_INIT",
    "META_FIELDS",
    "REGISTRY",
    "RESERVED_ATTRIBUTES",
    "ArgSpec",
    "ModuleSpec",
    "Registry",
    "register_module",
    "scan_file",
    "spec_from_class",
]


# --------------------------------------------------------------------------------------------------------------------
# Run-time registration (built-ins when their file is imported, and plugins)

_RUNTIME: dict[str, tuple[ModuleSpec, type]] = {}  # canonical name -> (spec, class)


def register_module(
    *,
    category: str,
    paper: str,
    venue: str,
    year: int,
    link: str,
    reference: str,
    name: str | None = None,
    aliases: Sequence[str] = (),
    deviations: Sequence[str] = (),
    constraints: Sequence[str] = (),
    arg_help: dict[str, str] | None = None,
    choices: dict[str, Sequence[Any]] | None = None,
    ranges: dict[str, dict[str, Any]] | None = None,
    fork_args: Sequence[str] = (),
    fork_defaults: dict[str, Any] | None = None,
) -> Callable[[type], type]:
    """Class decorator that adds an attention module to the registry.

    The class constructor must be ``(c1, *hyper)``: input channels first, then hyper-parameters with defaults.
    A name or alias that is already registered raises RegistryError naming both definitions. ``ranges`` declares
    valid values per hyper-parameter (attnsurgeon.catalog.argcheck); ``fork_args`` the order in which forked
    Ultralytics YAMLs list them after the channel count (``attnsurgeon adopt`` reads rows that way); ``fork_defaults``
    the defaults forks commonly give a hyper-parameter where the catalog's differs (``adopt`` says so for a row that
    relies on it).
    """

    def decorate(cls: type) -> type:
        spec = spec_from_class(
            cls,
            name=name or cls.__name__,
            meta=dict(category=category, paper=paper, venue=venue, year=year, link=link, reference=reference),
            aliases=tuple(aliases),
            deviations=tuple(deviations),
            constraints=tuple(constraints),
            arg_help=dict(arg_help or {}),
            choices={k: tuple(v) for k, v in (choices or {}).items()},
            ranges=ranges,
            fork_args=tuple(fork_args),
            fork_defaults=tuple((fork_defaults or {}).items()),
        )
        _add_runtime(spec, cls)
        cls.spec = spec
        return cls

    return decorate


def spec_from_class(
    cls: type,
    *,
    name: str,
    meta: dict[str, Any],
    aliases: tuple[str, ...] = (),
    deviations: tuple[str, ...] = (),
    constraints: tuple[str, ...] = (),
    arg_help: dict[str, str] | None = None,
    choices: dict[str, tuple[Any, ...]] | None = None,
    ranges: dict[str, dict[str, Any]] | None = None,
    fork_args: tuple[str, ...] = (),
    fork_defaults: tuple[tuple[str, Any], ...] = (),
) -> ModuleSpec:
    arg_help = arg_help or {}
    choices = choices or {}
    where = f"{cls.__module__}:{cls.__qualname__}"
    if meta["category"] not in CATEGORIES:
        raise RegistryError(f"{where}: category {meta['category']!r} is not one of {', '.join(CATEGORIES)}")
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # drop self
    if not params or params[0].name != "c1":
        raise RegistryError(f"{where}: {C1_FIRST}")
    limits = limits_from(ranges, [p.name for p in params[1:]], where)
    args = []
    for p in params[1:]:
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY):
            raise RegistryError(f"{where}: hyper-parameter {p.name!r} must be positional (YAML args are a list)")
        annotation = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        default = MISSING if p.default is inspect.Parameter.empty else p.default
        limit = limits.get(p.name, ())
        args.append(ArgSpec(p.name, default, str(annotation), arg_help.get(p.name, ""), choices.get(p.name), limit))
    check_names(where, {a.name for a in args}, arg_help, fork_args, [n for n, _ in fork_defaults])
    doc = inspect.getdoc(cls) or ""
    return ModuleSpec(
        name=name,
        aliases=aliases,
        summary=doc.strip().splitlines()[0] if doc.strip() else "",
        deviations=deviations,
        constraints=constraints,
        args=tuple(args),
        fork_args=fork_args,
        fork_defaults=fork_defaults,
        import_path=f"{cls.__module__}:{cls.__qualname__}",
        source=inspect.getsourcefile(cls) or cls.__module__,
        **meta,
    )


def _add_runtime(spec: ModuleSpec, cls: type) -> None:
    taken = {n.lower(): (canon, s) for canon, (s, _) in _RUNTIME.items() for n in (s.name, *s.aliases)}
    for candidate in (spec.name, *spec.aliases):
        hit = taken.get(candidate.lower())
        if hit and hit[1].import_path != spec.import_path:
            raise RegistryError(
                f"module name {candidate!r} is registered twice: by {hit[1].import_path} ({hit[1].source}) "
                f"and by {spec.import_path} ({spec.source})"
            )
    _RUNTIME[spec.name] = (spec, cls)


class Registry:
    """Names to module specs: the built-in catalog (read from source), plugins, and anything registered at run time."""

    def __init__(self) -> None:
        self._builtin: dict[str, ModuleSpec] | None = None
        self._plugins: dict[str, ModuleSpec] = {}  # plugin files and entry points, read from source
        self._importers: dict[str, tuple[Callable[[], Any], bool]] = {}  # module name -> (import it, strict)
        self.plugin_warnings: list[str] = []  # broken entry points, skipped; the CLI shows these
        self._discovered = False  # installed entry points are read once, with the built-ins
        self.renamed: dict[str, str] = {}  # a foreign class's own name (lower case) -> the name it was added under
        self._index_memo: tuple[tuple[Any, ...], dict[str, ModuleSpec]] = ((), {})

    def _builtins(self) -> dict[str, ModuleSpec]:
        if self._builtin is None:
            self._builtin = scan_builtins()
        if not self._discovered:
            self._discovered = True  # before discovering: it reads specs() itself
            entry_points.discover(self)
        return self._builtin

    def is_builtin(self, name: str) -> bool:
        return name in self._builtins()

    def add_plugin(self, specs: Sequence[ModuleSpec], importer: Callable[[], Any], strict: bool) -> None:
        """Add plugin specs (already checked); ``importer`` imports their module. Errors of a non-strict plugin
        (an entry point) become warnings when every class is loaded."""
        for spec in specs:
            self._importers[spec.import_path.partition(":")[0]] = (importer, strict)
            self._plugins[spec.name] = spec

    def drop(self, name: str) -> None:
        """Forget a plugin entry (a class of a whole file that turned out not to be a module when imported)."""
        self._plugins.pop(name, None)

    def plugin_spec(self, name: str) -> ModuleSpec | None:
        """The spec of a module that comes from a plugin file or entry point, else None."""
        spec = self.find(name)
        return spec if spec is not None and spec.name in self._plugins else None

    def import_plugin(self, module_name: str) -> Any:
        return self._importers[module_name][0]()

    def specs(self) -> list[ModuleSpec]:
        merged = {**self._builtins(), **self._plugins}
        for name, (spec, _) in _RUNTIME.items():
            merged.setdefault(name, spec)
        return sorted(merged.values(), key=lambda s: s.name.lower())

    def names(self) -> list[str]:
        return [s.name for s in self.specs()]

    def shape_keeping_modules(self) -> frozenset[str]:
        """The module names whose layer outputs its single input's shape: the Ultralytics and torch ones the graph
        knows (:data:`graph.SHAPE_KEEPING_MODULES`) and every catalog (and plugin) name and alias, by contract. What
        ``remove --at`` and ``replace --at`` accept."""
        return SHAPE_KEEPING_MODULES | {n for spec in self.specs() for n in (spec.name, *spec.aliases)}

    def _index(self) -> dict[str, ModuleSpec]:
        # Rebuilt only when the set of specs changed (every row of a model looks its module up).
        self._builtins()
        state = (self._builtin, *self._plugins.values(), *(s for s, _ in _RUNTIME.values()))
        memo = self._index_memo[0]
        if len(memo) != len(state) or any(a is not b for a, b in zip(memo, state, strict=True)):
            index: dict[str, ModuleSpec] = {}
            for spec in self.specs():
                for n in (spec.name, *spec.aliases):
                    index.setdefault(n.lower(), spec)
            self._index_memo = (state, index)
        return self._index_memo[1]

    def find(self, name: str) -> ModuleSpec | None:
        return self._index().get(str(name).lower())

    def get(self, name: str) -> ModuleSpec:
        """The entry of a name the catalog holds (a source text a user typed, ``timm:Class``, is
        :func:`attnsurgeon.sources.resolve`'s)."""
        spec = self.find(name)
        if spec is None:
            raise UnknownModuleError(f"unknown module {name!r}; {self.suggestion(name)}")
        return spec

    def suggestion(self, name: str) -> str:
        index = self._index()
        shown = list(dict.fromkeys(index[key].name for key in close_names(str(name).lower(), list(index))))[:3]
        hint = f"did you mean {' or '.join(shown)}?" if shown else "no catalog name is close"
        return f"{hint} ('attnsurgeon list' shows all {len(self.specs())} modules)"

    def load_class(self, name: str) -> type:
        """Import the class of a module (imports torch)."""
        spec = self.get(name)
        if spec.name in _RUNTIME and _RUNTIME[spec.name][0].import_path == spec.import_path:
            return _RUNTIME[spec.name][1]
        module_name, _, qualname = spec.import_path.partition(":")
        if module_name in self._importers:
            module = self.import_plugin(module_name)
        else:
            module = importlib.import_module(module_name)
        cls = getattr(module, qualname, None)
        if cls is None:
            raise PluginError(f"plugin {spec.source}: defines no class {qualname} after import")
        return cls

    def load_all(self) -> dict[str, type]:
        """Import every class; returns name and alias -> class. A broken entry-point plugin becomes a warning."""
        out: dict[str, type] = {}
        for spec in self.specs():
            try:
                cls = self.load_class(spec.name)
            except Exception as exc:
                if self.find(spec.name) is None:  # dropped on import: one of a whole file's classes, no module
                    continue
                importer = self._importers.get(spec.import_path.partition(":")[0])
                if importer is None or importer[1]:
                    raise
                self.plugin_warnings.append(f"plugin module {spec.name} ({spec.source}) skipped: {exc}")
                continue
            for n in (spec.name, *spec.aliases):
                out[n] = cls
        return out

    def runtime_specs(self) -> Iterable[tuple[ModuleSpec, type]]:
        return list(_RUNTIME.values())

    def specs_of_module(self, module_name: str) -> list[ModuleSpec]:
        """The specs of the classes an imported module registered by running (its registrations were code)."""
        return [spec for spec, cls in _RUNTIME.values() if cls.__module__ == module_name]


REGISTRY = Registry()
