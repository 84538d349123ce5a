"""Latency as deployed: a model exported by Ultralytics (ONNX, TorchScript, OpenVINO, NCNN) and timed in its runtime,
loaded through ``AutoBackend`` as ``yolo predict model=...`` loads it.

Exports are cached in the user's cache folder (:func:`attnsurgeon.core.diskcache.cache_dir`, ``exports/``), keyed by
the model's content (every tensor and the YAML), the format, the size and the versions of torch, Ultralytics and the
runtime, so a second ``profile`` of the same model does not export again. Timing is
:func:`attnsurgeon.costs.timing.measure_latency` (warm-up, interleaved runs, garbage collection paused) on the
backends themselves. Nothing here prints.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnsurgeon.core import diskcache
from attnsurgeon.costs.timing import DEFAULT_TIME_BUDGET_S, Latency, Progress, measure_latency
from attnsurgeon.errors import VerificationError
from attnsurgeon.ultralytics_bridge import exporting, ncnn_param

RUNTIMES = {"onnx": "onnxruntime", "torchscript": "torch", "openvino": "openvino", "ncnn": "ncnn"}
KEEP = 16  # cached exports kept (the oldest go first)


@dataclass
class Deployed:
    """One exported model ready to time: the backend, where its file is, and what it runs with."""

    format: str
    path: str
    cached: bool
    backend: Any
    runtime: str
    version: str
    precision: str
    threads: int

    def describe(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "runtime": self.runtime,
            "runtime_version": self.version,
            "precision": self.precision,
            "threads": self.threads,
            "file": self.path,
            "cached": self.cached,
        }


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def content_key(model: nn.Module, fmt: str, size: Sequence[int], weights: bool = True) -> str:
    """A key that changes with any tensor of the model, its YAML, the format, the size or the versions involved.
    ``weights=False`` (a model freshly built from a YAML, randomly initialised each time): the tensors' names, shapes
    and dtypes only, so profiling the same YAML twice reuses the export (its latency does not depend on the values)."""
    digest = hashlib.sha256(f"{fmt}\0{tuple(size)}\0{torch.__version__}\0{_version('ultralytics')}".encode())
    digest.update(f"\0{_version(RUNTIMES[fmt])}\0{getattr(model, 'yaml', '')!r}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"\0{name}\0{tuple(tensor.shape)}\0{tensor.dtype}".encode())
        if weights:
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def export_cached(model: nn.Module, fmt: str, size: Sequence[int], weights: bool = True) -> tuple[str, bool]:
    """The exported file or folder of ``model`` (from the cache when there; else exported now): (path, cached)."""
    exporting.require(fmt)
    folder = diskcache.cache_dir() / "exports" / f"{fmt}-{content_key(model, fmt, size, weights)}"
    found = _exported_in(folder)
    if found is not None and not diskcache.disabled():
        return found, True
    work = Path(tempfile.mkdtemp(prefix=f"attnsurgeon-{fmt}-"))
    try:
        source = copy.deepcopy(model).float().cpu()
        _, path = exporting.export(source, fmt, size, work)
        (work / "model.pt").unlink(missing_ok=True)
        if diskcache.disabled():
            return path, False  # left in the temporary folder for this process
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            diskcache.prune(folder.parent, f"{fmt}-*", keep=KEEP - 1)
            if folder.exists():  # another process cached it meanwhile
                shutil.rmtree(work)
            else:
                os.replace(work, folder)
        except OSError:
            return path, False  # a read-only cache only costs the next export
        found = _exported_in(folder)
        return (found, False) if found is not None else (path, False)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _exported_in(folder: Path) -> str | None:
    if not folder.is_dir():
        return None
    for pattern in ("*.onnx", "*.torchscript", "*_openvino_model", "*_ncnn_model"):
        hits = sorted(folder.glob(pattern))
        if hits:
            return str(hits[0])
    return None


def deploy_format(model: nn.Module, fmt: str, size: Sequence[int], weights: bool = True) -> Deployed:
    """``model`` exported to ``fmt`` at ``size`` (cached, see :func:`content_key`) and loaded as ``yolo predict``
    loads it."""
    path, cached = export_cached(model, fmt, size, weights)
    backend = exporting.load(path)
    problem = ncnn_param.load_problem(path, model) if fmt == "ncnn" and ncnn_param.unloaded(backend) else None
    if problem:  # AutoBackend loaded an empty network: timing it would fail with a bare IndexError
        raise VerificationError(f"{fmt} export at {size[0]}x{size[1]}: {problem}")
    return Deployed(
        fmt, path, cached, backend, RUNTIMES[fmt], _version(RUNTIMES[fmt]), exporting.precision(backend),
        _threads(backend),
    )  # fmt: skip


def _threads(backend: Any) -> int:
    """The threads the runtime computes with (its own setting; 0 or unset means one per core)."""
    inner = getattr(backend, "backend", None)
    compiled = getattr(inner, "ov_compiled_model", None)
    if compiled is not None:
        return int(compiled.get_property("INFERENCE_NUM_THREADS")) or (os.cpu_count() or 1)
    net = getattr(inner, "net", None)
    if net is not None:
        return int(net.opt.num_threads)
    session = getattr(inner, "session", None)
    if session is not None:
        threads = session.get_session_options().intra_op_num_threads
        return int(threads) or (os.cpu_count() or 1)
    return torch.get_num_threads()


def time_deployed(
    deployed: Sequence[Deployed],
    inputs: torch.Tensor,
    runs: int | None = None,
    warmup: int | None = None,
    budget_s: float = DEFAULT_TIME_BUDGET_S,
    progress: Progress | None = None,
) -> list[Latency]:
    """Latency of each deployed model on ``inputs``, interleaved run by run (as :func:`measure_latency`)."""
    return measure_latency([d.backend for d in deployed], inputs.float().cpu(), runs, warmup, budget_s, progress)
