"""Checking a module's YAML arguments: types, choices, and the valid ranges its registry entry declares.

Torch-free, so ``show --no-build`` and ``insert --no-verify`` catch what a build would get wrong. A registry entry
declares ranges per hyper-parameter (``ranges={"reduction": {"min": 1, "below_c1": True}}``):

- ``min`` / ``max``: inclusive bounds; ``gt``: an exclusive lower bound (a positive float);
- ``odd``: a kernel size that must be odd (every element of a list; 0 too where ``min`` is 0: off or automatic);
- ``below_c1``: a reduction ratio, group or head count that must be below the input channels;
- ``width``: a width or size of its own (a head dimension, a pixel limit) that may equal a channel count.

A value equal to the argument's default is never flagged (modules document how a default falls back on few
channels), and an int equal to the input channel count is flagged wherever a hyper-parameter other than a
``width`` is expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from attnsurgeon.catalog.values import choices_text, format_flow, value_fits
from attnsurgeon.errors import RegistryError

# The registry's ArgSpec and ModuleSpec are passed in; importing them here would make an import cycle.
ArgSpec = Any
ModuleSpec = Any

RANGE_KEYS = ("min", "max", "gt", "odd", "below_c1", "width")
CHANNEL_CAUSE = "looks like a channel count written for a modified parse_model"


def limits_from(ranges: dict[str, Any] | None, arg_names: Sequence[str], where: str) -> dict[str, tuple]:
    """The decorator's ``ranges`` checked and frozen: arg name -> sorted ((key, value), ...)."""
    out: dict[str, tuple] = {}
    for name, rules in (ranges or {}).items():
        if name not in arg_names:
            raise RegistryError(f"{where}: ranges names unknown hyper-parameter {name!r}")
        if not isinstance(rules, dict) or set(rules) - set(RANGE_KEYS):
            raise RegistryError(f"{where}: ranges[{name!r}] must be a dict with keys from {', '.join(RANGE_KEYS)}")
        out[name] = tuple(sorted(rules.items()))
    return out


def check_names(
    where: str, names: set[str], arg_help: dict[str, str], fork_args: Sequence[str], fork_defaults: Sequence[str] = ()
) -> None:
    """``arg_help``, ``fork_args`` and ``fork_defaults`` of a registry entry may only name its hyper-parameters."""
    unknown = set(arg_help) - names
    if unknown:
        raise RegistryError(f"{where}: arg_help names unknown hyper-parameters {sorted(unknown)}")
    if set(fork_args) - names or len(set(fork_args)) != len(fork_args):
        raise RegistryError(f"{where}: fork_args must name distinct hyper-parameters, got {list(fork_args)}")
    if set(fork_defaults) - names:
        unknown = set(fork_defaults) - names
        raise RegistryError(f"{where}: fork_defaults names unknown hyper-parameters {sorted(unknown)}")


def describe_limits(arg: ArgSpec) -> str:
    """``>= 1, < c1`` for ``info`` and error messages ('' when the argument declares no range)."""
    rules = dict(arg.limits)
    parts = []
    if "gt" in rules:
        parts.append(f"> {rules['gt']}")
    if "min" in rules:
        parts.append(f">= {rules['min']}")
    if "max" in rules:
        parts.append(f"<= {rules['max']}")
    if rules.get("odd"):
        parts.append("odd")
    if rules.get("below_c1"):
        parts.append("< input channels")
    return ", ".join(parts)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Problem:
    """Why one row's arguments cannot be what the module means; ``channel_like`` when a channel count explains it."""

    text: str
    channel_like: bool = False
    fork_order: bool = False


def _range_problems(arg: ArgSpec, value: Any, c1: int | None) -> list[Problem]:
    rules = dict(arg.limits)
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in (v for v in items if _number(v)):
        if "gt" in rules and not item > rules["gt"]:
            out.append(Problem(f"{arg.name}={item!r} is not above {rules['gt']}"))
        if "min" in rules and item < rules["min"]:
            out.append(Problem(f"{arg.name}={item!r} is below its minimum {rules['min']}"))
        if "max" in rules and item > rules["max"]:
            out.append(Problem(f"{arg.name}={item!r} is above its maximum {rules['max']}", item >= 8))
        zero_allowed = item == 0 and rules.get("min") == 0  # 0 switches the kernel off (or to automatic)
        if rules.get("odd") and isinstance(item, int) and item % 2 == 0 and not zero_allowed:
            out.append(Problem(f"{arg.name}={item!r} is not an odd kernel size", item >= 8 and item % 8 == 0))
        if rules.get("below_c1") and c1 is not None and item >= c1:
            # forks copy written channel counts (64 and up in every Ultralytics model); a small value is just too big
            out.append(Problem(f"{arg.name}={item!r} is not below the input channels ({c1})", item >= 64))
    return out


def problems(
    spec: ModuleSpec, values: Sequence[Any], c1: int | None = None, channels: Sequence[int] = ()
) -> list[Problem]:
    """Everything wrong with ``values`` as this module's YAML args; ``c1`` and ``channels`` (channel counts the
    input is known to have: as written, at a scale) enable the checks that need the place the row sits at."""
    values = list(values)
    required = sum(1 for a in spec.args if a.required)
    if not required <= len(values) <= len(spec.args):
        want = f"{required} to {len(spec.args)}" if required != len(spec.args) else str(required)
        extra = len(values) > len(spec.args) and any(v in channels or v == c1 for v in values if _number(v))
        return [Problem(f"takes {want} argument(s) but got {len(values)} ({format_flow(values)})", extra)]
    out: list[Problem] = []
    for arg, value in zip(spec.args, values, strict=False):
        if not value_fits(value, arg.annotation, arg.choices):
            choices = choices_text(arg.choices)
            channel = _number(value) and (value in channels or value == c1)
            out.append(
                Problem(
                    f"argument {arg.name!r} got {value!r} ({type(value).__name__}), which does not fit "
                    f"{arg.annotation or 'its type'}{choices}",
                    channel,
                )
            )
            continue
        if not arg.required and _same(value, arg.default):
            continue  # a default is always allowed: the module documents how it falls back
        channel = isinstance(value, int) and not isinstance(value, bool) and (value in channels or value == c1)
        if channel and not dict(arg.limits).get("width"):
            out.append(Problem(f"{arg.name}={value!r} is the input's channel count where {arg.name} is expected", True))
            continue
        out.extend(_range_problems(arg, value, c1))
    return out


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, bool) != isinstance(default, bool):
        return False
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) == list(default)
    return bool(value == default)


def fork_reading(spec: ModuleSpec, values: Sequence[Any]) -> list[Any] | None:
    """The catalog args that ``values`` mean under the forks' argument order (``spec.fork_args``), or None when that
    order does not apply (no fork order, a full catalog row, or values that do not fit it)."""
    values = list(values)
    if not spec.fork_args or len(values) > len(spec.fork_args) or len(values) >= len(spec.args):
        return None
    by_name = {a.name: a for a in spec.args}
    chosen = dict(zip(spec.fork_args, values, strict=False))
    reading = [chosen.get(a.name, a.default) for a in spec.args]
    for name, value in chosen.items():
        arg = by_name[name]
        if not value_fits(value, arg.annotation, arg.choices) or _range_problems(arg, value, None):
            return None
    return reading


def ambiguity(spec: ModuleSpec, values: Sequence[Any]) -> Problem | None:
    """A short row that means something else under the forks' argument order (``CBAM [7]``: kernel 7 there)."""
    reading = fork_reading(spec, values)
    if reading is None:
        return None
    as_catalog = list(values) + [a.default for a in spec.args[len(values) :]]
    if reading == as_catalog:
        return None
    fork = ", ".join(f"{n}={v!r}" for n, v in zip(spec.fork_args, values, strict=False))
    here = ", ".join(f"{a.name}={v!r}" for a, v in zip(spec.args, values, strict=False))
    return Problem(
        f"{format_flow(values)} means {fork} in the forks' {spec.name}(c1, {', '.join(spec.fork_args)}) but "
        f"{here} here; write all {len(spec.args)} arguments ({format_flow(reading)} for the forks' meaning)",
        fork_order=True,
    )
