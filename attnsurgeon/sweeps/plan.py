"""What a sweep covers: the :class:`SweepPlan` a user asks for, its modules, positions and hyper-parameter sets
parsed, and the variants named. Pure: no torch.

Variant names are systematic: ``<model>-<Module>[_<arg>...]-<after|in><position>`` (``yolo11n-SE-after8``,
``yolo11n-SE_8-after8`` with an args grid, ``yolo11n-CBAM-after4+6+8`` for one variant with three new layers).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnsurgeon import sources
from attnsurgeon.catalog import CATEGORIES, REGISTRY, ModuleSpec
from attnsurgeon.core import graph as graph_mod
from attnsurgeon.core.sizes import DEFAULT_IMGSZ
from attnsurgeon.errors import UsageError
from attnsurgeon.ops import surgery as api


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep compares and how: every variant (module x position x args) of ``model``, costed at ``scale`` and
    ``imgsz`` on ``device``, optionally trained on ``train`` (a data YAML) from ``weights``; results in ``output``."""

    model: str | Path
    modules: str | Sequence[str]
    at: str | int | Sequence[str | int]
    output: str | Path
    op: str = "insert"  # insert or augment
    args_grid: Sequence[str] | None = None
    scale: str | None = None
    imgsz: int = DEFAULT_IMGSZ
    device: str = "cpu"
    checks: str = "layer"  # layer or model
    latency: str = "delta"  # delta or full
    runs: int | None = None
    train: str | Path | None = None
    epochs: int = 1
    batch: int = 16
    train_imgsz: int | None = None
    train_device: str | None = None
    weights: str | Path | None = None
    identity_init: bool = True
    formats: str | Sequence[str] | None = None  # onnx,torchscript,openvino,ncnn: checked and timed deployed


def parse_modules(text: str | Sequence[str]) -> list[ModuleSpec]:
    """``SE,CBAM`` | ``all`` | ``category:channel`` (items may be mixed) -> catalog entries, each once, in order."""
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) for t in str(t).split(",")]
    specs: list[ModuleSpec] = []
    for item in filter(None, items):
        if item.lower() == "all":
            specs += REGISTRY.specs()
        elif item.lower().startswith("category:"):
            wanted = item.split(":", 1)[1].strip()
            found = [s for s in REGISTRY.specs() if s.category == wanted]
            if not found:
                raise UsageError(f"--modules {item}: no category {wanted!r}; use one of {', '.join(CATEGORIES)}")
            specs += found
        else:
            specs.append(sources.resolve(item))
    if not specs:
        raise UsageError("--modules is empty; give names (SE,CBAM), all, or category:channel")
    return list({s.name: s for s in specs}.values())


def parse_at(text: str | int | Sequence[str | int]) -> list[str]:
    """``8,10,heads`` -> ['8', '10', 'heads']; ``4+6+8`` is one variant with three insertions."""
    items = [text] if isinstance(text, (str, int)) else list(text)
    ats = [p.strip() for item in items for p in str(item).split(",") if p.strip()]
    if not ats:
        raise UsageError("--at is empty; give layer indices (8,10) or named positions (heads)")
    return list(dict.fromkeys(ats))


def parse_args_grid(items: Sequence[str] | None, specs: Sequence[ModuleSpec]) -> dict[str, list[list[Any]]]:
    """``SE=[8]|[16]`` (repeatable, one per module) -> {'SE': [[8], [16]]}, each set checked against the signature."""
    grid: dict[str, list[list[Any]]] = {}
    names = {s.name for s in specs}
    for item in items or ():
        module, sep, rest = item.partition("=")
        if not sep or not rest.strip():
            raise UsageError(f'--args-grid {item!r}: write MODULE=ARGS|ARGS..., e.g. "SE=[8]|[16]"')
        spec = sources.resolve(module.strip())
        if spec.name not in names:
            raise UsageError(f"--args-grid {item!r}: {spec.name} is not among --modules")
        grid[spec.name] = [spec.check_args(api.parse_args_text(part) or []) for part in rest.split("|")]
    return grid


def _tag(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(_tag(v) for v in value)
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(value)).strip("-")


@dataclass(frozen=True)
class Variant:
    name: str
    op: str  # "base", "insert" or "augment"
    module: str = ""
    category: str = ""
    args: tuple[Any, ...] = ()
    at: str = ""

    def identity(self) -> dict[str, Any]:
        return {"op": self.op, "module": self.module, "args": list(self.args), "at": self.at}


def plan(stem: str, specs: Sequence[ModuleSpec], ats: Sequence[str], op: str,
         grid: dict[str, list[list[Any]]]) -> list[Variant]:  # fmt: skip
    """The base, then every module x args x position, named ``<stem>-<Module>[_<arg>...]-<after|in><position>``
    (args only with an args grid; a list argument is joined by x: ``_5x5``)."""
    variants = [Variant(stem, "base")]
    where = "after" if op == "insert" else "in"
    for spec in specs:
        for values in grid.get(spec.name, [spec.defaults()]):
            args_tag = "".join(f"_{_tag(v)}" for v in values) if spec.name in grid else ""
            for at in ats:
                sep = "" if at[0].isdigit() else "-"
                name = f"{stem}-{spec.name}{args_tag}-{where}{sep}{'+'.join(_tag(part) for part in at.split('+'))}"
                variants.append(Variant(name, op, spec.name, spec.category, tuple(values), at))
    return variants


def resolve_at(graph: graph_mod.Graph, at: str) -> list[int]:
    """Layer indices of a position: ``8``, ``4+6+8``, or named positions (``heads``, ``sppf+heads``) where this
    version has :mod:`attnsurgeon.core.positions`."""
    parts = [p.strip() for p in at.split("+")]
    if all(re.fullmatch(r"-?\d+", p) for p in parts):
        return [int(p) for p in parts]
    try:
        positions = importlib.import_module("attnsurgeon.core.positions")
    except ModuleNotFoundError:
        raise UsageError(f"--at {at}: named positions are not available in this version; give layer indices") from None
    indices: list[int] = []
    for part in parts:
        resolved = positions.resolve(graph, part, "--at")
        indices += [i for i in resolved.indices if i not in indices]
    return indices
