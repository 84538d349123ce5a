"""YAML hyper-parameter values: rendering them as Ultralytics writes args, and checking them against annotations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def choices_text(choices: Sequence[Any] | None) -> str:
    return f" (one of {', '.join(map(repr, choices))})" if choices else ""


def format_flow(values: Sequence[Any]) -> str:
    """Render a list the way Ultralytics YAML files write args: ``[2, 1, True, "nearest"]``, a mapping (a plain
    class's keyword args) as ``{kernel_size: 7}``."""

    def one(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {one(x)}" for k, x in v.items()) + "}"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(one(x) for x in v) + "]"
        if isinstance(v, str):
            return f'"{v}"'
        if v is None:
            return "None"
        return repr(v)

    return one(list(values))


_SCALARS: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def value_fits(value: Any, annotation: str, choices: Sequence[Any] | None) -> bool:
    """Whether a YAML value fits a hyper-parameter's annotation (``int``, ``float | None``, ``tuple[int, int]``)."""
    if choices is not None and value not in choices:
        return False
    if not annotation:
        return True
    for alt in (a.strip() for a in annotation.split("|")):
        if alt == "None" and value is None:
            return True
        base = alt.split("[", 1)[0]
        if base in _SCALARS:
            if isinstance(value, bool) and base != "bool":
                continue  # YAML true/false is not a number
            if isinstance(value, _SCALARS[base]):
                return True
        elif base in ("tuple", "list", "Sequence"):
            if isinstance(value, (list, tuple)):
                inner = alt[len(base) + 1 : -1].split(",")[0].strip() if "[" in alt else ""
                if (
                    not inner
                    or inner not in _SCALARS
                    or all(
                        isinstance(v, _SCALARS[inner]) and not (isinstance(v, bool) and inner != "bool") for v in value
                    )
                ):
                    return True
        elif base in ("Any", "object"):
            return True
    return False
