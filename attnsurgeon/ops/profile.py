"""What a model costs as deployed: params, GFLOPs (:mod:`attnsurgeon.costs.flops`), latency, memory, per layer.

:func:`profile` measures a whole model as Ultralytics deploys it (a fused copy in eval and inference mode): params and
GFLOPs as ``model.info()`` prints them, exact FLOPs at the real input size, latency (median, p90, spread) and
throughput, peak CUDA memory, and optionally the same per top-level layer. :func:`compare` sets two reports side by
side. Nothing here prints; the CLI renders.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnsurgeon.core.sizes import Size, check_imgsz, parse_imgsz
from attnsurgeon.costs.device import deploy, parse_device
from attnsurgeon.costs.flops import NOT_COUNTED, Gflops, count_params, exact_flops, ultralytics_gflops
from attnsurgeon.costs.per_layer import LayerCost, layer_costs
from attnsurgeon.costs.runtime_latency import Deployed
from attnsurgeon.costs.timing import (
    DEFAULT_RUNS,
    DEFAULT_TIME_BUDGET_S,
    MAX_LAYER_RUNS,
    Latency,
    Progress,
    device_name,
    measure_latency,
    peak_memory_mb,
)
from attnsurgeon.errors import AttnSurgeonError, DeviceError, ModelFileError, UsageError, first_line
from attnsurgeon.ultralytics_bridge import ultra


@dataclass
class LoadedModel:
    model: nn.Module
    name: str  # yolo11n, yolo11n-SE, best
    source: str  # the file read
    kind: str  # "yaml" or "checkpoint"
    scale: str = ""
    warnings: list[str] = field(default_factory=list)


def load_model(model: str | Path | nn.Module, scale: str | None = None) -> LoadedModel:
    """A model to profile: a YAML path, a packaged name (``yolo11n.yaml``), a ``.pt`` checkpoint, or a module."""
    if isinstance(model, nn.Module):
        name = Path(str(getattr(model, "yaml_file", "") or getattr(model, "yaml", {}).get("yaml_file", ""))).stem
        return LoadedModel(model, name or type(model).__name__, "<module>", "module")
    from attnsurgeon.core.yamlfile import model_doc
    from attnsurgeon.ops.loading import load_checked
    from attnsurgeon.ultralytics_bridge.checkpoints import load_checkpoint

    text = str(model)
    suffix = Path(text).suffix.lower()
    if suffix not in (".pt", ".yaml", ".yml") and Path(text).expanduser().is_file():
        raise ModelFileError(f"{text}: not a model YAML or an Ultralytics .pt checkpoint")
    if suffix == ".pt":
        if scale is not None:
            raise UsageError(f"--scale does not apply to a checkpoint ({text} was trained at one scale)")
        ckpt = load_checkpoint(text)  # the EMA when there is one, as Ultralytics loads it
        return LoadedModel(ckpt.model.float().eval(), ckpt.path.stem, str(ckpt.path), "checkpoint")
    if scale == "all":
        raise UsageError("--scale all: profile measures one scale at a time; give n, s, m, l or x")
    doc = load_checked(model, scale)  # with the plugin files it lists; forks refused
    scales, warnings = model_doc.resolve_scales(doc, scale)
    chosen = scales[0]
    try:
        built = ultra.build_model(doc.plain(), chosen or None, f"{doc.stem}.yaml")
    except AttnSurgeonError:
        raise
    except Exception as exc:
        at = f" at scale {chosen!r}" if chosen else ""
        raise ModelFileError(f"{doc.path}: the model does not build{at}: {first_line(exc)}") from exc
    return LoadedModel(built, doc.stem, str(doc.path), "yaml", chosen, warnings)


@dataclass
class ProfileReport:
    """Everything ``profile`` measured for one model. ``deployed`` (the fused model that was timed) is not in JSON."""

    model: str
    source: str
    kind: str
    scale: str
    device: str
    device_name: str
    imgsz: tuple[int, int]
    batch: int
    dtype: str
    threads: int
    fused: bool
    params: int
    gflops: Gflops
    flops_exact: int  # per image
    latency: Latency
    memory: tuple[float, float] | None
    layers: list[LayerCost] | None = None
    warnings: list[str] = field(default_factory=list)
    deployed: nn.Module | None = field(default=None, repr=False)
    inputs: torch.Tensor | None = field(default=None, repr=False)
    exported: Deployed | None = None  # --format: the exported file in its runtime
    exported_latency: Latency | None = None

    @property
    def gflops_exact(self) -> float:
        return self.flops_exact / 1e9

    @property
    def throughput(self) -> float:
        return self.batch / (self.latency.median / 1e3) if self.latency.median > 0 else float("inf")

    @property
    def memory_mb(self) -> float | None:
        return None if self.memory is None else self.memory[0]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "source": self.source,
            "kind": self.kind,
            "scale": self.scale or None,
            "device": self.device,
            "device_name": self.device_name,
            "imgsz": list(self.imgsz),
            "batch": self.batch,
            "dtype": self.dtype,
            "threads": self.threads,
            "torch": torch.__version__,
            "fused": self.fused,
            "params": self.params,
            "gflops": round(self.gflops.value, 4),
            "gflops_source": self.gflops.source,
            "gflops_exact": round(self.gflops_exact, 4),
            "flops_exact": self.flops_exact,
            "flops_per": "image",
            "not_counted": NOT_COUNTED,
            "latency_ms": self.latency.as_dict(),
            "throughput": round(self.throughput, 3),
            "memory_mb": None if self.memory is None else round(self.memory[0], 2),
            "memory_forward_mb": None if self.memory is None else round(self.memory[1], 2),
            "warnings": self.warnings,
        }
        if self.layers is not None:
            out["layers"] = [layer.as_dict() for layer in self.layers]
        if self.exported is not None and self.exported_latency is not None:
            latency = self.exported_latency
            throughput = self.batch / (latency.median / 1e3) if latency.median > 0 else float("inf")
            out["exported"] = {
                **self.exported.describe(),
                "latency_ms": latency.as_dict(),
                "throughput": round(throughput, 3),
            }
        return out


@contextlib.contextmanager
def _failures(name: str, size: tuple[int, int], batch: int, device: torch.device) -> Iterator[None]:
    """A forward pass that fails becomes one line naming the model, size and device (out of memory: what to lower)."""
    try:
        yield
    except AttnSurgeonError:
        raise
    except torch.cuda.OutOfMemoryError as exc:
        raise DeviceError(
            f"{name}: out of memory on {device} at batch {batch}, imgsz {size[0]}x{size[1]}; lower --batch or --imgsz"
        ) from exc
    except Exception as exc:
        raise ModelFileError(
            f"{name}: the forward pass fails at batch {batch}, imgsz {size[0]}x{size[1]} on {device}: {first_line(exc)}"
        ) from exc


def profile(
    model: str | Path | nn.Module | Sequence[str | Path | nn.Module],
    device: str | int | None = "cpu",
    imgsz: str | Size = 640,
    batch: int = 1,
    half: bool = False,
    runs: int | None = None,
    layers: bool = False,
    scale: str | None = None,
    warmup: int | None = None,
    budget_s: float = DEFAULT_TIME_BUDGET_S,
    progress: Progress | None = None,
    format: str | None = None,
) -> list[ProfileReport]:
    """Profile one model, or several with the same settings (timed run by run, interleaved); one report each.

    Params and GFLOPs are those ``model.info()`` prints (the model as built or loaded, batch 1). Exact FLOPs (per
    image, at the real input size), latency, throughput and memory are measured on the deployed copy: fused, eval,
    inference mode, on ``device`` (float16 with ``half``). ``format`` (onnx, torchscript, openvino, ncnn): each
    model also exported by Ultralytics (cached) and timed in that runtime, interleaved as the PyTorch runs are.
    """
    dev = parse_device(device, half)
    size = parse_imgsz(imgsz)
    _check_counts(batch, runs)
    fmt = _format(format, dev, half)
    specs = [model] if isinstance(model, (str, Path, nn.Module)) else list(model)
    step = progress or (lambda stage, done, total: None)
    dtype = _dtype(half)
    generator = torch.Generator().manual_seed(0)  # one stream: each model's FLOPs input, then the timed batch
    prepared = _prepare(_load(specs, scale, size, step), size, dev, half, layers, generator, step)
    x = torch.rand(batch, prepared[-1].channels, *size, generator=generator).to(dev, dtype)
    with _failures(" and ".join(p.item.name for p in prepared), size, batch, dev):
        latencies = measure_latency([p.deployed for p in prepared], x, runs, warmup, budget_s, progress)
    exported, exported_latencies = _exported(prepared, fmt, x, dev, runs, warmup, budget_s, progress, step)
    reports = []
    for p, latency, deployed_file, deployed_latency in zip(
        prepared, latencies, exported, exported_latencies, strict=True
    ):
        memory, layer_list = _memory_and_layers(p, x, dev, layers, runs, step)
        reports.append(_report(p, x, dev, latency, memory, layer_list, deployed_file, deployed_latency))
    return reports


def _dtype(half: bool) -> torch.dtype:
    return torch.float16 if half else torch.float32


def _check_counts(batch: int, runs: int | None) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise UsageError(f"--batch {batch}: must be a positive integer")
    if runs is not None and (isinstance(runs, bool) or not isinstance(runs, int) or runs < 1):
        raise UsageError(f"--runs {runs}: must be a positive integer")


def _load(specs: list[Any], scale: str | None, size: Size, step: Progress) -> list[LoadedModel]:
    loaded: list[LoadedModel] = []
    for i, spec in enumerate(specs):
        step("loading", i, len(specs))
        item = load_model(spec, scale)
        check_imgsz(size, ultra.model_stride(item.model))
        loaded.append(item)
    return loaded


@dataclass
class _Prepared:
    """One model counted (batch 1) and deployed, ready to time."""

    item: LoadedModel
    params: int
    gflops: Gflops
    deployed: nn.Module
    fused: bool
    flops: int
    per_module: Any  # the FLOPs of each module, for --layers
    channels: int  # of the input, as Ultralytics' get_flops reads it


def _prepare(
    loaded: list[LoadedModel], size: Size, dev: torch.device, half: bool, layers: bool,
    generator: torch.Generator, step: Progress,
) -> list[_Prepared]:  # fmt: skip
    """Params and GFLOPs as ``model.info()`` counts them, then the deployed copy and its exact FLOPs."""
    prepared = []
    for i, item in enumerate(loaded):
        step("counting FLOPs", i, len(loaded))
        source = item.model.cpu().float()
        params = count_params(source)
        with ultra.quiet():
            gflops = ultralytics_gflops(source, size)
        deployed, fused = deploy(source, dev, half)
        channels = next(source.parameters()).shape[1]  # as Ultralytics' get_flops reads it
        one = torch.rand(1, channels, *size, generator=generator).to(dev, _dtype(half))
        with _failures(item.name, size, batch=1, device=dev):
            flops, per_module = exact_flops(deployed, one, per_module=layers)  # also the first warm-up run
        prepared.append(_Prepared(item, params, gflops, deployed, fused, flops, per_module, channels))
    step("counting FLOPs", len(loaded), len(loaded))
    return prepared


def _exported(
    prepared: list[_Prepared], fmt: str | None, x: torch.Tensor, dev: torch.device, runs: int | None,
    warmup: int | None, budget_s: float, progress: Progress | None, step: Progress,
) -> tuple[list[Any], list[Any]]:  # fmt: skip
    """--format: each model exported by Ultralytics (cached) and timed in its runtime; Nones without it."""
    if fmt is None:
        return [None] * len(prepared), [None] * len(prepared)
    from attnsurgeon.costs.runtime_latency import deploy_format, time_deployed

    size = (x.shape[2], x.shape[3])
    exported: list[Any] = []
    for i, p in enumerate(prepared):
        step(f"exporting to {fmt}", i, len(prepared))
        exported.append(deploy_format(p.item.model, fmt, size, weights=p.item.kind != "yaml"))
    step(f"exporting to {fmt}", len(prepared), len(prepared))
    with _failures(" and ".join(p.item.name for p in prepared) + f" ({fmt})", size, x.shape[0], dev):
        return exported, time_deployed(exported, x, runs, warmup, budget_s, progress)


def _memory_and_layers(
    p: _Prepared, x: torch.Tensor, dev: torch.device, layers: bool, runs: int | None, step: Progress
) -> tuple[Any, list[LayerCost] | None]:
    """Peak memory of one timed batch, and with ``layers`` each top-level layer's cost."""
    with _failures(p.item.name, (x.shape[2], x.shape[3]), x.shape[0], dev):
        memory = peak_memory_mb(p.deployed, x)
        if not layers:
            return memory, None
        step("timing layers", 0, 1)
        n = max(1, min(MAX_LAYER_RUNS, (runs or DEFAULT_RUNS) // 5))
        layer_list = layer_costs(p.item.model, p.deployed, p.per_module, x, n)
        step("timing layers", 1, 1)
    return memory, layer_list


def _report(
    p: _Prepared, x: torch.Tensor, dev: torch.device, latency: Latency, memory: Any,
    layer_list: list[LayerCost] | None, exported: Deployed | None, exported_latency: Latency | None,
) -> ProfileReport:  # fmt: skip
    warnings = list(p.item.warnings)
    if p.gflops.fallback:
        warnings.append(f"GFLOPs: {p.gflops.source}")
    return ProfileReport(
        model=p.item.name, source=p.item.source, kind=p.item.kind, scale=p.item.scale, device=str(dev),
        device_name=device_name(dev), imgsz=(x.shape[2], x.shape[3]), batch=x.shape[0],
        dtype=str(x.dtype).removeprefix("torch."), threads=torch.get_num_threads(), fused=p.fused, params=p.params,
        gflops=p.gflops, flops_exact=p.flops, latency=latency, memory=memory, layers=layer_list, warnings=warnings,
        deployed=p.deployed, inputs=x, exported=exported, exported_latency=exported_latency,
    )  # fmt: skip


FORMATS = ("onnx", "torchscript", "openvino", "ncnn")


def _format(format: str | None, device: torch.device, half: bool) -> str | None:
    """--format, validated: one of :data:`FORMATS`, timed on the CPU in float32 (as exported)."""
    if format is None:
        return None
    fmt = format.strip().lower()
    if fmt not in FORMATS:
        raise UsageError(f"--format {format}: not a format profile times; use one of {', '.join(FORMATS)}")
    if device.type != "cpu" or half:
        raise UsageError(
            f"--format {fmt} times the CPU runtime in float32; drop --device/--half (TensorRT and CUDA ONNX Runtime: "
            "benchmarks/gpu_checks.py)"
        )
    from attnsurgeon.ultralytics_bridge.exporting import require

    require(fmt)
    return fmt


COMPARED = ("params", "gflops", "gflops_exact", "latency_median_ms", "latency_p90_ms", "throughput", "memory_mb")


def _compared_values(report: ProfileReport) -> dict[str, float | None]:
    return {
        "params": report.params,
        "gflops": report.gflops.value,
        "gflops_exact": report.gflops_exact,
        "latency_median_ms": report.latency.median,
        "latency_p90_ms": report.latency.p90,
        "throughput": report.throughput,
        "memory_mb": report.memory_mb,
    }


def compare(new: ProfileReport, base: ProfileReport) -> dict[str, dict[str, float | None]]:
    """Per figure: base, new, absolute difference (new - base) and relative difference (fraction of base)."""
    a, b = _compared_values(new), _compared_values(base)
    out: dict[str, dict[str, float | None]] = {}
    for key in COMPARED:
        nv, bv = a[key], b[key]
        if nv is None or bv is None:
            out[key] = {"base": bv, "new": nv, "abs": None, "rel": None}
            continue
        diff = nv - bv
        out[key] = {
            "base": round(bv, 6) if isinstance(bv, float) else bv,
            "new": round(nv, 6) if isinstance(nv, float) else nv,
            "abs": round(diff, 6) if isinstance(diff, float) else diff,
            "rel": round(diff / bv, 6) if bv else None,
        }
    return out
