"""Bad input for a plain nn.Module class: a file that does not import, a class that is not there or not an
nn.Module, a constructor with no channel argument, args that do not bind, a library that is not installed. Each is
one line on stderr with its exit code, no traceback, and nothing written."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app

runner = CliRunner()

GATE = """import torch
from torch import nn


def helper(x):
    return x


class Config:
    reduction = 16


class SpatialOnly(nn.Module):
    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))


class Gate(nn.Module):
    def __init__(self, channels, reduction=16, *, use_max=True):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)
        self.use_max = use_max

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))
"""


@pytest.fixture
def here(tmp_path, monkeypatch, clean_registry):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gate.py").write_text(GATE)
    # the class is read from the syntax tree; the import fails when the model is built (insert verifies)
    (tmp_path / "missing_dep.py").write_text("import not_a_real_package_xyz\n\n\nclass Gate:\n    pass\n")
    (tmp_path / "raises.py").write_text("raise RuntimeError('this file needs a GPU')\n\n\nclass Gate:\n    pass\n")
    (tmp_path / "bad_syntax.py").write_text("class Gate(:\n")
    (tmp_path / "nothing.py").write_text("import torch\n\n\nclass Holder(torch.nn.Module):\n    pass\n")
    return tmp_path


def insert(*args: str):
    return runner.invoke(app, ["insert", "yolo11n.yaml", "--after", "8", "-o", "out.yaml", *args])


CASES = [
    (
        ["-m", "missing_dep.py:Gate"],
        7,
        "plugin missing_dep.py:Gate: importing it failed: ModuleNotFoundError: No module named "
        "'not_a_real_package_xyz' (not_a_real_package_xyz is neither installed nor a package of the file's repository; "
        "install what provides it)",
    ),
    (["-m", "raises.py:Gate"], 7, "plugin raises.py:Gate: importing it failed: RuntimeError: this file needs a GPU"),
    (["-m", "bad_syntax.py:Gate"], 7, "plugin bad_syntax.py:Gate: syntax error at line 1: invalid syntax"),
    (["-m", "nofile.py:Gate"], 7, "plugin nofile.py:Gate: nofile.py no such file"),
    (
        ["-m", "gate.py:Nope"],
        7,
        "plugin gate.py:Nope: defines no class Nope (its classes: Config, SpatialOnly, Gate)",
    ),
    (
        ["-m", "gate.py:helper"],
        7,
        "plugin gate.py:helper: helper (a function) is not a torch.nn.Module subclass; an attention module is a "
        "class whose forward(x) returns x's shape",
    ),
    (
        ["-m", "gate.py:Config"],
        7,
        "plugin gate.py:Config: Config is not a torch.nn.Module subclass; an attention module is a class whose "
        "forward(x) returns x's shape",
    ),
    (
        ["-m", "gate.py:Gate", "--channel-arg", "width"],
        7,
        "plugin gate.py:Gate?channel=width: --channel-arg 'width' is not a parameter of Gate(channels, reduction, "
        "use_max)",
    ),
    (
        ["-m", "gate.py:Gate", "--args", "{reductio: 8}"],
        6,
        "Gate [{reductio: 8}]: has no parameter 'reductio'; did you mean reduction?; signature: "
        "Gate(channels=<input channels>, reduction = 16, *, use_max = True)",
    ),
    (
        ["-m", "gate.py:Gate", "--args", "[8, true]"],
        6,
        "Gate [8, True]: takes 1 positional hyper-parameter(s) (after channels: reduction), got 2; signature: "
        "Gate(channels=<input channels>, reduction = 16, *, use_max = True)",
    ),
    (
        ["-m", "gate.py:Gate", "--args", "{channels: 64}"],
        6,
        "Gate [{channels: 64}]: channels is the input channel count, inferred from the layer the module follows; do "
        "not give it; signature: Gate(channels=<input channels>, reduction = 16, *, use_max = True)",
    ),
    (
        ["-m", "gate.py:Gate", "--args", "[8, {reduction: 4}]"],
        6,
        "Gate [8, {reduction: 4}]: reduction is given twice, by position and by keyword; signature: "
        "Gate(channels=<input channels>, reduction = 16, *, use_max = True)",
    ),
    (["-m", "notalib:Gate"], 7, "plugin notalib:Gate: notalib is not installed (pip install notalib)"),
    (["-m", "timm:NoSuchLayer"], 7, "plugin timm:NoSuchLayer: neither timm nor timm.layers defines NoSuchLayer"),
    (
        ["-m", "SE", "--plugin", "nothing.py"],
        7,
        "plugin nothing.py: registers no module and offers no attention class; its classes: Holder "
        "(no forward) (decorate a class with @register_module(...) from attnsurgeon.catalog, or name "
        "one: FILE.py:ClassName)",
    ),
    (
        ["-m", "SE", "--channel-arg", "width"],
        2,
        "--channel-arg width: no plain nn.Module class on the command line to give it to; it is for -m FILE.py:Class, "
        "-m timm:Class or --plugin FILE.py:Class (catalog modules know their channel argument)",
    ),
]


@pytest.mark.parametrize(("argv", "code", "message"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(here, argv, code, message):
    before = sorted(p.name for p in here.iterdir())
    result = insert(*argv)
    assert result.exit_code == code, result.output
    assert result.output == f"error: {message}\n"
    assert sorted(p.name for p in here.iterdir()) == before


def test_required_hyper_parameter_is_named(here):
    (here / "heads.py").write_text(
        "from torch import nn\n\n\nclass Heads(nn.Module):\n    def __init__(self, dim, num_heads):\n"
        "        super().__init__()\n        self.proj = nn.Conv2d(dim, dim, 1, groups=num_heads)\n\n"
        "    def forward(self, x):\n        return self.proj(x)\n"
    )
    result = insert("-m", "heads.py:Heads", "--no-verify")
    assert result.exit_code == 6
    assert result.output == (
        'error: Heads []: needs num_heads (no default), e.g. --args "{num_heads: ...}"; signature: '
        "Heads(dim=<input channels>, num_heads)\n"
    )
