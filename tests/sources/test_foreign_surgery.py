"""A plain nn.Module class goes everywhere a catalog module goes: checkpoint surgery with --identity-init, augment
(attention inside a block), replace, show; and the Python API takes the same ``FILE.py:ClassName`` text."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import attnsurgeon
from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.ultralytics_bridge import ultra

runner = CliRunner()
GATE = """import torch
from torch import nn


class PoolGate(nn.Module):
    def __init__(self, in_planes, ratio=8):
        super().__init__()
        self.fc1 = nn.Conv2d(in_planes, in_planes // ratio, 1)
        self.fc2 = nn.Conv2d(in_planes // ratio, in_planes, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
"""


def cli(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def here(tmp_path, monkeypatch, clean_registry):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pool_gate.py").write_text(GATE)
    return tmp_path


def test_checkpoint_surgery_with_identity_init(here, one_thread):
    from ultralytics import YOLO

    YOLO("yolo11n.yaml").save(str(here / "base.pt"))
    result = cli("insert", "base.pt", "-m", "pool_gate.py:PoolGate", "--after", "4", "--identity-init", "--imgsz",
                 "128", "-o", "gated.pt")  # fmt: skip
    assert result.exit_code == 0, result.output
    text = (here / "gated.yaml").read_text()
    assert "attnsurgeon_plugins: [pool_gate.py:PoolGate]" in text
    assert "[-1, 1, IdentityInit, [PoolGate, []]]" in text
    loaded = YOLO(str(here / "gated.pt")).model.model[5]
    assert type(loaded.inner).__name__ == "PoolGate" and float(loaded.gamma.detach()) == 0.0
    assert loaded.inner.block.fc1.in_channels == 128  # layer 4 of yolo11n at n


def test_augment_replace_and_show(here, one_thread):
    argv = ["augment", "yolo11n.yaml", "-m", "pool_gate.py:PoolGate", "--at", "8", "--imgsz", "128", "-o", "a.yaml"]
    result = cli(*argv)
    assert result.exit_code == 0, result.output
    assert "  - [-1, 2, Augment, [C3k2, [1024, True], PoolGate, [], bottleneck]]" in (here / "a.yaml").read_text()
    result = cli("insert", "a.yaml", "-m", "SE", "--after", "6", "--no-verify", "-o", "s.yaml")
    assert result.exit_code == 0, result.output
    result = cli("replace", "s.yaml", "--at", "7", "-m", "pool_gate.py:PoolGate", "--args", "[4]", "--no-verify",
                 "-o", "r.yaml")  # fmt: skip
    assert result.exit_code == 0, result.output
    text = (here / "r.yaml").read_text()
    assert "  - [-1, 1, PoolGate, [4]]" in text and "attnsurgeon_plugins: [pool_gate.py:PoolGate]" in text
    shown = cli("show", "r.yaml", "--json")
    assert shown.exit_code == 0, shown.output
    layer = json.loads(shown.output)["layers"][7]
    assert layer["module"] == "PoolGate" and layer["out_channels"] == 128
    assert layer["params"] == 2 * 128 * 32 + 32 + 128  # in_planes 128, ratio 4


def test_the_python_api_takes_the_source_text(here, one_thread):
    report = attnsurgeon.insert("yolo11n.yaml", "pool_gate.py:PoolGate?channel=in_planes", after=8,
                                args=[{"ratio": 4}], output="api.yaml", imgsz=128)  # fmt: skip
    assert report.verified and report.module == "PoolGate"
    built = ultra.build_model(model_doc.to_plain(model_doc.load(here / "api.yaml").data), "n", "yolo11n-api.yaml")
    assert built.model[9].block.fc1.out_channels == 64
    assert "attnsurgeon_plugins: [pool_gate.py:PoolGate?channel=in_planes]" in (here / "api.yaml").read_text()


def test_a_yaml_whose_class_file_is_missing_names_it(here):
    (here / "pool_gate.py").unlink()  # neither next to the YAML nor in the current folder
    moved = here / "elsewhere"
    moved.mkdir()
    (moved / "g.yaml").write_text(
        "nc: 2\nattnsurgeon_plugins: [pool_gate.py:PoolGate]\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n"
        "  - [-1, 1, PoolGate, []]\nhead:\n  - [[1], 1, Detect, [nc]]\n"
    )
    result = cli("show", moved / "g.yaml", "--no-build")
    assert result.exit_code == 7
    assert result.output == (
        "error: this model needs the class PoolGate of pool_gate.py (listed under attnsurgeon_plugins as "
        f"pool_gate.py:PoolGate), which is not at {moved / 'pool_gate.py'}; put the file there\n"
    )
    (moved / "pool_gate.py").write_text(GATE)  # next to the YAML: found
    result = cli("show", moved / "g.yaml", "--no-build")
    assert result.exit_code == 0, result.output
