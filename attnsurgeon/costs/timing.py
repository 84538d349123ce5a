"""Timing forward passes: latency with warm-up and synchronisation, peak CUDA memory, per-layer time.

CPU runs are timed with ``perf_counter``; CUDA runs with events, waited on. Garbage collection is paused while timing
(as ``timeit`` does). Used by :mod:`attnsurgeon.ops.profile`; nothing here prints.
"""

from __future__ import annotations

import contextlib
import gc
import math
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnsurgeon.core.progress import Progress

DEFAULT_RUNS = 50
MIN_RUNS = 5
DEFAULT_TIME_BUDGET_S = 4.0  # timed runs (all models together) when --runs is not given
# Warm-up: runs, and on CPU at least WARMUP_MIN_S of them (first passes after building pay for page faults and cold
# allocator pools; with 3 runs the median read ~10% above torch.utils.benchmark's on yolo11n).
DEFAULT_WARMUP = {"cpu": 5, "cuda": 10}
WARMUP_MIN_S = 1.0
MAX_LAYER_RUNS = 10


def _percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    data = sorted(values)
    if not data:
        return float("nan")
    pos = (len(data) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


@dataclass
class Latency:
    samples_ms: list[float]
    warmup: int

    @property
    def runs(self) -> int:
        return len(self.samples_ms)

    @property
    def median(self) -> float:
        return _percentile(self.samples_ms, 50)

    @property
    def p90(self) -> float:
        return _percentile(self.samples_ms, 90)

    @property
    def iqr(self) -> float:
        return _percentile(self.samples_ms, 75) - _percentile(self.samples_ms, 25)

    def as_dict(self) -> dict[str, Any]:
        s = self.samples_ms
        return {
            "median": round(self.median, 4),
            "p90": round(self.p90, 4),
            "min": round(min(s), 4),
            "max": round(max(s), 4),
            "mean": round(statistics.fmean(s), 4),
            "std": round(statistics.stdev(s), 4) if len(s) > 1 else 0.0,
            "iqr": round(self.iqr, 4),
            "runs": self.runs,
            "warmup": self.warmup,
        }


def _on(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Inference mode, with ``device`` current on CUDA (events and streams belong to the current device)."""
    stack = contextlib.ExitStack()
    if device.type == "cuda":
        stack.enter_context(torch.cuda.device(device))
    stack.enter_context(torch.inference_mode())
    return stack


class _Timer:
    """One forward's wall time in ms: perf_counter on CPU; CUDA events, waited on, on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.device = device

    def __call__(self, fn: Callable[[], Any]) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3


@contextlib.contextmanager
def _no_gc(collect: bool = True) -> Iterator[None]:
    """Collect the build's garbage now, then none inside a timed run (as timeit, so torch.utils.benchmark, does)."""
    enabled = gc.isenabled()
    if collect:
        gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def measure_latency(
    models: Sequence[nn.Module],
    inputs: torch.Tensor,
    runs: int | None = None,
    warmup: int | None = None,
    budget_s: float = DEFAULT_TIME_BUDGET_S,
    progress: Progress | None = None,
    collect_garbage: bool = True,
) -> list[Latency]:
    """Warm up, then time forward passes of each model, interleaved run by run (so drift hits all models alike).

    ``runs`` given: exactly that many timed runs per model. Otherwise up to :data:`DEFAULT_RUNS`, stopping once
    ``budget_s`` is spent (but never fewer than :data:`MIN_RUNS`). ``collect_garbage=False`` skips the full
    collection before timing (it costs ~0.1-0.3 s in a process holding many models; a sweep timing one small layer
    per variant cannot pay that each time).
    """
    device = inputs.device
    timer = _Timer(device)
    n_warm = DEFAULT_WARMUP["cuda" if device.type == "cuda" else "cpu"] if warmup is None else max(0, warmup)
    target = DEFAULT_RUNS if runs is None else runs
    samples: list[list[float]] = [[] for _ in models]
    with _no_gc(collect_garbage), _on(device):
        warm_started = time.perf_counter()
        min_warm_s = WARMUP_MIN_S if warmup is None and device.type == "cpu" else 0.0
        i = 0
        while i < n_warm or (time.perf_counter() - warm_started < min_warm_s and i < 4 * n_warm):
            for m in models:
                m(inputs)
            i += 1
            if progress:
                progress("warm-up", min(i, n_warm), n_warm)
        warm_runs = i
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        for i in range(target):
            for m, out in zip(models, samples, strict=True):
                out.append(timer(lambda m=m: m(inputs)))
            if progress:
                progress("timing", i + 1, target)
            if runs is None and i + 1 >= MIN_RUNS and time.perf_counter() - started > budget_s:
                if progress:
                    progress("timing", target, target)
                break
    return [Latency(s, warm_runs) for s in samples]


def peak_memory_mb(model: nn.Module, inputs: torch.Tensor) -> tuple[float, float] | None:
    """CUDA only, in MiB: (peak for this model's forward pass, of which allocated during the pass).

    The peak is the model's own weights and buffers plus the input plus what ``torch.cuda.max_memory_allocated``
    rises by during one forward pass, so other tensors on the device (a model being compared) do not count.
    """
    if inputs.device.type != "cuda":
        return None
    device = inputs.device
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    with _on(device):
        model(inputs)
    torch.cuda.synchronize(device)
    during = torch.cuda.max_memory_allocated(device) - before
    tensors = [*model.parameters(), *model.buffers()]
    resident = sum(t.numel() * t.element_size() for t in tensors) + inputs.numel() * inputs.element_size()
    return (resident + during) / 2**20, during / 2**20


def layer_times(model: nn.Module, inputs: torch.Tensor, runs: int) -> dict[int, float]:
    """Median ms of each top-level layer (``model.model[i]``) over ``runs`` forwards, timed with hooks.

    On CUDA each layer is bracketed by events (no synchronisation between layers); on CPU by perf_counter.
    """
    layers = getattr(model, "model", None)
    if not isinstance(layers, nn.Sequential):
        return {}
    return grouped_times(model, inputs, runs, {i: [layer] for i, layer in enumerate(layers)})


def grouped_times(
    model: nn.Module, inputs: torch.Tensor, runs: int, groups: dict[int, list[nn.Module]]
) -> dict[int, float]:
    """Median ms per group over ``runs`` forwards of ``model``: each group's modules are timed with hooks and summed
    within a run (e.g. the attention modules inside one block)."""
    cuda = inputs.device.type == "cuda"
    current: dict[int, Any] = {}
    records: dict[int, list[list[Any]]] = {key: [] for key in groups}
    handles = []

    def now() -> Any:
        if cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    for key, modules in groups.items():
        for module in modules:

            def pre(module: nn.Module, args: Any, key: int = key) -> None:
                current[id(module)] = now()

            def post(module: nn.Module, args: Any, output: Any, key: int = key) -> None:
                records[key][-1].append((current.pop(id(module)), now()))

            handles.append(module.register_forward_pre_hook(pre))
            handles.append(module.register_forward_hook(post))
    try:
        with _on(inputs.device):
            for _ in range(runs):
                for pairs in records.values():
                    pairs.append([])
                model(inputs)
        if cuda:
            torch.cuda.synchronize(inputs.device)
    finally:
        for h in handles:
            h.remove()
    out = {}
    for key, per_run in records.items():
        totals = [sum(s.elapsed_time(e) if cuda else (e - s) * 1e3 for s, e in pairs) for pairs in per_run if pairs]
        if totals:
            out[key] = float(statistics.median(totals))
    return out


def device_name(device: torch.device) -> str:
    """The GPU's or CPU's model name, for the report."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return name or platform.processor() or platform.machine() or "cpu"
