"""Where plain ``nn.Module`` classes come from: a file as its authors wrote it, or an installed library.

A source is written ``path.py:ClassName`` (one class), ``path.py`` (every class of the file that keeps a feature
map's shape, see :mod:`attnsurgeon.sources.plugins`), ``timm:CbamModule`` / ``timm.layers:EcaModule`` or
``ultralytics:CBAM`` (a library and a class; ``timm`` and ``ultralytics`` are looked up where their layers live),
with ``?channel=NAME`` when the channel argument is named by hand (``--channel-arg``). A model YAML records the
sources its rows need under ``attnsurgeon_plugins`` (files relative to the YAML), so a fresh process rebuilds the
same adapters (:mod:`attnsurgeon.sources.adapter`) under the same names; pickled instances name their source too.

The adapter is named after the class; where that name is a built-in catalog name or alias (``CBAMBlock`` is one of
CBAM's) or an Ultralytics name, it is prefixed with where it comes from (``CbamCBAMBlock`` for ``cbam.py``,
``TimmSEModule``), and an Ultralytics class is always prefixed (``UltralyticsCBAM``): the same name in every process.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import importlib.util
import os
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import attnsurgeon.sources.adapter as adapter
import attnsurgeon.sources.source_tree as source_tree
from attnsurgeon.catalog.registry import REGISTRY
from attnsurgeon.errors import PluginError, UsageError
from attnsurgeon.sources.adapter import HOLDER_NAME, NOT_MODULE, ForeignSpec
from attnsurgeon.sources.file_import import import_file

# Where ``LIBRARY:Class`` looks besides the library itself: its layer package and that package's submodules.
LIBRARIES = {"timm": "timm.layers", "ultralytics": "ultralytics.nn.modules"}
INSTALL = {"timm": "pip install 'attnsurgeon[timm]'"}
HOLDER = ModuleType(HOLDER_NAME)  # the adapters, by name; Registry.load_class finds them here
_MADE: dict[str, tuple[ForeignSpec, type]] = {}  # source text -> (spec, adapter)
# Classes of files read from their syntax tree but not imported yet: origin -> (source, label, spec, lenient). A
# command that builds no model never imports a file; building imports them all (``holder``). A lenient entry is one
# of the classes of a whole file (``--plugin FILE.py``): one that turns out not to be a module is dropped, not an error.
_PENDING: dict[str, tuple[Source, str, ForeignSpec, bool]] = {}
_FILE_PREFIX = "attnsurgeon_foreign_"


@dataclass(frozen=True)
class Source:
    where: str  # a file path, or a module name
    cls: str | None  # None: every class of the file
    channel: str | None = None  # the channel argument named by hand
    is_file: bool = False
    layout: str | None = None  # how the class takes a feature map (adapter.LAYOUTS): tokens, channels-last, qkv

    def text(self, where: str | None = None, cls: str | None = None) -> str:
        name = cls or self.cls
        body = f"{where or self.where}:{name}" if name else (where or self.where)
        query = [f"{k}={v}" for k, v in (("channel", self.channel), ("layout", self.layout)) if v]
        return body + (f"?{'&'.join(query)}" if query else "")

    @property
    def library(self) -> str:
        return "" if self.is_file else self.where.split(".")[0]


def parse(text: str) -> Source | None:
    """A source text, or None when ``text`` is not one (a catalog name, a plugin file with no class)."""
    body, _, query = str(text).strip().partition("?")
    options = dict(item.partition("=")[::2] for item in query.split("&") if item)
    unknown = sorted(set(options) - {"channel", "layout"})
    if unknown:
        raise PluginError(f"plugin {text}: unknown option {unknown[0]!r} (write ?channel=NAME and/or ?layout=LAYOUT)")
    channel, layout = options.get("channel") or None, options.get("layout") or None
    if layout is not None and layout not in adapter.LAYOUTS:
        raise PluginError(f"plugin {text}: layout {layout!r} is not one of {', '.join(adapter.LAYOUTS)}")
    at = body.rfind(".py")
    if at > 0 and (body.endswith(".py") or body[at + 3 :].startswith(":")):
        cls = body[at + 4 :] or None
        if cls is not None and not cls.isidentifier():
            raise PluginError(f"plugin {text}: {cls!r} is not a class name (write FILE.py:ClassName)")
        return Source(body[: at + 3], cls, channel, True, layout)
    found = re.fullmatch(r"([A-Za-z_][\w.]*):([A-Za-z_]\w*)", body)
    return Source(found[1], found[2], channel, False, layout) if found else None


def file_of(text: str) -> str | None:
    """The file part of a source text or an ``attnsurgeon_plugins`` entry (``a.py:Gate?layout=tokens`` -> ``a.py``;
    ``a.py`` -> ``a.py``), None for a library class or a catalog name."""
    source = parse(str(text))
    return source.where if source is not None and source.is_file else None


def is_source(text: str) -> bool:
    """``FILE.py:Class``, ``LIBRARY:Class``, or anything with ``?channel=``: a foreign class, not a plugin file."""
    source = parse(str(text))
    return source is not None and (source.cls is not None or source.channel is not None or source.layout is not None)


def with_channel(text: str, channel_arg: str | None, layout: str | None = None) -> str:
    """``--channel-arg NAME`` and ``--layout`` applied to a source text that names neither yet; a layout for a
    catalog name (not a plain class) is one line."""
    source = parse(str(text)) if channel_arg or layout else None
    if layout is not None and layout not in adapter.LAYOUTS:
        raise UsageError(f"--layout {layout}: one of {', '.join(adapter.LAYOUTS)}")
    if source is None or (source.cls is None and not str(text).endswith(".py")):
        if layout is not None:
            raise UsageError(f"--layout {layout}: {text} is no plain nn.Module class (-m FILE.py:Class takes it)")
        return str(text)
    return replace(source, channel=source.channel or channel_arg, layout=source.layout or layout).text()


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)


def adapter_name(source: Source, cls: type | None, reserved: Iterable[str]) -> str:
    # as the user wrote it (timm:ConvBnAct is timm's alias of ConvNormAct)
    name = source.cls or (cls.__name__ if cls is not None else "")
    if source.library == "ultralytics":
        return f"Ultralytics{name}"
    taken = {n.lower() for n in reserved}
    taken |= {n.lower() for s in REGISTRY.specs() if REGISTRY.is_builtin(s.name) for n in (s.name, *s.aliases)}
    if name.lower() not in taken:
        return name
    prefix = _camel(Path(source.where).stem) if source.is_file else _camel(source.library)
    return f"{prefix}{name}"


# --------------------------------------------------------------------------------------------------------------------
# Loading classes


def _file_module(path: Path, label: str) -> ModuleType:
    """Import a file as its authors wrote it (its own imports), once; its classes pickle by path."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    stem = re.sub(r"\W", "_", path.stem)
    module_name = f"{_FILE_PREFIX}{stem}_{digest}"
    module = import_file(path, module_name, label)
    _picklable_by_path(module, path)
    return module


def _picklable_by_path(module: ModuleType, path: Path) -> None:
    for value in _module_classes(module, own=True):
        value.__attnsurgeon_source__ = str(path)  # type: ignore[attr-defined]
        value.__reduce_ex__ = _reduce_file_class  # type: ignore[method-assign,assignment]
    _allow(_module_classes(module, own=True))


def _module_classes(module: ModuleType, own: bool = False) -> list[type]:
    import torch

    return [
        value
        for value in list(vars(module).values())
        if isinstance(value, type)
        and issubclass(value, torch.nn.Module)
        and (value.__module__ == module.__name__ or not own)
    ]


def _allow(objects: Iterable[Any]) -> None:
    """Allow classes in ``torch.load(weights_only=True)`` (``ULTRALYTICS_SAFE_LOAD=1``): a checkpoint names each
    class of every layer it holds."""
    import torch

    if hasattr(torch.serialization, "add_safe_globals"):
        torch.serialization.add_safe_globals(sorted(set(objects), key=lambda c: f"{c.__module__}.{c.__qualname__}"))


def _state(self: Any) -> Any:
    return self.__getstate__() if hasattr(self, "__getstate__") else self.__dict__


def _reduce_file_class(self: Any, protocol: int) -> tuple[Any, ...]:
    cls = type(self)
    return (rebuild_file_class, (cls.__attnsurgeon_source__, cls.__qualname__), _state(self))


def _find_file(path: str, label: str) -> Path:
    """A recorded file at its path, else in the current directory."""
    recorded = Path(path).expanduser()
    found = next((p for p in (recorded, Path.cwd() / recorded.name) if p.is_file()), None)
    if found is None:
        what = "is a directory" if recorded.is_dir() else "no such file"
        raise PluginError(f"plugin {label}: {what}")
    return found.resolve()


def rebuild_file_class(path: str, qualname: str) -> Any:
    """Unpickling an instance of a class from a source file: import the file, at its path or in the current folder."""
    cls: Any = _file_module(_find_file(path, path), path)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    return cls.__new__(cls)


def library_modules(where: str) -> list[ModuleType]:
    """The modules ``LIBRARY:Class`` looks in: the library's layer package (timm.layers, ultralytics.nn.modules) and
    its submodules, then the module named itself. Raises ModuleNotFoundError when the library is not installed."""
    import pkgutil

    out = []
    layers = LIBRARIES.get(where)
    with warnings.catch_warnings():  # a library's import-time warnings (timm's FutureWarning) are not ours to show
        warnings.simplefilter("ignore")
        if layers is not None:
            package = importlib.import_module(layers)
            out.append(package)
            for info in pkgutil.iter_modules(package.__path__):
                if not info.name.startswith("_"):
                    with contextlib.suppress(Exception):  # a submodule that needs an optional dependency
                        out.append(importlib.import_module(f"{layers}.{info.name}"))
        out.append(importlib.import_module(where))
    return out


def _library_class(source: Source, label: str) -> Any:
    try:
        modules = library_modules(source.where)
    except ModuleNotFoundError as exc:
        how = INSTALL.get(source.library, f"pip install {source.library}")
        raise PluginError(f"plugin {label}: {exc.name or source.where} is not installed ({how})") from None
    found = next((getattr(m, str(source.cls)) for m in modules if hasattr(m, str(source.cls))), None)
    if found is None:
        layers = LIBRARIES.get(source.where)
        where = f"{source.where} nor {layers}" if layers else source.where
        raise PluginError(f"plugin {label}: {'neither ' if layers else ''}{where} defines {source.cls}")
    return found


def file_classes(path: Path, label: str) -> dict[str, type]:
    """The ``nn.Module`` classes a file defines itself (not the ones it imports), by name."""
    import torch

    module = _file_module(path, label)
    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, torch.nn.Module) and value.__module__ == module.__name__
    }


def load_class(source: Source, label: str) -> Any:
    if not source.is_file:
        return _library_class(source, label)
    module = _file_module(_find_file(source.where, label), label)
    cls = getattr(module, str(source.cls), None)
    if cls is None:
        own = ", ".join(file_classes(Path(str(module.__file__)), label)) or "none"
        raise PluginError(f"plugin {label}: defines no class {source.cls} (its nn.Module classes: {own})")
    return cls


# --------------------------------------------------------------------------------------------------------------------
# Adapters


def origin_of(source: Source) -> str:
    return source.text(str(_find_file(source.where, source.where))) if source.is_file else source.text()


def adapt(source: Source, label: str, reserved: Iterable[str] = (), name: str | None = None) -> ForeignSpec:
    """The spec of the adapter of one source class (made once per source; imports torch)."""
    import torch

    origin = origin_of(source)
    if origin in _MADE:
        return _MADE[origin][0]
    cls = load_class(source, label)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        what = cls.__name__ if isinstance(cls, type) else f"{source.cls} (a {type(cls).__name__})"
        raise PluginError(f"plugin {label}: {what} {NOT_MODULE}")
    given = name or adapter_name(source, cls, reserved)
    spec = adapter.spec_of(cls, name=given, origin=origin, label=f"plugin {label}", channel_arg=source.channel)
    spec = replace(spec, layout=source.layout or "")
    _MADE[origin] = (spec, adapter.make_adapter(spec, cls, _reduce_adapter))
    return spec


def pending(source: Source, label: str, reserved: Iterable[str] = (), lenient: bool = False) -> ForeignSpec:
    """The spec of a file's class read from its syntax tree, without importing the file: its name, and its
    constructor where the class defines one; the class is imported when a model is built (:func:`materialize`)."""
    path = _find_file(source.where, label)
    origin = source.text(str(path))
    if origin in _MADE:
        return _MADE[origin][0]
    if origin in _PENDING:
        return _PENDING[origin][2]
    tree = source_tree.read(path, f"plugin {label}")
    classes = source_tree.classes(tree)
    node = classes.get(str(source.cls))
    if node is None:
        imported, star = source_tree.imported_names(tree)
        if any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == source.cls for n in tree.body):
            raise PluginError(f"plugin {label}: {source.cls} (a function) {NOT_MODULE}")
        if source.cls not in imported and not star:
            own = ", ".join(classes) or "none"
            raise PluginError(f"plugin {label}: defines no class {source.cls} (its classes: {own})")
    doc = (ast.get_docstring(node) or "") if node is not None else ""
    summary = doc.strip().splitlines()[0] if doc.strip() else f"{source.cls} from {origin}"
    params = adapter.params_in_tree(node) if node is not None else None
    name = adapter_name(source, None, reserved)
    spec = adapter.spec_from_params(
        params, str(source.cls), name, origin, f"plugin {label}", source.channel, summary, str(path), pending=True
    )
    spec = replace(spec, layout=source.layout or "")
    # its own import path: Registry.load_class imports this class alone (materialize), not every pending one
    digest = hashlib.sha256(origin.encode()).hexdigest()[:12]
    spec = replace(spec, import_path=f"{HOLDER_NAME}_pending_{digest}:{name}")
    _PENDING[origin] = (replace(source, where=str(path)), label, spec, lenient)  # imported from there, whatever cwd
    return spec


def materialize(origin: str) -> ModuleType:
    """Import the class of ``origin``, read but not imported yet (a model is built with it); returns the module that
    holds the adapters. One that fails leaves the catalog, so it is said once (a lenient one silently: one of a
    whole file's classes that is no module is simply not offered)."""
    if origin in _PENDING:
        source, label, spec, lenient = _PENDING.pop(origin)
        try:
            real = adapt(source, label, name=spec.name)
        except PluginError:
            REGISTRY.drop(spec.name)
            if lenient:
                return HOLDER
            raise
        install([real])
        REGISTRY.add_plugin([real], holder, strict=True)
    return HOLDER


def importer(spec: ForeignSpec) -> Callable[[], ModuleType]:
    """What ``Registry.load_class`` calls to import a foreign class: the holder, after importing a pending one."""
    return (lambda: materialize(spec.origin)) if spec.pending else holder


def install(specs: Iterable[ForeignSpec]) -> ModuleType:
    """Put adapters where ``Registry.load_class`` finds them (after their names were checked) and allow them in
    ``torch.load(weights_only=True)``; returns the module that holds them."""
    for spec in specs:
        if spec.origin not in _MADE:  # read, not imported yet: installed when it is (materialize)
            continue
        made = _MADE[spec.origin][1]
        setattr(HOLDER, spec.name, made)
        source = parse(spec.origin)
        library = [] if source is None or source.is_file else library_modules(source.where)
        layers = [c for m in library for c in _module_classes(m)]  # the blocks a library's class is built from
        _allow([made, made.foreign_class, rebuild_adapter, rebuild_file_class, *layers])  # type: ignore[attr-defined]
    return HOLDER


def holder() -> ModuleType:
    return HOLDER


def adapter_class(spec: ForeignSpec) -> type:
    if spec.origin not in _MADE:
        materialize(spec.origin)
    return _MADE[spec.origin][1]


def _reduce_adapter(self: Any, protocol: int) -> tuple[Any, ...]:
    spec = type(self).foreign_spec
    return (rebuild_adapter, (spec.origin, spec.name), _state(self))


def rebuild_adapter(origin: str, name: str) -> Any:
    """Unpickling an adapter in a fresh process: make it again from its source, under the name it was saved with."""
    source = parse(origin)
    if source is None:
        raise PluginError(f"module {name} records the source {origin!r}, which is not FILE.py:Class or LIBRARY:Class")
    recorded = Path(source.where)
    if source.is_file and not any(p.is_file() for p in (recorded, Path.cwd() / recorded.name)):
        raise PluginError(
            f"module {name} needs the class {source.cls} of {recorded.name}, which is neither at {recorded} nor in "
            f"the current directory; put {recorded.name} in one of those places"
        )
    spec = adapt(source, origin, name=name)
    if REGISTRY.find(name) is None:
        REGISTRY.add_plugin([spec], holder, strict=True)
    install([spec])
    cls = adapter_class(spec)
    return cls.__new__(cls)


# --------------------------------------------------------------------------------------------------------------------
# Recorded in a model YAML


def recorded_entry(spec: ForeignSpec, directory: Path) -> str:
    """The ``attnsurgeon_plugins`` entry of a foreign module in a YAML written to ``directory``."""
    source = parse(spec.origin)
    assert source is not None
    if not source.is_file:
        return spec.origin
    return source.text(os.path.relpath(source.where, directory.resolve()))
