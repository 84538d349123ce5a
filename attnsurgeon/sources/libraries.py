"""Which classes of an installed library (timm, Ultralytics) can be inserted between layers: computed, never guessed
from names (imports torch and the library).

Every public ``nn.Module`` class of the library's layer package (``timm.layers``, ``ultralytics.nn.modules``, and
their submodules) whose constructor has a channel argument is adapted (:mod:`attnsurgeon.sources.adapter`)
and held
to the module contract on its defaults (:func:`attnsurgeon.catalog.probe.problem`: shape kept at every size the
checks use, bfloat16, gradients, determinism). The result is cached on disk like the catalog scan, keyed by the
library's files and this code, so ``list --source timm`` pays for the probes once per installed version.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from pathlib import Path
from typing import Any

import attnsurgeon.catalog.probe as probe
import attnsurgeon.sources.named_classes as named_classes
from attnsurgeon.core import diskcache
from attnsurgeon.errors import PluginError, UsageError
from attnsurgeon.sources.adapter import channel_param

KNOWN = tuple(named_classes.LIBRARIES)


def _files(library: str) -> list[Path]:
    """The files the answer depends on: the library's layer package and the code that computes it."""
    top, *rest = named_classes.LIBRARIES[library].split(".")
    spec = importlib.util.find_spec(top)  # a top-level name: nothing is imported (a submodule's would import it)
    if spec is None or not spec.submodule_search_locations:
        raise PluginError(
            f"{library} is not installed ({named_classes.INSTALL.get(library, f'pip install {library}')})"
        )
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    here = Path(__file__).resolve().parent
    code = [*(here / f"{m}.py" for m in ("libraries", "named_classes", "adapter")), Path(probe.__file__).resolve()]
    return [*sorted(folder.rglob("*.py")), *code]


def candidates(library: str) -> dict[str, type]:
    """Public nn.Module classes defined in the library's layer package, by name (first definition wins)."""
    import torch

    found: dict[str, type] = {}
    seen: set[int] = set()
    for module in named_classes.library_modules(library)[:-1]:  # the layer package and its submodules
        for name, value in sorted(vars(module).items()):
            if (
                isinstance(value, type)
                and issubclass(value, torch.nn.Module)
                and not name.startswith("_")
                and value.__module__.startswith(f"{library}.")
                and id(value) not in seen
                and name not in found
            ):
                seen.add(id(value))
                found[name] = value
    return found


def _judge(library: str, name: str, cls: type, reserved: frozenset[str]) -> dict[str, Any] | None:
    """One class: None when its constructor has no channel argument (not an attention candidate at all: a library's
    channel-free classes are mostly plumbing, Concat, Identity; -m LIBRARY:Class still takes one)."""
    text = f"{library}:{name}"
    try:
        if not channel_param(cls, None, text):
            return None
    except PluginError:
        return None
    entry: dict[str, Any] = {"source": text, "name": "", "class": f"{cls.__module__}.{cls.__qualname__}"}
    try:
        spec = named_classes.adapt(named_classes.Source(library, name), text, reserved)
    except PluginError as exc:
        return {**entry, "ok": False, "reason": str(exc).removeprefix(f"plugin {text}: "), "args": ""}
    entry.update(name=spec.name, args=", ".join(a.render() for a in spec.args))
    required = [a.name for a in spec.args if a.required]
    if required:
        return {**entry, "ok": False, "reason": f"needs {', '.join(required)} (no default)"}
    adapter = named_classes.adapter_class(spec)
    why = probe.problem(lambda: adapter(probe.CHANNELS))
    return {**entry, "ok": not why, "reason": why}


def _scan(library: str, reserved: frozenset[str]) -> tuple[dict[str, Any], ...]:
    import torch

    out = []
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        threads = torch.get_num_threads()
        for name, cls in candidates(library).items():
            try:
                entry = _judge(library, name, cls, reserved)
            except Exception as exc:  # a class whose constructor or signature misbehaves is a refusal, not a crash
                entry = {"source": f"{library}:{name}", "name": "", "class": name, "args": "", "ok": False}
                entry["reason"] = probe.first_line(exc)
            finally:
                torch.set_num_threads(threads)
            if entry is not None:
                out.append(entry)
    return tuple(out)


def scan(library: str, reserved: frozenset[str]) -> list[dict[str, Any]]:
    """Every class of ``library`` with a channel argument: its source text, adapter name, args, and whether it
    passes the contract (``reason`` when not). Cached on disk while the library and this code are unchanged."""
    if library not in KNOWN:
        raise UsageError(f"--source {library!r} is not a library attnsurgeon scans; use one of: {', '.join(KNOWN)}")
    files = _files(library)
    return list(diskcache.cached(f"library-{library}", files, lambda: _scan(library, reserved)))
