"""The opt-in checks (--checks export,half,val) against the real Ultralytics: each passes on healthy models of every
task, and each fails, naming the layer and the fix, on a module that really breaks it."""

from __future__ import annotations

import inspect
import json
import re

import pytest
import torch
from plugin_files import module_meta
from typer.testing import CliRunner

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module
from attnsurgeon.checks.opt_in import EXTRA_CHECKS, parse_checks, run_extra_checks
from attnsurgeon.checks.val_batch import rect_batch_shape, validator_class
from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc, text_writer, tree_edits
from attnsurgeon.errors import UsageError, VerificationError
from attnsurgeon.ops import surgery as api
from attnsurgeon.ops.show import show
from attnsurgeon.ultralytics_bridge import ultra

ALL_NAMES = ["export onnx", "half: autocast bfloat16", "half: float16 weights", "val batch"]


def _checks_of(report_or_error):
    return {c.name: c for c in report_or_error.checks}


# --------------------------------------------------------------------------------------------------------------------
# Parsing --checks


def test_parse_checks():
    assert parse_checks(None) == ()
    assert parse_checks("val, export") == ("export", "val")  # always in EXTRA_CHECKS order
    assert parse_checks("ALL") == EXTRA_CHECKS == ("export", "half", "val")
    assert parse_checks(["half"]) == ("half",)
    with pytest.raises(UsageError) as info:
        parse_checks("half,exprot,fp8")
    assert str(info.value) == (
        "--checks exprot, fp8: unknown checks (did you mean export?); use any of export, half, val "
        "(comma-separated) or all, or export:FORMAT with FORMAT onnx, torchscript, openvino, ncnn or all"
    )


def test_cli_rejects_unknown_checks_and_checks_without_verification(tmp_path):
    runner = CliRunner()
    out = tmp_path / "yolo11n-SE.yaml"
    result = runner.invoke(app, ["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "-o", str(out), "--checks", "onnx"])
    assert result.exit_code == 2, result.output
    assert "error: --checks onnx: unknown check; use any of export, half, val (comma-separated) or all, or " in (
        result.output
    )
    args = ["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "-o", str(out), "--checks", "half", "--no-verify"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "error: --checks half needs verification; drop --no-verify" in result.output
    assert not out.exists()


# --------------------------------------------------------------------------------------------------------------------
# Every check passes on healthy models


@pytest.fixture(scope="module")
def se_all(tmp_path_factory):
    out = tmp_path_factory.mktemp("se") / "yolo11n-SE.yaml"
    return api.insert("yolo11n.yaml", "SE", 8, output=out, imgsz=320, checks="all")


def test_all_checks_pass_on_yolo11n_with_se(se_all):
    names = [c.name for c in se_all.checks]
    assert names[:6] == ["reaches head", "build", "forward 320x320", "forward 224x320", "forward 320x224", "train step"]
    assert names[6:] == ALL_NAMES  # the opt-in checks come after the default ones, CPU: no AMP check
    assert all(c.ok for c in se_all.checks), se_all.checks
    checks = _checks_of(se_all)
    detail = checks["export onnx"].detail
    # the worst error is relative to the output's magnitude: onnxruntime float32 on yolo11n is far below 1e-4
    assert re.fullmatch(
        r"dynamic-axes ONNX \(opset 18\) matches PyTorch at 320x320 and 224x320 \(worst \|Δ\| (\S+) of the output\)",
        detail,
    )
    assert 0 < float(re.search(r"\|Δ\| (\S+)", detail).group(1)) < 1e-4
    # rectangular validation of 240x320 and 180x320 images: one batch shape, ceil(shape * 320 / 32 + 0.5) * 32
    assert checks["val batch"].detail.startswith("2 images 240x320 and 180x320 letterboxed to 256x352")
    assert se_all.verified and se_all.skipped == []
    data = se_all.as_dict()
    assert data["verified"] is True and [c["name"] for c in data["checks"]][6:] == ALL_NAMES


def test_checks_run_on_checkpoint_surgery_and_remove(tmp_path):
    """The opt-in checks run on every verifying command: a .pt insert (weights moved) and a remove."""
    from ultralytics import YOLO

    ultra.register()
    path = tmp_path / "yolo11n.pt"
    with ultra.quiet():
        YOLO("yolo11n.yaml").save(path)
    report = api.insert(path, "SE", 8, output=tmp_path / "yolo11n-SE.pt", imgsz=320, checks="val")
    assert [c.name for c in report.checks][-1] == "val batch" and report.verified, report.checks
    assert (tmp_path / "yolo11n-SE.pt").exists()
    removed = api.remove(report.output.with_suffix(".yaml"), 9, imgsz=320, write=False, checks="half")
    assert [c.name for c in removed.checks][-2:] == ["half: autocast bfloat16", "half: float16 weights"]
    assert removed.verified, removed.checks


def test_default_verification_runs_no_extra_checks(tmp_path):
    report = api.insert("yolo11n.yaml", "SE", 8, output=tmp_path / "yolo11n-SE.yaml", imgsz=320)
    assert [c.name for c in report.checks][-1] == "train step" and len(report.checks) == 6


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "after", "module"),
    [
        ("yolov8n-seg.yaml", 6, "SE"),
        ("yolo11n-pose.yaml", 8, "CBAM"),
        ("yolo11n-obb.yaml", 8, "SE"),
        ("yolo11n-cls.yaml", 8, "ECA"),
        ("rtdetr-l.yaml", 3, "SE"),
    ],
)
def test_every_task_passes_all_checks(model, after, module, tmp_path):
    # 320 (as the yolo11n case above), not the default 640: the checks are the same code at any size, and RT-DETR's
    # export and val at 640 took three minutes of CI alone.
    output = tmp_path / f"{model[:-5]}-{module}.yaml"
    report = api.insert(model, module, after, output=output, checks="all", imgsz=320)
    assert report.verified, [c.as_dict() for c in report.checks if not c.ok]
    assert [c.name for c in report.checks][-4:] == ALL_NAMES


def _one_channel_yaml(tmp_path):
    doc = model_doc.load("yolo11n.yaml")
    data = doc.plain()
    data["channels"] = 1
    path = tmp_path / "yolo11n-gray.yaml"
    path.write_text(text_writer.dump(data))
    return path


@pytest.mark.slow
def test_grayscale_model_passes_every_check_with_one_channel_inputs(tmp_path):
    path = _one_channel_yaml(tmp_path)
    report = api.insert(path, "CBAM", 8, output=tmp_path / "yolo11n-gray-CBAM.yaml", imgsz=320, checks="all")
    assert report.verified, [c.as_dict() for c in report.checks if not c.ok]
    model = ultra.build_model(model_doc.load(report.output).plain(), "n", report.output.name)
    assert model.model[0].conv.in_channels == 1 and ultra.input_channels(model) == 1


def test_grayscale_model_shows_and_verifies(tmp_path):
    """Every built-in check feeds the model its own channel count (a 3-channel image would fail its first conv)."""
    path = _one_channel_yaml(tmp_path)
    _, _, rows, _ = show(path, imgsz=320)
    assert rows[0].out_channels == 16 and rows[0].stride == 2
    report = api.insert(path, "SE", 8, output=tmp_path / "yolo11n-gray-SE.yaml", imgsz=320)
    assert report.verified, report.checks


# --------------------------------------------------------------------------------------------------------------------
# Every check can fail, naming the layer and the fix


def test_half_fails_on_a_float32_scratch_tensor(plugin, tmp_path):
    @plugin
    @register_module(**module_meta())
    class Float32Scratch(AttentionModule):
        """Copies its input into a float32 scratch tensor by index, as much copied attention code does."""

        def __init__(self, c1: int) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(c1, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(x.shape, device=x.device)  # float32 whatever the input is
            out[:, torch.arange(x.shape[1], device=x.device)] = x
            return out * self.weight

    out = tmp_path / "yolo11n-Float32Scratch.yaml"
    assert api.insert("yolo11n.yaml", "Float32Scratch", 8, imgsz=320, write=False).verified  # float32 is fine
    with pytest.raises(VerificationError) as info:
        api.insert("yolo11n.yaml", "Float32Scratch", 8, output=out, imgsz=320, checks="half")
    checks = _checks_of(info.value)
    for name in ("half: autocast bfloat16", "half: float16 weights"):
        detail = checks[name].detail
        assert checks[name].ok is False
        assert detail.startswith("forward: layer 9 (Float32Scratch) failed on a 1x256x10x10 feature map: RuntimeError")
        assert "create it with dtype=x.dtype" in detail  # the known fix
    assert str(info.value).startswith("check 'half: autocast bfloat16' failed: forward: layer 9 (Float32Scratch)")
    assert not out.exists()


def test_export_fails_on_an_op_onnx_cannot_export(plugin, tmp_path):
    @plugin
    @register_module(**module_meta())
    class FourierGate(AttentionModule):
        """Gates channels by their spectrum energy (torch.fft, which the ONNX exporter does not support)."""

        def __init__(self, c1: int) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1, c1, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            energy = torch.fft.rfft2(x, norm="ortho").abs().mean((-2, -1), keepdim=True)
            return x * torch.sigmoid(energy * self.weight)

    with pytest.raises(VerificationError) as info:
        api.insert("yolo11n.yaml", "FourierGate", 8, imgsz=320, write=False, checks="export")
    check = _checks_of(info.value)["export onnx"]
    assert check.ok is False
    assert check.detail.startswith("export failed: layer 9 (FourierGate) failed")
    assert "Exporting the operator 'aten::fft_rfft2' to ONNX opset version 18 is not supported" in check.detail
    assert "fix: rewrite the operation with ONNX-exportable ops" in check.detail


def test_export_names_a_shape_frozen_at_trace_time(plugin):
    @plugin
    @register_module(**module_meta())
    class FrozenPool(AttentionModule):
        """Adds the column means, broadcast to a height it reads as a Python int (frozen by tracing)."""

        def __init__(self, c1: int) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1, c1, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = int(x.shape[2])  # a Python int: the trace keeps the traced size's value
            return x + self.weight * x.mean(2, keepdim=True).expand(-1, -1, h, -1)

    model = _built("FrozenPool", 8)
    [check] = run_extra_checks(model, ["export"], 320, "cpu", {})
    # Fixed-size exports (Ultralytics' default, the module contract) work at each size: a pass that says what fails
    assert check.ok is True
    assert check.detail.startswith(
        "fixed-size ONNX (opset 18, dynamic=False) matches PyTorch at 320x320 and 224x320 (worst |Δ| "
    )
    assert "of the output); but dynamic=True exports fail: at 224x320 onnxruntime fails in layer 9 (FrozenPool): " in (
        check.detail
    )
    assert re.search(r"layer 9 \(FrozenPool\) computes a size in Python at test_deploy_checks\.py:\d+", check.detail)


def test_export_fails_when_onnx_and_pytorch_differ(plugin):
    @plugin
    @register_module(**module_meta())
    class PythonScale(AttentionModule):
        """Normalises by its input's peak read as a Python float, which tracing freezes to the traced input's."""

        def __init__(self, c1: int) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1, c1, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            peak = float(x.detach().abs().amax()) + 1e-6  # a Python float: ONNX keeps the value of the exporter's image
            return x / peak * self.weight

    model = _built("PythonScale", 0)
    [check] = run_extra_checks(model, ["export"], 320, "cpu", {})
    assert check.ok is False
    assert re.fullmatch(
        r"at 320x320 onnxruntime differs from PyTorch: max \|Δ\| \S+ where float32 rounding alone gives \S+ "
        r"\(allowed \S+\)",
        check.detail,
    ), check.detail


def test_val_fails_on_a_module_that_breaks_when_fused(plugin):
    from ultralytics.nn.modules import Conv

    @plugin
    @register_module(**module_meta())
    class ReadsBatchNorm(AttentionModule):
        """Calls its Conv's BatchNorm directly, which Ultralytics' fuse() removes for validation and export."""

        def __init__(self, c1: int) -> None:
            super().__init__()
            self.cv = Conv(c1, c1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.cv.act(self.cv.bn(self.cv.conv(x)))

    model = _built("ReadsBatchNorm", 8)
    [check] = run_extra_checks(model, ["val"], 320, "cpu", {9: "ReadsBatchNorm constraints: none"})
    assert check.ok is False
    assert check.detail == (
        "layer 9 (ReadsBatchNorm) failed on a 2x256x8x11 feature map: AttributeError: 'Conv' object has no "
        "attribute 'bn'; ReadsBatchNorm constraints: none"
    )


def _built(module, after):
    _, _, _, result = api.plan_insert("yolo11n.yaml", module, after)
    cfg = model_doc.to_plain(tree_edits.apply(model_doc.load("yolo11n.yaml"), result, in_place=True))
    return ultra.build_model(cfg, "n", f"yolo11n-{module}.yaml")


# --------------------------------------------------------------------------------------------------------------------
# Skipped is not verified


@pytest.mark.slow
def test_a_skipped_training_step_leaves_the_model_partly_verified():
    report = api.insert("yolov8s-worldv2.yaml", "SE", 9, write=False)
    assert _checks_of(report)["train step"].ok is None
    assert [c.name for c in report.skipped] == ["train step"] and not report.verified
    data = json.loads(json.dumps(report.as_dict(), default=str))
    assert data["verified"] is False and data["skipped"] == ["train step"]


# --------------------------------------------------------------------------------------------------------------------
# The Ultralytics internals the checks rely on


def test_ultralytics_internals_the_checks_use():
    from ultralytics.utils import checks as ultralytics_checks

    # check_amp reads WEIGHTS_DIR from ultralytics.utils when it runs and loads a .pt from it by name
    source = inspect.getsource(ultralytics_checks.check_amp)
    assert "from ultralytics.utils import WEIGHTS_DIR" in source
    assert re.search(r'WEIGHTS_DIR\s*/\s*"[\w.-]+\.pt"', source)
    # rectangular validation: ceil([h/w ratio, 1] * imgsz / stride + 0.5) * stride for a batch of landscape images
    assert rect_batch_shape(((480, 640), (360, 640)), 640, 32) == (512, 672)
    assert rect_batch_shape(((640, 480), (640, 360)), 640, 32) == (672, 512)
    expected = {
        "yolo11n.yaml": "DetectionValidator",
        "yolo11n-seg.yaml": "SegmentationValidator",
        "yolo11n-pose.yaml": "PoseValidator",
        "yolo11n-obb.yaml": "OBBValidator",
        "yolo11n-cls.yaml": "ClassificationValidator",
    }
    for name, validator in expected.items():
        model = ultra.build_model(model_doc.load(name).plain(), "n", name)
        assert validator_class(model).__name__ == validator


def test_export_writes_nothing_outside_a_temporary_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = ultra.build_model(model_doc.load("yolo11n-cls.yaml").plain(), "n", "yolo11n-cls.yaml")
    [check] = run_extra_checks(model, "export", 64, "cpu")
    assert check.ok, check
    assert list(tmp_path.iterdir()) == []
