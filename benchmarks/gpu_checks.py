"""The CUDA branches of ``--checks half,val`` on a GPU machine: float16 autocast, float16 weights, Ultralytics' own
AMP check (``check_amp``) on the real model, and a validation batch under float16 autocast.

    PYTHONPATH=. YOLO_OFFLINE=1 python benchmarks/gpu_checks.py [--device cuda:0] [--imgsz 640]

Prints one line per model and check, then a summary; exits 1 if a check that should pass failed or was skipped
for a reason other than the task (Ultralytics' check_amp compares boxes, so it skips classify and OBB models), or if
the float16-breaking module did not fail. Nothing is downloaded: check_amp runs on the model under test.
Expect one to three minutes on one GPU (rtdetr-l is the slowest; the first validator import takes ~10 s).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module
from attnsurgeon.checks.deploy import run_extra_checks
from attnsurgeon.checks.verify import task_of
from attnsurgeon.core import yamlio
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
    doc = yamlio.load(model)
    _, _, _, result = api.plan_insert(model, module, after)
    cfg = yamlio.to_plain(yamlio.apply(doc, result, in_place=True))
    return ultra.build_model(cfg, doc.scale or None, f"{doc.stem}-{module}.yaml")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--only", help="comma-separated model YAMLs to run (default: all)")
    options = parser.parse_args()
    device = torch.device(options.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available here; run this on the GPU machine (or pass --device cpu for a dry run)")
        return 2
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
