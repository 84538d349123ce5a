"""--checks export:FORMAT on the real exporters and runtimes (TorchScript, OpenVINO, NCNN) at imgsz 64: a module that
keeps its shape passes every format, a module that breaks export fails naming its layer, a missing runtime package is
one line naming the extra, and Ultralytics' check_requirements can never install anything."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from plugin_files import module_meta
from typer.testing import CliRunner

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module
from attnsurgeon.checks.opt_in import parse_checks, run_extra_checks
from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc, tree_edits
from attnsurgeon.errors import MissingExtraError
from attnsurgeon.ops import surgery as api
from attnsurgeon.ultralytics_bridge import exporting, ultra

pytest.importorskip("openvino", reason="the deploy extra (openvino) is not installed")
pytest.importorskip("ncnn", reason="the deploy extra (ncnn) is not installed")
pytest.importorskip("pnnx", reason="the deploy extra (pnnx) is not installed")


def _built(module, after):
    _, _, _, result = api.plan_insert("yolo11n.yaml", module, after)
    cfg = model_doc.to_plain(tree_edits.apply(model_doc.load("yolo11n.yaml"), result, in_place=True))
    return ultra.build_model(cfg, "n", f"yolo11n-{module}.yaml")


@pytest.fixture(scope="module")
def se_model():
    return _built("SE", 8)


def test_parse_export_formats():
    assert parse_checks("export:onnx,openvino,torchscript,ncnn") == (
        "export",
        "export:torchscript",
        "export:openvino",
        "export:ncnn",
    )
    assert parse_checks("export") == ("export",)  # as landed: ONNX
    assert parse_checks("all") == ("export", "half", "val")  # as landed: no format beyond ONNX
    assert parse_checks("half,export:all") == ("export", "export:torchscript", "export:openvino", "export:ncnn", "half")


@pytest.mark.parametrize("fmt", ["torchscript", "openvino", "ncnn"])
def test_a_shape_keeping_module_passes_every_format(se_model, fmt):
    [check] = run_extra_checks(se_model, [f"export:{fmt}"], 64)
    assert check.name == f"export {fmt}"
    assert check.ok is True, check.detail
    label = exporting.LABELS[fmt]
    assert check.detail.startswith(f"{label} matches PyTorch at 64x64 and 32x64 (worst |Δ| ")
    from attnsurgeon.checks.onnx_export import worst_of

    assert 0 <= worst_of(check.detail) < 1e-2  # the figure tables read back from the detail


def test_a_value_frozen_at_export_fails_naming_the_layer(plugin):
    @plugin
    @register_module(**module_meta())
    class PythonPeak(AttentionModule):
        """Normalises by its input's peak read as a Python float, which the trace freezes to the export image's."""

        def __init__(self, c1: int) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1, c1, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x / (float(x.detach().abs().amax()) + 1e-6) * self.weight

    [check] = run_extra_checks(_built("PythonPeak", 0), ["export:torchscript"], 64)
    assert check.ok is False
    assert check.detail.startswith("at 64x64 TorchScript differs from PyTorch: max |Δ| "), check.detail
    assert check.detail.endswith("layers from outside Ultralytics: 1 (PythonPeak)")


def test_an_op_the_converter_rejects_fails_naming_the_layer_and_op(plugin):
    @plugin
    @register_module(**module_meta())
    class FourierGate(AttentionModule):
        """Gates channels by their spectrum energy (torch.fft)."""

        def __init__(self, c1: int) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1, c1, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            energy = torch.fft.rfft2(x, norm="ortho").abs().mean((-2, -1), keepdim=True)
            return x * torch.sigmoid(energy * self.weight)

    [check] = run_extra_checks(_built("FourierGate", 8), ["export:ncnn"], 64)
    assert check.ok is False
    assert "9 (FourierGate)" in check.detail, check.detail


def test_a_missing_runtime_is_one_line_naming_the_extra(tmp_path):
    """openvino absent (its sys.modules entry None: an import fails as for a package not installed): the CLI says so
    in one line, exit code 13, before building anything."""
    script = (
        "import sys; sys.modules['openvino'] = None\n"
        "from attnsurgeon.cli import main\n"
        f"sys.argv = ['attnsurgeon', 'insert', 'yolo11n.yaml', '-m', 'SE', '-a', '8', '-o', r'{tmp_path / 'o.yaml'}',"
        " '--imgsz', '64', '--checks', 'export:openvino']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == MissingExtraError.exit_code, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    extra = "pip install 'attnsurgeon[deploy]'"
    assert lines == [f"error: OpenVINO needs the Python package 'openvino', which is not installed ({extra})"]
    assert not (tmp_path / "o.yaml").exists()


def test_ultralytics_check_requirements_never_installs():
    """Inside no_installs, the check_requirements every loaded Ultralytics module holds (the exporter's module-level
    import, the backends', ultralytics.utils.checks') refuses a missing requirement without running pip."""
    import ultralytics.engine.exporter as exporter_module
    import ultralytics.nn.backends.openvino as openvino_backend
    from ultralytics.utils import checks

    original = checks.check_requirements
    with exporting.no_installs():
        for holder in (checks, exporter_module, openvino_backend):
            assert getattr(holder.check_requirements, "refuses_install", False), holder
        assert checks.AUTOINSTALL is False
        with pytest.raises(MissingExtraError, match=r"attnsurgeon-no-such-package.*never installs"):
            exporter_module.check_requirements("attnsurgeon-no-such-package>=1")
        assert checks.check_requirements("attnsurgeon-no-such-package", install=False) is False
        assert checks.check_requirements("torch") is True
    assert checks.check_requirements is original and exporter_module.check_requirements is original


def test_cli_runs_a_format_check(tmp_path):
    out = tmp_path / "yolo11n-SE.yaml"
    args = ["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "-o", str(out), "--imgsz", "64"]
    result = CliRunner().invoke(app, [*args, "--checks", "export:torchscript", "--json"])
    assert result.exit_code == 0, result.output
    assert '"name": "export torchscript"' in result.output and out.exists()


def test_profile_format_times_the_export_and_caches_it(tmp_path, monkeypatch):
    from attnsurgeon.errors import UsageError
    from attnsurgeon.ops import profile as prof

    monkeypatch.setenv("ATTNSURGEON_CACHE_DIR", str(tmp_path))
    first = prof.profile("yolo11n.yaml", imgsz=64, runs=3, warmup=1, format="torchscript")[0]
    again = prof.profile("yolo11n.yaml", imgsz=64, runs=3, warmup=1, format="torchscript")[0]
    assert first.exported.cached is False and again.exported.cached is True  # same YAML: no second export
    assert again.exported.path == first.exported.path and again.exported.path.startswith(str(tmp_path))
    data = again.as_dict()["exported"]
    assert data["format"] == "torchscript" and data["latency_ms"]["runs"] == 3 and data["throughput"] > 0
    assert again.latency.runs == 3  # the PyTorch figures are still there
    with pytest.raises(UsageError, match="--format tflite: not a format profile times"):
        prof.profile("yolo11n.yaml", imgsz=64, format="tflite")


def test_a_param_ncnn_cannot_load_is_named_by_op_and_layer(tmp_path):
    from torch import nn

    from attnsurgeon.ultralytics_bridge import ncnn_param

    # what pnnx wrote for iRMB: a Reshape it could not give a static shape, fed by a 1x1 convolution 256 -> 512
    (tmp_path / "model.ncnn.param").write_text(
        "7767517\n3 3\n"
        "Input            in0      0 1 in0\n"
        "Convolution      conv_36  1 1 in0 112 0=512 1=1 11=1 12=1 13=1 14=0 2=1 3=1 4=0 5=0 6=131072\n"
        "Reshape          reshape_176 1 1 112 113\n",
        encoding="utf-8",
    )

    class Model(nn.Module):  # a model's layers as Ultralytics holds them: `model` is a list of layers
        def __init__(self) -> None:
            super().__init__()
            self.model = nn.ModuleList([nn.Conv2d(3, 256, 3), nn.Sequential(nn.Conv2d(256, 512, 1), nn.ReLU())])

    problem = ncnn_param.load_problem(tmp_path, Model())
    assert problem == (
        "NCNN cannot load op Reshape (reshape_176) as exported (pnnx wrote it without parameters: a shape it could not "
        "make static), in layer 1 (Sequential), after its 1x1 convolution to 512 channels"
    )
    # two layers with such a convolution: the op alone, never a guess
    twice = Model()
    twice.model.append(nn.Conv2d(256, 512, 1))
    assert ncnn_param.load_problem(tmp_path, twice).endswith("could not make static)")


@pytest.mark.slow
def test_an_ncnn_export_that_cannot_load_names_the_op_and_layer(tmp_path):
    # iRMB's attention reshapes through a shape pnnx cannot make static: NCNN refuses the file, and AutoBackend would
    # go on with an empty network whose first call raises a bare IndexError
    model = _built("iRMB", 8)
    [check] = run_extra_checks(model, ["export:ncnn"], 160, "cpu", {})
    assert check.ok is False
    assert check.detail.startswith(
        "at 160x160 NCNN cannot load op Reshape (reshape_176) as exported (pnnx wrote it without parameters: a shape "
        "it could not make static), in layer 9 (iRMB), after its 1x1 convolution to 512 channels"
    ), check.detail
    out = tmp_path / "yolo11n-iRMB.yaml"
    api.insert("yolo11n.yaml", "iRMB", after=8, output=out, verify=False)
    result = CliRunner().invoke(app, ["profile", str(out), "--format", "ncnn", "--imgsz", "160", "--runs", "2"])
    assert result.exit_code == 9, result.output
    assert "ncnn export at 160x160: NCNN cannot load op Reshape (reshape_176)" in result.output


def test_a_runtime_that_refuses_the_file_names_the_layer_and_op(se_model):
    from attnsurgeon.checks.format_exports import load_error

    # what OpenVINO 2026.4 raised compiling yolo11n with EfficientAttention after layer 8 at 160x160: its reason is
    # the last of a stack of "Exception from" lines, and the node's scope names the layer
    raised = RuntimeError(
        "Exception from src/inference/src/cpp/core.cpp:117:\nException from src/inference/src/dev/plugin.cpp:54:\n"
        "Check '!getSupportedPrimitiveDescriptors().empty()' failed at src/plugins/intel_cpu/src/node.cpp:345:\n"
        "Supported primitive descriptors list is empty for node: __module.model.9/aten::avg_pool2d/AvgPool_1 type: "
        "Pooling\n\n\n"
    )
    assert load_error(raised, se_model) == (
        " in layer 9 (SE), op avg_pool2d: Supported primitive descriptors list is empty for node: "
        "__module.model.9/aten::avg_pool2d/AvgPool_1 type: Pooling"
    )
    # a message without a node: its own last line, and the layers from outside Ultralytics
    assert load_error(RuntimeError("cannot read model.xml"), se_model) == (
        ": cannot read model.xml; layers from outside Ultralytics: 9 (SE)"
    )
