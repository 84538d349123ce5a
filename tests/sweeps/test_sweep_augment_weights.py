"""``sweep --op augment --train DATA --weights W``: each variant starts from the base checkpoint through checkpoint
surgery, as ``augment`` on a ``.pt`` does (the path sweep_train and sweep_ray share). A tiny model, 1 CPU epoch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_sweep_train import make_dataset
from typer.testing import CliRunner

from attnsurgeon.cli import app

runner = CliRunner()
TINY = """nc: 2
scales:
  n: [1.0, 1.0, 64]
backbone:
  - [-1, 1, Conv, [8, 3, 2]] # 0-P1/2
  - [-1, 1, Conv, [16, 3, 2]] # 1-P2/4
  - [-1, 1, C3k2, [16, False, 0.5]] # 2
  - [-1, 1, Conv, [32, 3, 2]] # 3-P3/8
head:
  - [[3], 1, Detect, [nc]] # 4
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The tiny model's YAML, a checkpoint of it (as a user's best.pt would be) and a synthetic dataset."""
    from ultralytics import YOLO

    tmp = tmp_path_factory.mktemp("augment-weights")
    yaml = tmp / "yolo11n-tiny.yaml"
    yaml.write_text(TINY)
    weights = tmp / "tiny.pt"
    YOLO(str(yaml)).save(str(weights))
    return yaml, weights, make_dataset(tmp / "data", n_train=8, n_val=4)


def test_sweep_augment_with_weights_starts_from_the_checkpoint_and_trains(base, tmp_path):
    import torch

    yaml, weights, data = base
    out = tmp_path / "sweep"
    args = ["sweep", yaml, "-m", "SE", "--at", "2", "--op", "augment", "--args-grid", "SE=[2]", "-o", out]
    args += ["--train", data, "--weights", weights]
    train = ["--imgsz", "64", "--runs", "1", "--epochs", "1", "--batch", "4", "--no-plots"]
    result = runner.invoke(app, [str(a) for a in [*args, *train]])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [r["op"] for r in rows] == ["base", "augment"]
    assert all(r["train_status"] == "ok" for r in rows), [r.get("reason") for r in rows]
    starts = sorted((out / "weights").glob("*.pt"))
    assert [p.stem for p in starts] == [rows[1]["name"]]
    start_yaml = starts[0].with_suffix(".yaml").read_text()
    assert "Augment, [C3k2, [16, False, 0.5], IdentityInit, [SE" in start_yaml  # identity-initialised by default
    # the variant's start is the base checkpoint with attention added: every base tensor is there, unchanged
    old = torch.load(weights, weights_only=False)["model"].state_dict()
    new = torch.load(starts[0], weights_only=False)["model"].state_dict()
    moved = {k: v for k, v in new.items() if k in old}
    assert len(moved) == len(old) and all(torch.equal(moved[k], old[k]) for k in old)
    assert len(new) > len(old)
