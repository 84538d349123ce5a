"""Ultralytics' ``parse_model`` from attnsurgeon's side: reading a layer's input channels, and the wrapper that loads
the plugin files a YAML lists and refuses attention rows with several inputs (part of the Ultralytics bridge,
:mod:`attnsurgeon.ultralytics_bridge.ultra`, which installs both).

The input channels of a catalog module are read from ``parse_model``'s locals ``ch`` and ``f`` through the
constructor's caller frame. A constructor called from Ultralytics' ``tasks.py`` in any other way, or locals that are
not what this reads, mean Ultralytics changed: that is an error naming the version, never a silent shift of the YAML's
hyper-parameters into ``c1``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.core.augment_graph import AUGMENT_MODULE
from attnsurgeon.errors import PluginError, RegistryError
from attnsurgeon.sources import plugins, recorded

PARSE_MODEL_CODE: list[Any] = [None]  # the code object of Ultralytics' own parse_model (under every wrapper)


def supported_ultralytics() -> str:
    """The Ultralytics versions attnsurgeon's channel inference is written for (from the package's requirements)."""
    from importlib.metadata import PackageNotFoundError, requires  # only on this error path: ~25 ms to import

    try:
        wanted = [r for r in requires("attnsurgeon") or [] if r.startswith("ultralytics")]
    except PackageNotFoundError:
        wanted = []
    return wanted[0].split(";")[0].replace("ultralytics", "ultralytics ", 1) if wanted else "ultralytics 8.4.x"


def _cannot_infer(detail: str) -> RegistryError:
    from ultralytics import __version__

    return RegistryError(
        f"cannot infer input channels with Ultralytics {__version__}; supported: {supported_ultralytics()} "
        f"({detail}); install a supported Ultralytics or pass c1 yourself"
    )


def _tasks_file() -> str:
    from ultralytics.nn import tasks

    return tasks.__file__


def input_channels_from_parse_model(frame: FrameType) -> int | None:
    """Input channels of the layer ``parse_model`` is building, read from its locals ``ch`` and ``f``.

    ``parse_model`` calls ``m(*args)`` directly, or from a generator expression when repeats > 1. Constructors
    called deeper (a catalog module building its own parts, an Ultralytics block holding one) are not called by
    parse_model and get nothing. A constructor called from Ultralytics' ``tasks.py`` anywhere else, or a
    ``parse_model`` whose locals are not what this reads, means Ultralytics changed: that is an error, never a
    silent shift of the YAML's hyper-parameters into ``c1``.
    """
    caller = frame
    if caller.f_code.co_name == "<genexpr>" and caller.f_back is not None:
        caller = caller.f_back
    if caller.f_code is not PARSE_MODEL_CODE[0]:
        if _tasks_file() in (frame.f_code.co_filename, caller.f_code.co_filename):
            where = f"{caller.f_code.co_name}() in ultralytics/nn/tasks.py"
            raise _cannot_infer(f"{where} builds the layer, not the parse_model whose locals attnsurgeon reads")
        return None
    ch, f = caller.f_locals.get("ch"), caller.f_locals.get("f")
    if isinstance(f, list) and isinstance(ch, list):
        raise RegistryError(
            f"an attention layer reads one feature map, but this row's 'from' is {f!r}; use a single index"
        )
    if not isinstance(ch, list) or not isinstance(f, int) or isinstance(f, bool):
        raise _cannot_infer(f"parse_model's locals ch={type(ch).__name__}, f={type(f).__name__}")
    try:
        c1 = ch[f]
    except IndexError:
        raise _cannot_infer(f"ch has no entry {f}") from None
    if not isinstance(c1, int) or isinstance(c1, bool) or c1 < 1:
        raise _cannot_infer(f"ch[{f}] is {c1!r}, not a channel count")
    return c1


def _modules_needed(d: dict[str, Any]) -> list[str]:
    """Module names of a YAML dict nobody defines yet: a row's module missing from Ultralytics' namespace, or a
    module an ``IdentityInit``/``Augment`` row wraps missing from the catalog."""
    from ultralytics.nn import tasks

    rows = {r[2] for r in [*(d.get("backbone") or []), *(d.get("head") or [])] if isinstance(r, list) and len(r) > 3}
    return sorted(
        n
        for n in set(plugins.row_modules(d))
        if isinstance(n, str)
        and not n.startswith(("nn.", "torchvision.ops."))
        and n != AUGMENT_MODULE
        and n not in vars(tasks)
        and (n in rows or REGISTRY.find(n) is None)
    )


def check_rows(d: Any, register: Callable[[], Any]) -> None:
    """Before ``parse_model``: load the plugins a YAML records, and refuse a catalog row with several inputs."""
    if not isinstance(d, dict):
        return
    _load_recorded_plugins(d, register)
    for i, row in enumerate(list(d.get("backbone") or []) + list(d.get("head") or [])):
        if isinstance(row, (list, tuple)) and len(row) > 3 and isinstance(row[0], list) and REGISTRY.find(row[2]):
            raise RegistryError(
                f"layer {i} ({row[2]}): an attention layer reads one feature map, but its 'from' is {row[0]}; "
                "use a single index"
            )


def _load_recorded_plugins(d: dict[str, Any], register: Callable[[], Any]) -> None:
    """Load the plugin files a YAML records for module names nobody defines yet."""
    missing = _modules_needed(d)
    if not missing:
        return
    base = Path(str(d.get("yaml_file") or "model.yaml")).parent
    recorded.add_recorded(d, base, needed=missing)
    register()
    still = _modules_needed(d)
    if still:
        listed = recorded.recorded_paths(d, base)
        where = (
            f"none of the plugins it lists ({', '.join(p.name for p in listed)}) defines it"
            if listed
            else f"if it comes from a plugin file, list the file under '{plugins.YAML_KEY}:' in the YAML "
            "('attnsurgeon insert --plugin FILE.py' writes that)"
        )
        raise PluginError(f"module {still[0]!r} is neither an Ultralytics module nor in attnsurgeon's catalog; {where}")


def install(register: Callable[[], Any]) -> None:
    """Wrap ``tasks.parse_model`` (the models call it by its module-global name) once, outside any other wrapper."""
    from ultralytics.nn import tasks

    current = tasks.parse_model
    if not getattr(current, "__attnsurgeon_plugins__", False):

        @functools.wraps(current)
        def parse_model(d: Any, ch: Any, verbose: bool = True) -> Any:
            check_rows(d, register)
            return current(d, ch, verbose)

        parse_model.__attnsurgeon_plugins__ = True  # type: ignore[attr-defined]
        tasks.parse_model = parse_model
    PARSE_MODEL_CODE[0] = inspect.unwrap(tasks.parse_model).__code__
