"""The public Python API; the CLI is a thin shell over it.

>>> import attnsurgeon
>>> report = attnsurgeon.insert("yolo11n.yaml", "SE", after=8, output="yolo11n-SE.yaml")  # doctest: +SKIP
>>> report.new["params"] - report.base["params"]  # doctest: +SKIP

Nothing here imports torch until a model has to be built, so ``insert(..., verify=False)`` stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnsurgeon import graph as graph_mod
from attnsurgeon import yamlio
from attnsurgeon.catalog import REGISTRY, ModuleSpec
from attnsurgeon.errors import ModelFileError, ModuleArgsError, UsageError, VerificationError
from attnsurgeon.graph import INPUT, Graph

DEFAULT_IMGSZ = 640


@dataclass
class ModelCost:
    scale: str
    params: int
    gflops: float
    gflops_source: str = "ultralytics"

    def as_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "params": self.params,
            "gflops": self.gflops,
            "gflops_source": self.gflops_source,
        }


@dataclass
class InsertReport:
    """What ``insert`` did and proved. ``checks`` is empty when verification was skipped."""

    output: Path | None
    source: Path
    module: str
    args: list[Any]
    rewire: str
    inserted: list[dict[str, int]]
    changed: list[dict[str, Any]]
    checks: list[Any] = field(default_factory=list)
    costs: dict[str, tuple[ModelCost, ModelCost]] = field(default_factory=dict)  # scale -> (base, new)
    warnings: list[str] = field(default_factory=list)
    yaml_text: str = ""

    @property
    def verified(self) -> bool:
        return bool(self.checks) and all(c.ok is not False for c in self.checks)

    @property
    def base(self) -> dict[str, Any]:
        return next(iter(self.costs.values()))[0].as_dict() if self.costs else {}

    @property
    def new(self) -> dict[str, Any]:
        return next(iter(self.costs.values()))[1].as_dict() if self.costs else {}

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "output": str(self.output) if self.output else None,
            "source": str(self.source),
            "module": self.module,
            "args": self.args,
            "rewire": self.rewire,
            "inserted": self.inserted,
            "changed": self.changed,
            "base": self.base or None,
            "new": self.new or None,
            "checks": [c.as_dict() for c in self.checks],
            "warnings": self.warnings,
        }
        if len(self.costs) > 1:
            out["scales"] = {s: {"base": b.as_dict(), "new": n.as_dict()} for s, (b, n) in self.costs.items()}
        return out


def parse_args_text(text: str | None) -> list[Any] | None:
    """``--args "[2, 1]"`` (YAML flow) -> [2, 1]; a bare ``2, 1`` works too."""
    if text is None:
        return None
    stripped = text.strip()
    if not stripped:
        return []
    if not stripped.startswith("["):
        stripped = f"[{stripped}]"
    try:
        value = yamlio.to_plain(yamlio.loads(stripped, "--args"))
    except ModelFileError as exc:
        raise ModuleArgsError(f'--args {text!r} is not a YAML list like "[2, 1]": {exc}') from exc
    if not isinstance(value, list):
        raise ModuleArgsError(f'--args {text!r} is not a list; write it like "[2, 1]"')
    return value


def resolve_scales(doc: yamlio.ModelDoc, scale: str | None) -> tuple[list[str], list[str]]:
    """Scales to verify at, and warnings. ``scale`` is None (the file's), a letter, or 'all'."""
    warnings: list[str] = []
    available = doc.scales
    if scale is not None and scale != "all" and scale not in yamlio.SCALES:
        raise UsageError(f"--scale {scale!r} is not a scale; use one of n, s, m, l, x or all")
    if not available:
        if scale not in (None, "all"):
            raise ModelFileError(f"{doc.path}: has no 'scales' section, so --scale {scale} cannot apply; drop --scale")
        return [""], warnings
    if scale == "all":
        return list(available), warnings
    if scale is not None:
        if scale not in available:
            raise ModelFileError(f"{doc.path}: has no scale {scale!r}; it has {', '.join(available)}")
        return [scale], warnings
    if doc.scale:
        if doc.scale not in available:
            raise ModelFileError(
                f"{doc.stem}: the name asks for scale {doc.scale!r}, which the YAML lacks; "
                f"it has {', '.join(available)}"
            )
        return [doc.scale], warnings
    if len(available) > 1:
        warnings.append(
            f"{doc.path.name} has no scale letter in its name, so Ultralytics builds it at the first scale "
            f"({available[0]!r}); verified at that scale"
        )
    return [available[0]], warnings


def output_path(doc: yamlio.ModelDoc, module: str, output: str | Path | None) -> Path:
    if output is not None:
        path = Path(output).expanduser()
        if path.suffix.lower() not in (".yaml", ".yml"):
            raise UsageError(f"-o {output}: the output must be a .yaml file")
        return path
    name = f"{doc.stem}-{module}.yaml"
    return Path(name) if doc.packaged else doc.path.parent / name


def module_args(module: str, args: Sequence[Any] | str | None) -> tuple[ModuleSpec, list[Any]]:
    """The catalog entry and its hyper-parameters (``--args`` text, a list, or None for the defaults), checked."""
    spec = REGISTRY.get(module)
    values = parse_args_text(args) if isinstance(args, str) or args is None else list(args)
    return spec, spec.check_args(spec.defaults() if values is None else values)


def surgery_row(spec: ModuleSpec, values: list[Any], identity_init: bool) -> tuple[str, list[Any]]:
    """Module name and args of the inserted row; identity_init wraps the module: [IdentityInit, [SE, [16]]]
    (attnsurgeon.wrappers)."""
    return ("IdentityInit", [spec.name, values]) if identity_init else (spec.name, values)


def check_imgsz(imgsz: int) -> None:
    if isinstance(imgsz, bool) or not isinstance(imgsz, int) or imgsz < 32 or imgsz % 32:
        raise UsageError(f"--imgsz {imgsz} must be a positive multiple of 32 (e.g. 640)")


def plan_insert(
    model: str | Path,
    module: str,
    after: int | Sequence[int],
    args: Sequence[Any] | str | None = None,
    rewire: str = "all",
    identity_init: bool = False,
) -> tuple[yamlio.ModelDoc, ModuleSpec, list[Any], graph_mod.SurgeryResult]:
    """The torch-free part of insert: load, check the module and its args, do the surgery on the graph."""
    doc = yamlio.load(model)
    spec, values = module_args(module, args)
    name, row_args = surgery_row(spec, values, identity_init)
    result = graph_mod.insert(doc.graph, after, name, row_args, rewire=rewire)  # type: ignore[arg-type]
    return doc, spec, values, result


def insert(
    model: str | Path,
    module: str,
    after: int | Sequence[int],
    args: Sequence[Any] | str | None = None,
    output: str | Path | None = None,
    force: bool = False,
    rewire: str = "all",
    scale: str | None = None,
    imgsz: int = DEFAULT_IMGSZ,
    verify: bool = True,
    write: bool = True,
    identity_init: bool = False,
) -> InsertReport:
    """Insert ``module`` after each layer index in ``after``; verify and write the new YAML.

    A ``.pt`` checkpoint goes to :func:`attnsurgeon.weights.insert_checkpoint` (weights moved, YAML written beside).
    ``identity_init`` wraps the module so the new layer starts as the identity. Raises an
    :class:`~attnsurgeon.errors.AttnSurgeonError` subclass for every bad input or failed check; nothing is written
    unless every check passed.
    """
    if Path(str(model)).suffix.lower() == ".pt":
        from attnsurgeon import weights

        return weights.insert_checkpoint(
            model, module, after, args, output=output, force=force, rewire=rewire, identity_init=identity_init,
            scale=scale, imgsz=imgsz, verify=verify, write=write,
        )  # fmt: skip
    doc, spec, values, result = plan_insert(model, module, after, args, rewire, identity_init)
    scales, warnings = resolve_scales(doc, scale)
    check_imgsz(imgsz)
    out = output_path(doc, spec.name, output) if write else None
    if out is not None:
        yamlio.check_output(out, force, inputs=(doc.path,))
        name_scale = yamlio.guess_scale(out)
        wanted = scales[0]
        builds_at = name_scale or (doc.scales[0] if doc.scales else "")
        if wanted and builds_at != wanted and scale != "all":
            better = yamlio.with_scale(out.stem, wanted)
            hint = f"; name it {better}{out.suffix}" if better else " (put the scale letter in the name)"
            what = f"scale letter {name_scale!r}" if name_scale else "no scale letter"
            warnings.append(
                f"{out.name} has {what} in its name, so Ultralytics will build it at scale {builds_at!r}, "
                f"not {wanted!r}{hint}"
            )
    base_cfg = doc.plain()
    new_data = yamlio.apply(doc, result, in_place=True)
    text = yamlio.dump(new_data)
    report = InsertReport(
        output=out,
        source=doc.path,
        module=spec.name,
        args=values,
        rewire=rewire,
        inserted=inserted_rows(result),
        changed=changed_rows(doc.graph, result),
        warnings=warnings,
        yaml_text=text,
    )
    if verify:
        _verify_into(report, doc, base_cfg, yamlio.to_plain(new_data), result, spec, scales, imgsz)
        failed = [c for c in report.checks if c.ok is False]
        if failed:
            first = failed[0]
            raise VerificationError(f"check '{first.name}' failed: {first.detail}; nothing was written", report.checks)
    if out is not None:
        yamlio.write_atomic(out, text)
    return report


def inserted_rows(result: graph_mod.SurgeryResult) -> list[dict[str, int]]:
    return [{"after": i.after, "index": i.index} for i in result.insertions]


def changed_rows(old_graph: Graph, result: graph_mod.SurgeryResult) -> list[dict[str, Any]]:
    """The rows whose references the surgery rewrote: old and new ``from``, and what they read now."""
    return [
        {
            "index": new,
            "module": result.graph.rows[new].module,
            "from_old": old_from,
            "from_new": new_from,
            "absolute_old": _absolute(old_graph, _old_index(result, new)),
            "absolute_new": _absolute(result.graph, new),
        }
        for new, old_from, new_from in result.changed
    ]


def _old_index(result: graph_mod.SurgeryResult, new: int) -> int:
    return next(old for old, n in result.index_map.items() if n == new)


def _absolute(graph: Graph, index: int) -> list[int | str]:
    return ["input" if t == INPUT else t for t in graph.absolute(index)]


def _verify_into(
    report: InsertReport,
    doc: yamlio.ModelDoc,
    base_cfg: dict[str, Any],
    new_cfg: dict[str, Any],
    result: graph_mod.SurgeryResult,
    spec: ModuleSpec,
    scales: list[str],
    imgsz: int,
) -> None:
    from attnsurgeon import profile, ultra, verify

    new_layers = [i.index for i in result.insertions]
    checks = report.checks
    liveness = verify.check_liveness(result.graph, new_layers)
    checks.append(liveness)
    hints = {i: _constraint_hint(spec) for i in new_layers}
    for scale in scales:
        tag = f" [{scale}]" if len(scales) > 1 else ""
        try:
            base = ultra.build_model(base_cfg, scale or None, f"{doc.stem}.yaml")
        except Exception as exc:
            raise ModelFileError(
                f"{doc.path}: the input model itself does not build at scale {scale!r}: {exc}"
            ) from exc
        try:
            new = ultra.build_model(new_cfg, scale or None, f"{doc.stem}-{spec.name}.yaml")
        except Exception as exc:
            checks.append(verify.Check("build" + tag, False, f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}"))
            return
        checks.append(verify.Check("build" + tag, True, f"{len(new.model)} layers at scale {scale or '-'}"))
        stride = ultra.model_stride(new)
        if imgsz % stride:
            fit = math.ceil(imgsz / stride) * stride
            raise UsageError(f"--imgsz {imgsz} is not a multiple of the model stride {stride}; use e.g. {fit}")
        for size in [(imgsz, imgsz), *verify.rect_sizes(imgsz, stride)]:
            check = verify.check_forward(new, size, hints)
            check.name += tag
            checks.append(check)
        train = verify.check_train_step(new, new_layers, _train_size(imgsz, stride), hints)
        train.name += tag
        checks.append(train)
        if any(c.ok is False for c in checks):
            return
        base_g = profile.ultralytics_gflops(base, imgsz)
        new_g = profile.ultralytics_gflops(new, imgsz)
        for g in (base_g, new_g):
            if g.fallback:
                report.warnings.append(f"GFLOPs: {g.source}")
        report.costs[scale] = (
            ModelCost(scale, profile.count_params(base), base_g.value, base_g.source),
            ModelCost(scale, profile.count_params(new), new_g.value, new_g.source),
        )


def _train_size(imgsz: int, stride: int) -> int:
    # One step proves the loss and gradients work; a smaller square image keeps verification quick. The full and
    # rectangular sizes are covered by the forward checks.
    return max(2 * stride, min(imgsz, 320) // stride * stride)


def _constraint_hint(spec: ModuleSpec) -> str:
    return f"{spec.name} constraints: {'; '.join(spec.constraints)}" if spec.constraints else ""


# --------------------------------------------------------------------------------------------------------------------
# show


@dataclass
class LayerInfo:
    index: int
    section: str
    from_: Any
    absolute: list[int | str]
    repeats: int
    module: str
    args: list[Any]
    out_channels: int | None
    stride: int | None
    params: int | None

    @property
    def level(self) -> str:
        if not self.stride:
            return "-"
        p = int(math.log2(self.stride)) if self.stride & (self.stride - 1) == 0 else None
        return f"P{p}/{self.stride}" if p is not None else f"/{self.stride}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "section": self.section,
            "from": self.from_,
            "from_absolute": self.absolute,
            "repeats": self.repeats,
            "module": self.module,
            "args": self.args,
            "out_channels": self.out_channels,
            "stride": self.stride,
            "level": self.level if self.stride else None,
            "params": self.params,
        }


def show(
    model: str | Path, scale: str | None = None, imgsz: int = DEFAULT_IMGSZ, build: bool = True
) -> tuple[yamlio.ModelDoc, str, list[LayerInfo], list[str]]:
    """One row per layer: references as written and absolute, and (built at ``scale``) channels, stride, params."""
    doc = yamlio.load(model)
    scales, warnings = resolve_scales(doc, scale if scale != "all" else None)
    chosen = scales[0]
    shapes: dict[int, tuple[int, ...] | None] = {}
    params: dict[int, int] = {}
    if build:
        shapes, params = _layer_shapes(doc, chosen, imgsz)
    rows = []
    for i, row in enumerate(doc.graph.rows):
        shape = shapes.get(i)
        rows.append(
            LayerInfo(
                index=i,
                section=row.section,
                from_=row.from_,
                absolute=_absolute(doc.graph, i),
                repeats=row.repeats,
                module=row.module,
                args=list(row.args),
                out_channels=shape[1] if shape and len(shape) == 4 else None,
                stride=imgsz // shape[2] if shape and len(shape) == 4 and shape[2] else None,
                params=params.get(i),
            )
        )
    return doc, chosen, rows, warnings


def _layer_shapes(
    doc: yamlio.ModelDoc, scale: str, imgsz: int
) -> tuple[dict[int, tuple[int, ...] | None], dict[int, int]]:
    import torch

    from attnsurgeon import ultra

    model = ultra.build_model(doc.plain(), scale or None, f"{doc.stem}.yaml").eval()
    shapes: dict[int, tuple[int, ...] | None] = {}
    handles = []
    for index, layer in enumerate(model.model):

        def hook(module: Any, inputs: Any, output: Any, index: int = index) -> None:
            shapes[index] = tuple(output.shape) if isinstance(output, torch.Tensor) else None

        handles.append(layer.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, imgsz, imgsz))
    finally:
        for h in handles:
            h.remove()
    params = {i: sum(p.numel() for p in layer.parameters()) for i, layer in enumerate(model.model)}
    return shapes, params
