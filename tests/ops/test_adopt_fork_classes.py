"""``adopt`` on fork blocks named after the fork's own attention class (``C2f_Attention``, ``C3k2_LocalAttn``), whose
attention is not a catalog module: with ``--fork`` the class is used as a module from the file that defines it
(``FILE.py:Class``, recorded under ``attnsurgeon_plugins``), with the args the fork builds it with; without it, or where
the class cannot be used, one line says what to do and nothing is written.

The fork below follows the published layout: its attention classes live in their own file (imported to build them);
its blocks live in ``block.py``, read with ``ast`` only (it raises if run)."""

from __future__ import annotations

import inspect
import textwrap

import pytest
import torch
from torch import nn
from typer.testing import CliRunner
from ultralytics.nn.modules.block import Bottleneck, C2f, C3k2

from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.ultralytics_bridge import ultra

runner = CliRunner()


class Attention(nn.Module):
    """A fork's channel gate: a squeeze-excitation with its own reduction."""

    def __init__(self, channels, reduction=8):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))


class LocalAttn(nn.Module):
    """A fork's spatial gate from a depth-wise conv."""

    def __init__(self, dim, kernel=7, bias=True):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim, bias=bias)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(x))


class Bottleneck_Attention(Bottleneck):
    def __init__(self, c1, c2, shortcut=True, g=1, k=(3, 3), e=0.5):
        super().__init__(c1, c2, shortcut, g, k, e)
        self.att = Attention(c2, 4)

    def forward(self, x):
        y = self.att(self.cv2(self.cv1(x)))
        return x + y if self.add else y


class C2f_Attention(C2f):
    def __init__(self, c1, c2, n=1, shortcut=False, g=1, e=0.5):
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = nn.ModuleList(Bottleneck_Attention(self.c, self.c, shortcut, g, k=(3, 3), e=1.0) for _ in range(n))


class C3k2_LocalAttn(C3k2):
    def __init__(self, c1, c2, n=1, c3k=False, e=0.5, g=1, shortcut=True):
        super().__init__(c1, c2, n, c3k, e, g=g, shortcut=shortcut)
        self.attn = LocalAttn(c2, kernel=5)

    def forward(self, x):
        return self.attn(super().forward(x))


YAML = """\
nc: 80
scales:
  n: [0.33, 0.25, 1024]
backbone:
  - [-1, 1, Conv, [64, 3, 2]] # 0-P1/2
  - [-1, 1, Conv, [128, 3, 2]] # 1-P2/4
  - [-1, 3, C2f_Attention, [128, True]]
  - [-1, 1, Conv, [256, 3, 2]] # 3-P3/8
  - [-1, 3, C3k2_LocalAttn, [256, False, 0.25]]
head:
  - [[4], 1, Detect, [nc]]
"""
ATTENTION_FILE = "fork/ultralytics/nn/extra_modules/attention.py"


@pytest.fixture
def here(tmp_path, monkeypatch, clean_registry):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "yolo-fork-n.yaml").write_text(YAML)
    write_fork(tmp_path)
    return tmp_path


def write_fork(tmp_path):
    """The fork's source under ``tmp_path/fork``: its blocks in block.py, its attention classes in their own file."""
    modules = tmp_path / "fork" / "ultralytics" / "nn" / "modules"
    modules.mkdir(parents=True)
    blocks = (Bottleneck_Attention, C2f_Attention, C3k2_LocalAttn)
    header = "raise SystemExit('the fork must not be run')\nfrom ..extra_modules.attention import *\n\n"
    (modules / "block.py").write_text(header + "\n\n".join(textwrap.dedent(inspect.getsource(c)) for c in blocks))
    attention = tmp_path / ATTENTION_FILE
    attention.parent.mkdir(parents=True)
    classes = "\n\n".join(inspect.getsource(c) for c in (Attention, LocalAttn))
    attention.write_text("import torch\nfrom torch import nn\n\n\n" + classes)


def adopt(*extra: str):
    return runner.invoke(app, ["adopt", "yolo-fork-n.yaml", *extra], env={"COLUMNS": "400"})


def test_the_forks_own_attention_becomes_the_module_of_an_augment_row(here):
    result = adopt("--no-verify", "--fork", "fork")
    assert result.exit_code == 0, result.output
    text = (here / "yolo-fork-n-adopted.yaml").read_text()
    rows = [line for line in text.splitlines() if "Augment" in line]
    assert rows == [
        "  - [-1, 3, Augment, [C2f, [128, True], Attention, [4], bottleneck]]",
        "  - [-1, 3, Augment, [C3k2, [256, False, 0.25], LocalAttn, [kernel: 5], output]]",
    ]
    assert f"attnsurgeon_plugins: [{ATTENTION_FILE}:Attention, {ATTENTION_FILE}:LocalAttn]" in text
    assert (
        f"C2f_Attention is C2f with the fork's own Attention ({ATTENTION_FILE}:Attention, used as the module "
        "Attention) inside: block.py: C2f_Attention.m builds Bottleneck_Attention"
    ) in result.output
    assert "Attention args [4] as the fork builds it (Attention(c2, 4))" in result.output
    assert "LocalAttn args [{kernel: 5}] as the fork builds it (LocalAttn(c2, kernel=5))" in result.output


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_adopted_rows_build_with_the_fork_blocks_parameter_count(here):
    result = adopt("--fork", "fork", "--imgsz", "128")  # verified: built, run and trained once before it is written
    assert result.exit_code == 0, result.output
    assert "parameter tensors of the edited layers get finite gradients" in result.output  # the adopted rows trained
    text = (here / "yolo-fork-n-adopted.yaml").read_text()
    model = ultra.build_model(model_doc.to_plain(model_doc.loads(text)), "n", "yolo-fork-n.yaml")
    # scale n: width 0.25, depth 0.33 -> C2f 32->32 channels, n=1; C3k2 64->64, n=1 (worked out from the YAML)
    assert count(model.model[2]) == count(C2f_Attention(32, 32, 1, True))
    assert count(model.model[4]) == count(C3k2_LocalAttn(64, 64, 1, False, 0.25))
    shown = runner.invoke(app, ["show", "yolo-fork-n-adopted.yaml"])  # the recorded file loads in a later command
    assert shown.exit_code == 0, shown.output


def test_a_call_that_is_not_literals_keeps_the_defaults_and_says_so(here):
    block = here / "fork/ultralytics/nn/modules/block.py"
    block.write_text(block.read_text().replace("Attention(c2, 4)", "Attention(c2, self.r)"))
    result = adopt("--no-verify", "--fork", "fork")
    assert result.exit_code == 0, result.output
    assert (
        "  - [-1, 3, Augment, [C2f, [128, True], Attention, [], bottleneck]]\n"
        in (here / "yolo-fork-n-adopted.yaml").read_text()
    )
    assert "default Attention args (it passes self.r, not a literal: check them)" in result.output


def test_without_the_fork_the_row_is_named_with_the_way_to_adopt_it(here):
    result = adopt("--no-verify")
    assert result.exit_code == 6, result.output
    assert result.output.strip().splitlines()[-1] == (
        "error: yolo-fork-n.yaml: layer 2 [-1, 3, C2f_Attention, [128, True]] cannot be adopted: C2f_Attention is "
        "neither a catalog module nor an Ultralytics module; it looks like C2f with the fork's own Attention inside: "
        "adopt --fork PATH (the fork's Python source) uses that class as the module, or make it a plugin module "
        "(`--plugin FILE.py`, or an `attnsurgeon.modules` entry point) so it builds; nothing was written"
    )
    assert not (here / "yolo-fork-n-adopted.yaml").exists()


def test_a_fork_without_the_class_is_named(here):
    (here / ATTENTION_FILE).write_text("class Other:\n    pass\n")
    result = adopt("--no-verify", "--fork", "fork")
    assert result.exit_code == 6, result.output
    assert "but --fork fork defines no class Attention; nothing was written" in result.output.splitlines()[-1]
    assert not (here / "yolo-fork-n-adopted.yaml").exists()


def test_a_class_whose_file_does_not_import_on_its_own_is_one_line(here):
    path = here / ATTENTION_FILE
    path.write_text("from ..modules.conv import Conv\n" + path.read_text())  # a relative import: needs the fork
    read = adopt("--no-verify", "--fork", "fork", "--dry-run")  # read with ast: adopted, the file never imported
    assert read.exit_code == 0, read.output
    result = adopt("--fork", "fork", "--imgsz", "64")  # verifying imports it
    assert result.exit_code == 6, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: yolo-fork-n.yaml: layer 2 [-1, 3, C2f_Attention, [128, True]] cannot be adopted:")
    assert "importing it failed: ImportError: attempted relative import with no known parent package" in last
    assert last.endswith(
        "put the class in a file that imports on its own and run adopt with --plugin FILE.py:Attention; nothing "
        "was written"
    )
    assert "Traceback" not in result.output
    assert not (here / "yolo-fork-n-adopted.yaml").exists()


def test_a_class_with_no_channel_argument_says_how_adopt_names_one(here):
    path = here / ATTENTION_FILE
    path.write_text(path.read_text().replace("channels", "width"))  # Attention(width, reduction=8)
    result = adopt("--no-verify", "--fork", "fork")
    assert result.exit_code == 6, result.output
    last = result.output.strip().splitlines()[-1]
    source = f"{ATTENTION_FILE}:Attention"
    assert f"plugin {source}: Attention(width, reduction) has no channel argument" in last
    assert last.endswith(f"name it: adopt --plugin {source}?channel=NAME; nothing was written")
    named = adopt("--no-verify", "--fork", "fork", "--plugin", f"{source}?channel=width")
    assert named.exit_code == 0, named.output
    assert "Augment, [C2f, [128, True], Attention, [4], bottleneck]]" in (here / "yolo-fork-n-adopted.yaml").read_text()


def test_a_fork_class_that_changes_the_shape_is_refused_before_a_build(here):
    path = here / ATTENTION_FILE
    doubled = path.read_text().replace("return x * torch", "return torch.cat([x, x], 1) * torch")
    path.write_text(doubled.replace("nn.Conv2d(hidden, channels, 1)", "nn.Conv2d(hidden, 2 * channels, 1)"))
    result = adopt("--fork", "fork", "--imgsz", "128")
    assert result.exit_code == 7, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"error: Attention ({here / ATTENTION_FILE}:Attention): output 1x128x20x20 for input 1x64x20x20: the module "
        "changes the channel count; it cannot be inserted between layers"
    )
    assert "✓ build" not in result.output and "RuntimeError" not in result.output
    assert not (here / "yolo-fork-n-adopted.yaml").exists()
