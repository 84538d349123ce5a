"""Named positions in a layer graph: where users put attention, resolved to layer indices. Pure: no torch, no I/O.

Names (all resolved on the model's own graph, combinable with indices and with each other):

- ``heads``: every feature map a head reads (Detect, Segment, Pose, OBB, RTDETRDecoder, ...; all heads of a model).
- ``backbone-end``: the last backbone layer.
- ``sppf``: the SPPF/SPPELAN/SPP layer; ``before-sppf``: the layer it reads.
- ``every:MODULE``: every layer of that module type; ``backbone:every:MODULE`` / ``head:every:MODULE`` limit it to
  one section.
- ``p3``, ``p4``, ``p5``: the deepest backbone layer at stride 8, 16, 32 (strides computed from the rows).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from attnsurgeon.core.graph import INPUT, NON_FEATURE_MAP_MODULES, Graph, Row
from attnsurgeon.errors import SurgeryError, UsageError

LEVELS = {"p3": 8, "p4": 16, "p5": 32}
SPP_MODULES = ("SPPF", "SPPELAN", "SPP")
EVERY = "every:"
SECTIONS = ("backbone", "head")
# The names a user can type, in the order help and shell completion list them ("MODULE" stands for a module name).
POSITION_NAMES: tuple[str, ...] = (
    "heads",
    "backbone-end",
    "sppf",
    "before-sppf",
    *LEVELS,
    f"{EVERY}MODULE",
    f"backbone:{EVERY}MODULE",
    f"head:{EVERY}MODULE",
)
# Layers that are not feature maps but wrap them up into predictions (a head reads the feature maps it predicts from);
# CBLinear, Index and ImagePoolingAttn are no heads, they feed other layers.
HEAD_MODULES = NON_FEATURE_MAP_MODULES - {"CBLinear", "Index", "ImagePoolingAttn"}

# How a layer's output size relates to its input's, from the row alone (Ultralytics' parse_model arguments).
_STRIDE_ARG2 = frozenset({"Conv", "GhostConv", "DWConv", "RepConv", "SCDown", "GhostBottleneck", "CBLinear", "Conv2"})
_HALVES = frozenset({"ADown", "AConv"})
_UPSAMPLES_ARG2 = frozenset({"nn.ConvTranspose2d", "DWConvTranspose2d", "ConvTranspose"})
_UNKNOWN_SIZE = frozenset({"TorchVision", "Index", "nn.Flatten"})


def names_text() -> str:
    return ", ".join(POSITION_NAMES)


def _int_arg(args: Sequence[object], i: int, default: int) -> int | None:
    value = args[i] if len(args) > i else default
    if value is None:
        return default
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _row_stride(row: Row, inputs: list[int | None]) -> int | None:
    """Output stride of a row given its inputs' strides (None: not a feature map, or not knowable from the row)."""
    m, a = row.module, row.args
    if row.module in HEAD_MODULES or m in _UNKNOWN_SIZE or m.startswith("nn.Linear"):
        return None
    source = inputs[-1] if m == "CBFuse" else inputs[0]  # CBFuse resizes every input to its last one's size
    if source is None:
        return None
    factor: int | None = 1
    if m in _STRIDE_ARG2:
        factor = _int_arg(a, 2, 1)
    elif m == "Focus":
        factor = 2 * (_int_arg(a, 2, 1) or 0) or None
    elif m in _HALVES:
        factor = 2
    elif m == "HGStem":
        factor = 4
    elif m == "ResNetLayer":  # raw args [c1, c2, s, is_first, n]: the first layer adds a stride-2 max-pool
        factor = 4 if len(a) > 3 and a[3] else _int_arg(a, 2, 1)
    elif m in ("nn.MaxPool2d", "nn.AvgPool2d"):  # [kernel, stride (default: kernel), padding]
        factor = _int_arg(a, 1, 0) or _int_arg(a, 0, 1)
    elif m == "nn.Conv2d":  # raw torch args: [c1, c2, kernel, stride]
        factor = _int_arg(a, 3, 1)
    elif m == "nn.Upsample" or m in _UPSAMPLES_ARG2:
        up = _int_arg(a, 1 if m == "nn.Upsample" else 2, 2)
        return source // up if up and source % up == 0 else None
    return source * factor if factor else None


def strides(graph: Graph) -> list[int | None]:
    """Output stride of every layer relative to the input image (the image is 1), None where not a feature map."""
    out: list[int | None] = []
    for i, row in enumerate(graph.rows):
        inputs = [1 if t == INPUT else out[t] for t in graph.absolute(i)]
        out.append(_row_stride(row, inputs))
    return out


@dataclass(frozen=True)
class Resolved:
    """Indices a list of positions resolved to, and for each name the indices it named."""

    indices: tuple[int, ...]
    names: dict[str, tuple[int, ...]] = field(default_factory=dict)


def _every(graph: Graph, module: str, section: str | None, token: str, option: str) -> list[int]:
    if not module:
        raise UsageError(f"{option} {token!r} names no module; write it like every:C3k2")
    hits = [i for i, r in enumerate(graph.rows) if r.module == module and section in (None, r.section)]
    if not hits:
        where = f" in the {section}" if section else ""
        present = sorted({r.module for r in graph.rows if section in (None, r.section)})
        close = [m for m in present if m.lower() == module.lower()]
        hint = f"; did you mean every:{close[0]}" if close else f"; modules{where}: {', '.join(present)}"
        raise SurgeryError(f"{option} {token}: no layer{where} is {module}{hint}")
    return hits


def resolve_name(graph: Graph, name: str, option: str = "--after") -> list[int]:
    """The layer indices one position name stands for in ``graph`` (sorted); a clear error if none or unknown."""
    rows = graph.rows
    backbone = [i for i, r in enumerate(rows) if r.section == "backbone"]
    if name == "heads":
        hits = sorted({t for i, r in enumerate(rows) if r.module in HEAD_MODULES for t in graph.absolute(i)} - {INPUT})
        if not hits:
            raise SurgeryError(f"{option} heads: this model has no head layer ({', '.join(sorted(HEAD_MODULES)[:4])}…)")
        return hits
    if name == "backbone-end":
        return [backbone[-1]]
    if name in ("sppf", "before-sppf"):
        spp = [i for i, r in enumerate(rows) if r.module in SPP_MODULES]
        if not spp:
            raise SurgeryError(f"{option} {name}: this model has no SPPF, SPPELAN or SPP layer")
        if name == "sppf":
            return spp
        return sorted({t for i in spp for t in graph.absolute(i) if t != INPUT})
    if name in LEVELS:
        level, stride = strides(graph), LEVELS[name]
        hits = [i for i in backbone if level[i] == stride and rows[i].module not in NON_FEATURE_MAP_MODULES]
        if not hits:
            known = sorted({s for i in backbone if (s := level[i])})
            have = f"backbone strides here: {', '.join(map(str, known))}" if known else "strides cannot be told"
            raise SurgeryError(f"{option} {name}: no backbone layer at stride {stride} ({have})")
        return [hits[-1]]
    for section in SECTIONS:
        prefix = f"{section}:{EVERY}"
        if name.startswith(prefix):
            return _every(graph, name[len(prefix) :], section, name, option)
    if name.startswith(EVERY):
        return _every(graph, name[len(EVERY) :], None, name, option)
    fixed = [n for n in POSITION_NAMES if "MODULE" not in n]
    close = difflib.get_close_matches(name, fixed, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UsageError(
        f"{option} {name!r} is not a layer index or a position; {hint}use an index or one of: {names_text()}"
    )


def _as_index(token: str) -> int | None:
    text = token.strip()
    sign = text.startswith("-")
    digits = text[1:] if sign else text
    if digits.isascii() and digits.isdigit():
        return -int(digits) if sign else int(digits)
    return None


def resolve(graph: Graph, tokens: int | str | Iterable[int | str], option: str = "--after") -> Resolved:
    """Indices for a mix of layer indices and position names (``"8"``, ``8``, ``"heads"``, ``"p4,sppf"``).

    Indices are returned as given (the surgery checks their range); names are resolved on ``graph``. Overlaps
    between different tokens are merged; the same token twice is an error.
    """
    items = [tokens] if isinstance(tokens, (int, str)) else list(tokens)
    flat: list[int | str] = []
    for item in items:
        if isinstance(item, str):
            flat.extend(part.strip() for part in item.split(","))
        else:
            flat.append(item)
    if not flat:
        raise UsageError(f"no {option} given; use a layer index or one of: {names_text()}")
    seen: set[str] = set()
    indices: list[int] = []
    names: dict[str, tuple[int, ...]] = {}
    for token in flat:
        key = str(token)
        if key in seen:
            raise SurgeryError(f"{option} {key} is given twice; give each index once")
        seen.add(key)
        if isinstance(token, bool):
            raise UsageError(f"{option} {token!r} is not a layer index")
        index = token if isinstance(token, int) else _as_index(token)
        if index is not None:
            hits = [index]
        elif not token:
            raise UsageError(f"{option} is empty; use a layer index or one of: {names_text()}")
        else:
            hits = resolve_name(graph, token, option)
            names[token] = tuple(hits)
        indices.extend(h for h in hits if h not in indices)
    return Resolved(tuple(indices), names)


def table(graph: Graph) -> dict[str, list[int] | str]:
    """What every fixed name, and ``every:M`` for each module used more than once, resolves to (or why not)."""
    counts: dict[str, int] = {}
    for r in graph.rows:
        counts[r.module] = counts.get(r.module, 0) + 1
    candidates = [n for n in POSITION_NAMES if "MODULE" not in n]
    candidates += [f"{EVERY}{m}" for m, n in counts.items() if n > 1 and m not in NON_FEATURE_MAP_MODULES]
    out: dict[str, list[int] | str] = {}
    for name in candidates:
        try:
            out[name] = resolve_name(graph, name, "position")
        except SurgeryError as exc:
            out[name] = str(exc).split(": ", 1)[-1]
    return out
