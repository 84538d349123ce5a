"""What a model YAML records under ``attnsurgeon_plugins``: the plugin files and classes its rows need, written by a
surgery (:func:`record`) and read back by every command and by plain Ultralytics (:func:`add_recorded`).

Reading a model file never runs code: the entries are read (a plugin file's syntax tree, a class's constructor from
its file's), and a file is imported only when a model is built with it. A YAML may name plugin files only inside its
own folder; an absolute path or one that leaves it is refused in one line, unless the user named that very file on
purpose (``--plugin``, ``-m FILE.py:Class``: :func:`attnsurgeon.sources.plugins.given`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import attnsurgeon.sources as sources
from attnsurgeon.catalog.registry import REGISTRY, ModuleSpec
from attnsurgeon.errors import PluginError
from attnsurgeon.sources.plugins import GIVEN, YAML_COMMENT, YAML_KEY, plugin_file, row_modules, unknown_modules


def recorded_entries(data: Any) -> list[str]:
    """The entries a model YAML lists under ``attnsurgeon_plugins`` (one string or a list)."""
    listed = data.get(YAML_KEY) if isinstance(data, dict) else None
    if not listed:
        return []
    return [str(i) for i in ([listed] if isinstance(listed, str) else listed)]


def recorded_file(entry: str, where: str, base: Path, yaml_name: str) -> Path:
    """The file an ``attnsurgeon_plugins`` entry names (``where``: its file part), resolved in the YAML's folder
    ``base`` only. A model file may name plugin files only inside its own folder: an absolute path, or one that
    leaves the folder, is refused in one line, unless the user named that very file on purpose (:func:`given`)."""
    folder = Path(os.path.abspath(base))
    path = Path(os.path.normpath(folder / where))  # an absolute ``where`` stays itself
    if (Path(where).is_absolute() or not path.is_relative_to(folder)) and path not in GIVEN:
        raise PluginError(
            f"{yaml_name}: its {YAML_KEY} entry {entry!r} is outside the YAML's folder, and a model file may name "
            f"plugin files only inside its own folder; to use it on purpose, name it yourself: --plugin {path} "
            f"(in Python: attnsurgeon.sources.add_files([{str(path)!r}]) before building)"
        )
    return path


def absolute(entry: str, base: Path) -> str:
    """An entry with its file part made absolute against ``base`` (a library class stays as it is)."""
    import attnsurgeon.sources.named_classes as named_classes

    where = named_classes.file_of(entry)
    if where is None:
        return entry
    source = named_classes.parse(entry)
    assert source is not None
    return source.text(os.path.normpath(Path(os.path.abspath(base)) / where))


def _yaml_name(data: Any) -> str:
    return Path(str(data.get("yaml_file") or "the model YAML")).name if isinstance(data, dict) else "the model YAML"


def recorded_paths(data: Any, base: Path, yaml_name: str = "") -> list[Path]:
    """The plugin files (not classes) a model YAML records under ``attnsurgeon_plugins``, in its folder ``base``."""
    name = yaml_name or _yaml_name(data)
    return [
        recorded_file(item, item, base, name)
        for item in recorded_entries(data)
        if not sources.is_source(item)  # classes: add_recorded
    ]


def add_recorded(data: Any, base: Path, needed: Iterable[str] = (), yaml_name: str = "") -> list[ModuleSpec]:
    """Add the plugins a model YAML records (read, not imported: a file runs when a model is built with it); a
    missing one is an error naming the modules that need it."""
    name = yaml_name or _yaml_name(data)
    specs = _add_classes(recorded_entries(data), base, name)
    for path in recorded_paths(data, base, name):
        if not path.is_file():
            wanted = ", ".join(sorted(set(needed))) or "its modules"
            raise PluginError(
                f"this model needs {wanted} from the plugin {path.name} (listed under {YAML_KEY}), which is not at "
                f"{path}; put the file there"
            )
        specs += sources.add(path, run=path in GIVEN)
    return specs


def add_needed(data: Any, base: Path, yaml_name: str = "") -> None:
    """Add the plugins a model YAML records when some of its modules are not known yet (torch-free, no file runs)."""
    missing = unknown_modules(row_modules(data)) if isinstance(data, dict) else []
    if missing:
        add_recorded(data, base, needed=missing, yaml_name=yaml_name)


def record(data: Any, directory: Path, flow: Any = list) -> list[str]:
    """List under ``attnsurgeon_plugins`` the plugin files the rows of a surgery's output need, relative to the
    ``directory`` it is written to (``flow`` makes the list, e.g. a flow-style YAML sequence); a new key goes after
    ``nc``, commented. Nothing when no row comes from a plugin file. Returns a warning for each entry outside
    ``directory``: reading that YAML will refuse it unless the user names the file (:func:`recorded_file`)."""
    used = [s for s in map(REGISTRY.find, row_modules(data)) if s is not None]
    files = [f for f in map(plugin_file, used) if f is not None]
    listed = recorded_for(files, directory) + _class_entries(used, directory)
    if not listed:
        return []
    if YAML_KEY in data or not hasattr(data, "insert"):
        data[YAML_KEY] = flow(listed)
    else:
        keys = list(data)
        data.insert(keys.index("nc") + 1 if "nc" in keys else 0, YAML_KEY, flow(listed), comment=YAML_COMMENT)
    outside = [e for e in listed if _leaves(e)]
    return [
        f"the output lists {entry} under {YAML_KEY}, outside its folder: a model file may name plugin files only "
        f"inside its own folder, so reading it (attnsurgeon, YOLO()) refuses that entry unless the file is named "
        f"with --plugin; keep the plugin in the output's folder or below it"
        for entry in outside
    ]


def _class_entries(specs: Iterable[ModuleSpec], directory: Path) -> list[str]:
    """The entries of the plain classes among ``specs`` (``FILE.py:Class`` relative to ``directory``, ``timm:X``)."""
    import attnsurgeon.sources.adapter as adapter

    plain = [s for s in specs if adapter.is_foreign(s)]
    if not plain:
        return []
    import attnsurgeon.sources.named_classes as named_classes

    return list(dict.fromkeys(named_classes.recorded_entry(s, directory) for s in plain))


def _leaves(entry: str) -> bool:
    """Whether an entry's file is outside the folder it is relative to (a library class is no file)."""
    import attnsurgeon.sources.named_classes as named_classes

    where = named_classes.file_of(entry)
    return where is not None and (Path(where).is_absolute() or os.path.normpath(where).split(os.sep)[0] == "..")


def with_recorded(doc: Any) -> Any:
    """A loaded model YAML (``model_doc.ModelDoc``), after adding the plugin files it lists for modules not known
    yet."""
    add_needed(doc.data, doc.path.parent, doc.path.name)
    return doc


def recorded_for(files: Iterable[Path], directory: Path) -> list[str]:
    """The ``attnsurgeon_plugins`` entries for a YAML written to ``directory``: paths relative to it, once each."""
    listed: list[str] = []
    for path in files:
        text = os.path.relpath(path.resolve(), directory.resolve())
        if text not in listed:
            listed.append(text)
    return listed


def _add_classes(items: Iterable[Any], base: Path, yaml_name: str) -> list[ModuleSpec]:
    """The classes a YAML records (``FILE.py:Class``, ``timm:Class``), files in its folder only (read, not imported)."""
    import attnsurgeon.sources.named_classes as named_classes

    out: list[ModuleSpec] = []
    for item in items:
        source = named_classes.parse(str(item)) if sources.is_source(str(item)) else None
        if source is None:
            continue
        if source.is_file:
            path = recorded_file(str(item), source.where, base, yaml_name)
            if not path.is_file():
                raise PluginError(
                    f"this model needs the class {source.cls} of {path.name} (listed under {YAML_KEY} as "
                    f"{item}), which is not at {path}; put the file there"
                )
            source = replace(source, where=str(path))
        try:
            out += sources.add(source.text())
        except PluginError as exc:
            raise PluginError(f"this model needs {item} (listed under {YAML_KEY}): {exc}") from None
    return out
