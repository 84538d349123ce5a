"""insert with verification, against the real Ultralytics: checks, figures, and failures that write nothing."""

from __future__ import annotations

import pytest
import torch
from plugin_files import module_meta

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module
from attnsurgeon.errors import VerificationError
from attnsurgeon.ops import surgery as api


@pytest.fixture(scope="module")
def se_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("se") / "yolo11n-SE.yaml"
    return api.insert("yolo11n.yaml", "SE", 8, output=out)


def test_all_checks_pass_and_figures_match_ultralytics(se_report):
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import get_flops

    names = [c.name for c in se_report.checks]
    assert names == ["reaches head", "build", "forward 640x640", "forward 480x640", "forward 640x480", "train step"]
    assert all(c.ok for c in se_report.checks), se_report.checks
    assert se_report.base["params"] == 2_624_080  # yolo11n, as Ultralytics' YAML comment says
    assert se_report.new["params"] - se_report.base["params"] == 2 * 256 * 16  # SE at 256 channels, r=16
    # a model built from the written file by plain Ultralytics in this process (attnsurgeon is imported)
    built = YOLO(str(se_report.output))
    assert sum(p.numel() for p in built.model.parameters()) == se_report.new["params"]
    assert len(built.model.model) == 25
    assert type(built.model.model[9]).__name__ == "SE"
    assert se_report.new["gflops"] == pytest.approx(get_flops(built.model, 640), abs=1e-6)
    base = YOLO("yolo11n.yaml")
    assert se_report.base["gflops"] == pytest.approx(get_flops(base.model, 640), abs=1e-6)


def test_json_report_keys(se_report):
    data = se_report.as_dict()
    assert {"output", "inserted", "base", "new", "checks"} <= set(data)
    assert set(data["base"]) >= {"params", "gflops"} and data["inserted"] == [{"after": 8, "index": 9}]
    assert all(set(c) == {"name", "ok", "detail"} for c in data["checks"])


def test_size_constraint_failure_names_layer_and_size(plugin, tmp_path):
    @plugin
    @register_module(**module_meta(constraints=("H and W must be even",)))
    class EvenOnly(AttentionModule):
        """Fails on odd feature maps, like a block-based module without padding."""

        def __init__(self, c1: int, scale: float = 1.0) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(c1, 1, 1) * scale)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert x.shape[-1] % 2 == 0 and x.shape[-2] % 2 == 0, f"{tuple(x.shape[-2:])} is not divisible by 2"
            return x * self.weight

    out = tmp_path / "yolo11n-EvenOnly.yaml"
    with pytest.raises(VerificationError) as info:
        api.insert("yolo11n.yaml", "EvenOnly", 8, output=out)
    message = str(info.value)
    assert "check 'forward 480x640' failed: layer 9 (EvenOnly) failed on a 1x256x15x20 feature map" in message
    assert "constraints: H and W must be even" in message and "nothing was written" in message
    assert not out.exists()


def test_dead_parameter_fails_the_train_step(plugin, tmp_path):
    @plugin
    @register_module(**module_meta())
    class HalfDead(AttentionModule):
        """Owns a parameter that never reaches the output."""

        def __init__(self, c1: int) -> None:
            super().__init__()
            self.used = torch.nn.Parameter(torch.ones(c1, 1, 1))
            self.unused = torch.nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.used

    with pytest.raises(VerificationError, match="train step' failed: layer 9 unused: no gradient"):
        api.insert("yolo11n.yaml", "HalfDead", 8, output=tmp_path / "x.yaml")
    assert not (tmp_path / "x.yaml").exists()


@pytest.mark.parametrize(
    ("model", "after", "module"),
    [
        ("yolo11n-seg.yaml", 10, "ECA"),
        ("yolo11n-pose.yaml", 16, "CoordAtt"),
        ("yolo11n-obb.yaml", 4, "SE"),
        ("yolo11n-cls.yaml", 8, "CBAM"),
        ("yolov8n.yaml", 6, "SE"),
    ],
)
def test_tasks_verify(model, after, module, tmp_path):
    report = api.insert(model, module, after, output=tmp_path / "out.yaml")
    assert report.verified, report.checks
    assert report.new["params"] > report.base["params"] or module in ("SimAM",)
    assert report.new["gflops"] >= report.base["gflops"] > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "after"),
    [
        ("yolov8n-p2.yaml", 15),
        ("yolov8n-p6.yaml", 11),
        ("yolov5n.yaml", 8),
        ("yolov9t.yaml", 4),
        ("yolov10n.yaml", 9),
        ("yolo12n.yaml", 8),
        ("yolo26n.yaml", 8),
        ("yolo26n-seg.yaml", 8),
        ("rtdetr-l.yaml", 3),
    ],
)
def test_model_families_verify(model, after, tmp_path):
    report = api.insert(model, "SE", after, output=tmp_path / "out.yaml")
    assert report.verified, report.checks


@pytest.mark.slow
def test_yolov9e_with_cblinear_verifies(tmp_path):
    report = api.insert("yolov9e.yaml", "SE", 5, output=tmp_path / "out.yaml", imgsz=320)
    assert report.verified, report.checks
    assert report.new["params"] - report.base["params"] == 2 * 512 * 32  # SE on 512 channels, r=16


@pytest.mark.slow
def test_scale_all(tmp_path):
    report = api.insert("yolo11n.yaml", "ECA", 8, output=tmp_path / "yolo11n-ECA.yaml", scale="all", imgsz=320)
    assert list(report.costs) == ["n", "s", "m", "l", "x"] and report.verified
    assert report.as_dict()["scales"]["x"]["base"]["params"] == 56_966_176


def test_gflops_never_silently_zero(monkeypatch, tmp_path):
    """Ultralytics' get_flops returns 0.0 whenever thop fails (or is missing); report the exact count instead."""
    import thop
    from ultralytics.utils.torch_utils import get_flops

    def broken_profile(*args, **kwargs):
        raise RuntimeError("profiling failed")

    monkeypatch.setattr(thop, "profile", broken_profile)
    report = api.insert("yolo11n.yaml", "SE", 8, output=tmp_path / "out.yaml")
    built = report.new
    assert get_flops(torch.nn.Conv2d(3, 3, 1), 64) == 0.0  # Ultralytics' own figure really is 0 here
    assert built["gflops_source"].startswith("exact at full size")
    assert any("GFLOPs: exact at full size" in w for w in report.warnings)
    # yolo11n's exact count at 640 (FlopCounterMode: convs and matmuls) is close to Ultralytics' 6.7
    assert 6.0 < report.base["gflops"] < 7.0
    assert built["gflops"] - report.base["gflops"] == pytest.approx(2 * 2 * 256 * 16 / 1e9)  # SE's two linears
