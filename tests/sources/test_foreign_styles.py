"""Attention classes in the styles of public attention collections (issue 28), written here for the test: a
channel-free class, a parameter-free formula dividing by ``H*W-1``, a gate initialised to zero, a dead parameter, a
softmax without ``dim`` (over the batch on 3-D input), a flag or a group count named as the channel argument, and a
file importing its repository's own package.

Each is inserted with ``insert yolo11n.yaml -m FILE.py:Class --after 8`` and verified: inserted (with a warning where
the class fails only at sizes the model never meets at 640, or has a gradient zero only at initialisation), or
refused in one line naming every failure that breaks the model, worst first.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app

runner = CliRunner()
HEADER = "import torch\nfrom torch import nn\n\n\n"
STYLES = {
    "eca.py": """
class ECA(nn.Module):
    def __init__(self, kernel_size=3):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x):
        y = x.mean((2, 3)).unsqueeze(1)
        return x * torch.sigmoid(self.conv(y)).squeeze(1)[..., None, None]
""",
    "triplet.py": """
class Triplet(nn.Module):
    def __init__(self, no_spatial=False):
        super().__init__()
        self.no_spatial = no_spatial
        self.hw = nn.Conv2d(2, 1, 7, padding=3)
        self.cw = nn.Conv2d(2, 1, 7, padding=3)

    def gate(self, conv, x):
        return x * torch.sigmoid(conv(torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)))

    def forward(self, x):
        out = self.gate(self.cw, x.transpose(1, 2)).transpose(1, 2)
        return out if self.no_spatial else (out + self.gate(self.hw, x)) / 2
""",
    "sge.py": """
class SGE(nn.Module):
    def __init__(self, groups=8):
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.ones(1, groups, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, groups, 1, 1))

    def forward(self, x):
        b, c, h, w = x.shape
        g = x.reshape(b * self.groups, c // self.groups, h, w)
        t = (g * g.mean((2, 3), keepdim=True)).sum(1, keepdim=True).reshape(b, self.groups, h * w)
        t = (t - t.mean(-1, keepdim=True)) / (t.std(-1, keepdim=True) + 1e-5)
        t = t.reshape(b, self.groups, h, w) * self.weight + self.bias
        return (g * torch.sigmoid(t.reshape(b * self.groups, 1, h, w))).reshape(b, c, h, w)
""",
    "simam.py": """
class SimAM(nn.Module):
    def __init__(self, e_lambda=1e-4):
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x):
        n = x.shape[2] * x.shape[3] - 1  # the paper's formula: 0 at 1x1
        d = (x - x.mean((2, 3), keepdim=True)).pow(2)
        return x * torch.sigmoid(d / (4 * (d.sum((2, 3), keepdim=True) / n + self.e_lambda)) + 0.5)
""",
    "zero_gate.py": """
class ZeroGate(nn.Module):
    def __init__(self, channel=512):
        super().__init__()
        self.norm = nn.GroupNorm(channel // 8, channel)
        self.gate = nn.Parameter(torch.zeros(1, channel, 1, 1))  # as the reference initialises it

    def forward(self, x):
        return x * torch.sigmoid(self.gate * self.norm(x) + 1)
""",
    "dead.py": """
class Dead(nn.Module):
    def __init__(self, channel=512):
        super().__init__()
        self.fc = nn.Conv2d(channel, channel, 1)
        self.unused_scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True))) + 0 * self.unused_scale
""",
    "double.py": """
class DoubleAttention(nn.Module):
    def __init__(self, in_channels=512):
        super().__init__()
        self.a = nn.Conv2d(in_channels, in_channels, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        attention = nn.functional.softmax(self.a(x).view(b, c, h * w))  # no dim: the batch axis on 3-D input
        return x + (attention * x.view(b, c, h * w)).view(b, c, h, w)
""",
    "local_pkg.py": """from model.attention.base import Base  # the repository's own package


class Local(nn.Module):
    def __init__(self, channel=512):
        super().__init__()
        self.fc = nn.Conv2d(channel, channel, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x))
""",
}


@pytest.fixture
def here(tmp_path, monkeypatch, clean_registry):
    monkeypatch.chdir(tmp_path)
    for name, body in STYLES.items():
        (tmp_path / name).write_text(HEADER + body)
    (tmp_path / "model" / "attention").mkdir(parents=True)  # the local package, not importable from here
    (tmp_path / "model" / "attention" / "base.py").write_text("class Base:\n    pass\n")
    return tmp_path


def insert(*args: str):
    argv = ["insert", "yolo11n.yaml", "--after", "8", "-o", "out-n.yaml", "--imgsz", "256", *args]
    return runner.invoke(app, argv, env={"COLUMNS": "400"})


@pytest.mark.parametrize(
    ("module", "extra", "warning"),
    [
        ("eca.py:ECA", [], None),
        ("triplet.py:Triplet", [], None),
        ("sge.py:SGE", [], None),
        ("simam.py:SimAM", [], "the smallest size that works is 1x2"),
        (
            "zero_gate.py:ZeroGate",
            [],
            "zero gradient at initialisation only (block.norm.weight, block.norm.bias): alive after one step",
        ),
    ],
    ids=["channel-free", "channel-free-flag", "channel-free-groups", "formula-1x1", "zero-init-gate"],
)
def test_a_class_that_keeps_the_model_working_is_inserted(here, module, extra, warning):
    result = insert("-m", module, *extra)
    assert result.exit_code == 0, result.output
    assert (here / "out-n.yaml").is_file()
    if warning is not None:
        assert warning in result.output
        assert result.output.startswith("warning: ")


@pytest.mark.parametrize(
    ("module", "extra", "code", "line"),
    [
        (
            "triplet.py:Triplet",
            ["--channel-arg", "no_spatial"],
            7,
            "plugin triplet.py:Triplet?channel=no_spatial: --channel-arg 'no_spatial' is a flag of Triplet (a bool), "
            "not a width; a class without a channel argument is built with its own arguments: leave --channel-arg out",
        ),
        (
            "sge.py:SGE",
            ["--channel-arg", "groups"],
            7,
            "SGE ({p}/sge.py:SGE?channel=groups): --channel-arg groups does not set the module's width: built with "
            "groups=64, it takes 128-channel input as well; leave --channel-arg out (a class without a channel "
            "argument is built with its own arguments)",
        ),
        (
            "dead.py:Dead",
            [],
            7,
            "Dead ({p}/dead.py:Dead): exactly zero gradient at block.unused_scale, before and after an optimizer step: "
            "a dead parameter",
        ),
        (
            "double.py:DoubleAttention",
            [],
            7,
            "DoubleAttention ({p}/double.py:DoubleAttention): in eval, one image's output changes with the other "
            "images of its batch (a softmax or a statistic over the batch axis?): a detector's predictions must not "
            "depend on its batch",
        ),
    ],
    ids=["flag-as-width", "groups-as-width", "dead-parameter", "batch-dependent"],
)
def test_a_class_that_breaks_the_model_is_one_line(here, module, extra, code, line):
    result = insert("-m", module, *extra)
    assert result.exit_code == code, result.output
    assert result.output.strip().splitlines()[-1] == f"error: {line.format(p=here)}"
    assert "Traceback" not in result.output and not (here / "out-n.yaml").exists()


def test_a_local_package_import_says_how_to_make_it_importable(here):
    result = insert("-m", "local_pkg.py:Local")
    assert result.exit_code == 7, result.output
    last = result.output.strip().splitlines()[-1]
    assert "No module named 'model'" in last
    assert f"model is a package of the file's own repository ({here / 'model'})" in last
    assert "pip install" not in last


REQUIRED = """
class Heads(nn.Module):
    def __init__(self, channels, heads):
        super().__init__()
        self.heads = heads
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x))


class Svd(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        s = torch.linalg.svdvals(x.flatten(2)).mean(-1)  # no ONNX operator: the exporter prints its graph
        return x * torch.sigmoid(self.fc(x) + s[:, :, None, None])
"""


def test_check_module_takes_args_for_a_class_with_required_parameters(here):
    (here / "heads.py").write_text(HEADER + REQUIRED)
    without = runner.invoke(app, ["check-module", "heads.py:Heads", "--no-models"])
    assert without.exit_code == 9
    assert "hyper-parameters without a default: heads (check it with --args)" in without.output
    given = runner.invoke(app, ["check-module", "heads.py:Heads", "--no-models", "--args", "[4]"])
    assert given.exit_code == 0, given.output


def test_check_module_json_stdout_is_json_only(here):
    import json
    import os
    import subprocess
    import sys

    (here / "heads.py").write_text(HEADER + REQUIRED)
    argv = [sys.executable, "-m", "attnsurgeon", "check-module", "heads.py:Svd", "--no-models", "--json"]
    done = subprocess.run(argv, cwd=here, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 9
    checks = json.loads(done.stdout)["heads.py:Svd"]  # stdout parses: the exporter's dump went to stderr
    assert next(c for c in checks if c["name"] == "ONNX export parity")["ok"] is False
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")


def test_adopt_with_an_explicit_output_writes_a_file_that_needs_no_change(here):
    result = runner.invoke(app, ["adopt", "yolo11n.yaml", "-o", "copy-n.yaml", "--no-verify"])
    assert result.exit_code == 0, result.output
    assert "nothing to change: copy-n.yaml is a copy of" in result.output
    assert (here / "copy-n.yaml").is_file()
    plain = runner.invoke(app, ["adopt", "yolo11n.yaml", "--no-verify"])  # no -o: nothing written, as before
    assert plain.exit_code == 0 and not (here / "yolo11n-adopted.yaml").exists()


TOKENS = """
class TokenAttention(nn.Module):
    def __init__(self, dim, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):  # (B, N, C), as vision transformers' attention takes it
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = torch.softmax(q @ k.transpose(-2, -1) / (c // self.heads) ** 0.5, dim=-1) @ v
        return x + self.proj(y.transpose(1, 2).reshape(b, n, c))


class CrossAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)

    def forward(self, queries, keys, values):
        w = torch.softmax(self.q(queries) @ self.k(keys).transpose(1, 2) / queries.shape[-1] ** 0.5, dim=-1)
        return queries + w @ values


class FixedTokens(nn.Module):
    def __init__(self, dim, tokens=400):
        super().__init__()
        self.position = nn.Parameter(torch.zeros(1, tokens, dim))
        self.fc = nn.Linear(dim, dim)

    def forward(self, x):
        return x + self.fc(x + self.position)
"""


def test_a_token_class_is_refused_with_the_layout_that_works(here):
    (here / "tokens.py").write_text(HEADER + TOKENS)
    result = insert("-m", "tokens.py:TokenAttention")
    assert result.exit_code == 7, result.output
    last = result.output.strip().splitlines()[-1]
    assert "fails at 20x20: ValueError: too many values to unpack" in last  # b, n, c = x.shape on a 4-D map
    assert last.endswith("; it works on tokens (B, H*W, C): add --layout tokens")


@pytest.mark.parametrize(("module", "layout"), [("TokenAttention", "tokens"), ("CrossAttention", "qkv")])
def test_a_token_class_is_inserted_with_its_layout_recorded(here, module, layout):
    import subprocess
    import sys

    (here / "tokens.py").write_text(HEADER + TOKENS)
    result = insert("-m", f"tokens.py:{module}", "--layout", layout)
    assert result.exit_code == 0, result.output
    text = (here / "out-n.yaml").read_text()
    assert f"attnsurgeon_plugins: [tokens.py:{module}?layout={layout}]" in text
    code = "from ultralytics import YOLO; m = YOLO('out-n.yaml'); print(type(m.model.model[9]).__name__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=here, capture_output=True, text=True)  # a fresh process
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == module


def test_a_token_class_fixed_to_one_token_count_is_refused_saying_so(here):
    (here / "tokens.py").write_text(HEADER + TOKENS)
    result = insert("-m", "tokens.py:FixedTokens", "--layout", "tokens")
    assert result.exit_code == 7, result.output
    assert (
        result.output.strip()
        .splitlines()[-1]
        .endswith(
            "; it is fixed to one token count at construction (it works at 20x20 only), and a detector feeds many"
        )
    )
