"""``augment`` across model families (slow): YOLO11, YOLOv8, YOLOv5 (C3), YOLOv10 (C2fCIB), YOLO12 (A2C2f) and
YOLO26, with a channel, a channel+spatial, a multi-scale and a self-attention module. Each builds, runs at square and
rectangular sizes, trains a step with a gradient on every attention parameter, and has exactly the base model's
parameters plus the attention's at every scale the file has (oracle: ``expected_units`` in test_augment.py).
"""

from __future__ import annotations

import sys

import pytest
import torch
from test_augment import (  # the test folders are on sys.path (pyproject)
    attention_params,
    built_pair,
    count,
    expected_units,
)

from attnsurgeon.checks import verify
from attnsurgeon.core.yamlfile import model_doc

pytestmark = pytest.mark.slow

FAMILIES = {
    "yolo11n.yaml": [2, 6, 10, 22],  # C3k2 (Bottleneck at n/s, C3k at m/l/x), C2PSA
    "yolov8n.yaml": [2, 12, 21],  # C2f
    "yolov5n.yaml": [2, 13, 23],  # C3
    "yolov10n.yaml": [2, 22],  # C2f, C2fCIB
    "yolo12n.yaml": [2, 6, 11, 20],  # C3k2, A2C2f with area attention and with C3k
    "yolo26n.yaml": [2, 6, 10, 22],  # C3k2 incl. its Bottleneck+PSABlock form (22), C2PSA
}
MODULES = {"SE": [4], "CBAM": [4, 7], "EMA": [8], "CrissCrossAttention": []}


def expected_growth(doc: model_doc.ModelDoc, at: list[int], module: str, args: list, where: str, scale: str) -> int:
    scales = model_doc.to_plain(doc.data["scales"])
    units = [c for i in at for c in expected_units(doc.graph.rows[i], scales, scale, where)]
    return sum(attention_params(module, args, c) for c in units)


@pytest.mark.parametrize("module", list(MODULES))
@pytest.mark.parametrize("model", list(FAMILIES))
def test_family_builds_runs_and_trains(model, module):
    at, args = FAMILIES[model], MODULES[module]
    scale = model_doc.load(model).scales[0]
    doc, base, new = built_pair(model, at, module, args, "bottleneck", scale)
    assert count(new) - count(base) == expected_growth(doc, at, module, args, "bottleneck", scale)
    for size in ((256, 256), (192, 256), (256, 192)):
        check = verify.check_forward(new, size)
        assert check.ok, check.detail
    fresh = {k for k, _ in new.named_parameters()} - {k for k, _ in base.named_parameters()}
    assert fresh
    new.train()
    loss, _ = new.loss(verify.synthetic_batch(new, 128))
    loss.sum().backward()
    grads = dict(new.named_parameters())
    for name in fresh:
        g = grads[name].grad
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, name


@pytest.mark.parametrize("where", ["bottleneck", "output"])
@pytest.mark.parametrize("model", list(FAMILIES))
def test_params_match_at_every_scale(model, where):
    """Width, depth, max_channels, C3k2's C3k switch and A2C2f's l/x residual: Ultralytics' own block at each scale."""
    doc = model_doc.load(model)
    at, module, args = FAMILIES[model], "EMA", [8]
    for scale in doc.scales:
        _, base, new = built_pair(model, at, module, args, where, scale)
        assert count(new) - count(base) == expected_growth(doc, at, module, args, where, scale), scale
        assert count(new.model[-1]) == count(base.model[-1]), f"{scale}: the head changed (legacy flag?)"
        del base, new


def test_every_family_builds_in_plain_ultralytics_in_a_fresh_process(tmp_path):
    """Every augmented YAML, built by a process that never imports attnsurgeon itself (the auto-registration hook
    does), has the parameters counted here; the ``yolo`` command runs one of them."""
    import json
    import os
    import subprocess

    from test_interop import BIN

    from attnsurgeon.ops import augment as api_augment

    expected = {}
    for model, at in FAMILIES.items():
        out = tmp_path / f"{model.removesuffix('.yaml')}-{api_augment.augment_label(['X'], 'CBAM', 'bottleneck')}.yaml"
        api_augment.augment(model, "CBAM", at, [4, 7], output=out, verify=False)
        doc = model_doc.load(model)
        _, base, _ = built_pair(model, at, "CBAM", [4, 7], "bottleneck", doc.scales[0])
        expected[out.name] = count(base) + expected_growth(doc, at, "CBAM", [4, 7], "bottleneck", doc.scales[0])
    code = (
        "import json, sys; from ultralytics import YOLO; "
        f"print(json.dumps({{n: sum(p.numel() for p in YOLO(n).model.parameters()) for n in {sorted(expected)!r}}}))"
    )
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_VERBOSE": "False"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected

    from PIL import Image

    Image.new("RGB", (64, 64), (120, 30, 200)).save(tmp_path / "img.jpg")
    args = ["predict", "model=yolo12n-X_CBAM.yaml", "source=img.jpg", "imgsz=64", "save=False", "device=cpu"]
    ran = subprocess.run([str(BIN / "yolo"), *args], cwd=tmp_path, env={**env, "YOLO_VERBOSE": "True"},
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "YOLO12n-X_CBAM summary" in ran.stdout + ran.stderr and "image 1/1" in ran.stdout + ran.stderr
