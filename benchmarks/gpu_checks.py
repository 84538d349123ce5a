"""The CUDA branches of ``--checks half,val`` on a GPU machine: float16 autocast, float16 weights, Ultralytics' own
AMP check (``check_amp``) on the real model, and a validation batch under float16 autocast.

    PYTHONPATH=. YOLO_OFFLINE=1 python benchmarks/gpu_checks.py [--device cuda:0] [--imgsz 640]

Prints one line per model and check, then a summary; exits 1 if a check that should pass failed or was skipped
for a reason other than the task (Ultralytics' check_amp compares boxes, so it skips classify and OBB models), or if
the float16-breaking module did not fail. Nothing is downloaded: check_amp runs on the model under test.
Expect one to three minutes on one GPU (rtdetr-l is the slowest; the first validator import takes ~10 s).

``--deployed`` (issue 30) instead exports yolo11n and a few modules inserted after layer 8 to TensorRT
(``yolo export format=engine half=True device=0``) and to ONNX run by ONNX Runtime's CUDA execution provider, loads
each as ``yolo predict`` does (AutoBackend, fp16 for the engine), compares it with PyTorch under float16 autocast and
times it against the base's engine/session (median of ``--runs``). Needs ``tensorrt`` and ``onnxruntime-gpu``.
NOT EXECUTED YET: written on a machine without a GPU; no figure from this path has been produced or reported.

    PYTHONPATH=. YOLO_OFFLINE=1 python benchmarks/gpu_checks.py --deployed [--imgsz 640] [--runs 50]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module
from attnsurgeon.checks.opt_in import run_extra_checks
from attnsurgeon.checks.verify import task_of
from attnsurgeon.core.yamlfile import model_doc, tree_edits
from attnsurgeon.ops import surgery as api
from attnsurgeon.ultralytics_bridge import ultra

MODELS = [
    ("yolo11n.yaml", "SE", 8),
    ("yolov8n-seg.yaml", "CBAM", 6),
    ("yolo11n-pose.yaml", "HaloAttention", 8),
    ("yolo11n-obb.yaml", "SE", 8),
    ("yolo11n-cls.yaml", "ECA", 8),
    ("rtdetr-l.yaml", "SE", 3),
    ("yolo11n.yaml", "BiLevelRoutingAttention", 8),
    ("yolo11n.yaml", "CrissCrossAttention", 8),
]
# check_amp compares boxes (classify and OBB results have none) and predicts through YOLO(...) (not RT-DETR's)
SKIP_OK = {"half: Ultralytics AMP check": ("classify", "obb", "rtdetr")}


@register_module(
    category="channel",
    paper="test",
    venue="test",
    year=2024,
    link="https://example.org",
    reference="https://example.org",
)
class Float32Scratch(AttentionModule):
    """Copies its input into a float32 tensor by index: fails under float16 with a named layer (a control)."""

    def __init__(self, c1: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(c1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape, device=x.device)
        out[:, torch.arange(x.shape[1], device=x.device)] = x
        return out * self.weight


def build(model: str, module: str, after: int) -> torch.nn.Module:
    doc = model_doc.load(model)
    if not module:  # the base as it is
        return ultra.build_model(doc.plain(), doc.scale or None, f"{doc.stem}.yaml")
    _, _, _, result = api.plan_insert(model, module, after)
    cfg = model_doc.to_plain(tree_edits.apply(doc, result, in_place=True))
    return ultra.build_model(cfg, doc.scale or None, f"{doc.stem}-{module}.yaml")


DEPLOYED_MODULES = ("SE", "CBAM", "EMA", "BiLevelRoutingAttention", "CoordAtt")


def _median_ms(run: Callable[[torch.Tensor], object], x: torch.Tensor, runs: int, device: torch.device) -> float:
    for _ in range(5):
        run(x)
    times = []
    for _ in range(runs):
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        run(x)
        torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _first(out: object) -> torch.Tensor:
    while isinstance(out, (list, tuple)):
        out = out[0]
    return torch.as_tensor(out).float()


def _deployed_gpu(model: torch.nn.Module, fmt: str, imgsz: int, folder: Path, device: torch.device) -> Callable:
    """UNEXECUTED here: ``model`` exported to TensorRT (fp16) or ONNX, as a function of an input on ``device``."""
    from ultralytics.engine.exporter import Exporter
    from ultralytics.nn.autobackend import AutoBackend

    model.pt_path = str(folder / "model.pt")
    half = fmt == "engine"
    overrides = {"format": fmt, "imgsz": imgsz, "device": str(device.index or 0), "batch": 1, "half": half}
    path = str(Exporter(overrides=overrides)(model))
    if fmt == "engine":
        backend = AutoBackend(path, device=device, fp16=True, verbose=False)
        return lambda x: backend(x.half())
    import onnxruntime as ort

    providers = [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    session = ort.InferenceSession(path, providers=providers)
    if session.get_providers()[0] != "CUDAExecutionProvider":
        raise RuntimeError(f"ONNX Runtime did not take the CUDA provider here: {session.get_providers()}")
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x.cpu().numpy()})


def deployed(options: argparse.Namespace, device: torch.device) -> int:
    """TensorRT (fp16) and ONNX Runtime CUDA: check and time each module against the base. NOT EXECUTED YET."""
    print("UNEXECUTED PATH: --deployed has not been run on a GPU yet; treat its output as its first run")
    x = torch.rand(1, 3, options.imgsz, options.imgsz, device=device)
    base = build("yolo11n.yaml", "", -1).to(device).eval()
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for fmt in ("engine", "onnx"):
            (Path(tmp) / f"base-{fmt}").mkdir()
            runs[fmt] = _deployed_gpu(copy.deepcopy(base), fmt, options.imgsz, Path(tmp) / f"base-{fmt}", device)
        for module in DEPLOYED_MODULES:
            model = build("yolo11n.yaml", module, 8).to(device).eval()
            with torch.inference_mode(), torch.autocast("cuda", torch.float16):
                want = _first(model(x)).cpu()
            for fmt in ("engine", "onnx"):
                folder = Path(tmp) / f"{module}-{fmt}"
                folder.mkdir()
                try:
                    run = _deployed_gpu(copy.deepcopy(model), fmt, options.imgsz, folder, device)
                    got = _first(run(x)).cpu()
                    error = float((got - want).abs().max() / want.abs().max().clamp_min(1e-12))
                    mine, theirs = (_median_ms(r, x, options.runs, device) for r in (run, runs[fmt]))
                    ratio = mine / theirs
                    print(f"{module} | {fmt} | rel. error {error:.3g} | latency ratio {ratio:.2f}")
                    if error > 0.05:
                        bad.append(f"{module} {fmt}: rel. error {error:.3g}")
                except Exception as exc:
                    print(f"{module} | {fmt} | FAIL {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                    bad.append(f"{module} {fmt}: {type(exc).__name__}")
    print("\n" + ("all as expected" if not bad else "UNEXPECTED:\n" + "\n".join(bad)))
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--only", help="comma-separated model YAMLs to run (default: all)")
    parser.add_argument("--deployed", action="store_true", help="TensorRT and ONNX Runtime CUDA (unexecuted yet)")
    parser.add_argument("--runs", type=int, default=50, help="--deployed: timed runs per model")
    options = parser.parse_args()
    device = torch.device(options.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available here; run this on the GPU machine (or pass --device cpu for a dry run)")
        return 2
    if options.deployed:
        return deployed(options, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}")
    bad = []
    cases = [*MODELS, ("yolo11n.yaml", "Float32Scratch", 8)]
    if options.only:
        cases = [case for case in cases if case[0] in options.only.split(",")]
    for model, module, after in cases:
        built = build(model, module, after)
        task = task_of(built)
        start = time.perf_counter()
        checks = run_extra_checks(built, ["half", "val"], options.imgsz, device, {})
        seconds = time.perf_counter() - start
        for check in checks:
            mark = {True: "PASS", False: "FAIL", None: "SKIP"}[check.ok]
            print(f"{mark} {model} + {module} | {check.name} | {check.detail}")
            control = module == "Float32Scratch" and check.name.startswith("half: ") and "AMP" not in check.name
            if control and check.ok is not False:
                bad.append(f"{model}+{module} {check.name}: the control did not fail")
            elif not control and module != "Float32Scratch" and check.ok is False:
                bad.append(f"{model}+{module} {check.name}: {check.detail}")
            elif check.ok is None and not {task, model.split("-")[0]} & set(SKIP_OK.get(check.name, ())):
                bad.append(f"{model}+{module} {check.name}: skipped: {check.detail}")
        print(f"     {model} + {module}: {seconds:.1f} s ({task})")
    print("\n" + ("all as expected" if not bad else "UNEXPECTED:\n" + "\n".join(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
