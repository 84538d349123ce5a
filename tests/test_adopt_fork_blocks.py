"""``adopt`` on fork blocks named after their attention (C2f_EMA, C3k2_CBAM): Augment rows, the placement assumed
or read from the fork's source (``--fork``, never run), and the parameter count of the fork's own block when built.

The fork classes below follow the published patterns: a Bottleneck subclass building the attention, used by a C2f
subclass (attention in each bottleneck), and a C3k2 subclass applying the attention to its output."""

from __future__ import annotations

import inspect
import textwrap

import pytest
import torch
from typer.testing import CliRunner
from ultralytics.nn.modules.block import Bottleneck, C2f, C3k2

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.cli import app
from attnsurgeon.core import yamlio
from attnsurgeon.ultralytics_bridge import ultra

runner = CliRunner()
EMA = REGISTRY.load_class("EMA")
CBAM = REGISTRY.load_class("CBAM")


class Bottleneck_EMA(Bottleneck):
    def __init__(self, c1, c2, shortcut=True, g=1, k=(3, 3), e=0.5):
        super().__init__(c1, c2, shortcut, g, k, e)
        self.att = EMA(c2)

    def forward(self, x):
        y = self.att(self.cv2(self.cv1(x)))
        return x + y if self.add else y


class C2f_EMA(C2f):
    def __init__(self, c1, c2, n=1, shortcut=False, g=1, e=0.5):
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = torch.nn.ModuleList(Bottleneck_EMA(self.c, self.c, shortcut, g, k=(3, 3), e=1.0) for _ in range(n))


class C3k2_CBAM(C3k2):
    def __init__(self, c1, c2, n=1, c3k=False, e=0.5, g=1, shortcut=True):
        super().__init__(c1, c2, n, c3k, e, g=g, shortcut=shortcut)
        self.cbam = CBAM(c2)

    def forward(self, x):
        return self.cbam(super().forward(x))


class C3k2_SE(C3k2):
    pass


YAML = """\
nc: 80
scales:
  n: [0.33, 0.25, 1024]
backbone:
  - [-1, 1, Conv, [64, 3, 2]] # 0-P1/2
  - [-1, 1, Conv, [128, 3, 2]] # 1-P2/4
  - [-1, 3, C2f_EMA, [128, True]]
  - [-1, 1, Conv, [256, 3, 2]] # 3-P3/8
  - [-1, 3, C3k2_CBAM, [256, False, 0.25]]
head:
  - [[4], 1, Detect, [nc]]
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "yolo-fork-n.yaml").write_text(YAML)
    src = tmp_path / "fork" / "ultralytics" / "nn" / "modules"
    src.mkdir(parents=True)
    body = "\n\n".join(textwrap.dedent(inspect.getsource(c)) for c in (Bottleneck_EMA, C2f_EMA, C3k2_CBAM, C3k2_SE))
    (src / "block.py").write_text("raise SystemExit('the fork must not be run')\n\n" + body)
    return tmp_path


def adopted(here, *extra: str) -> tuple[str, str]:
    result = runner.invoke(app, ["adopt", "yolo-fork-n.yaml", "--no-verify", *extra], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return result.output, (here / "yolo-fork-n-adopted.yaml").read_text()


def test_without_the_fork_bottleneck_is_assumed_and_the_report_says_how_to_choose(here):
    output, text = adopted(here)
    assert "  - [-1, 3, Augment, [C2f, [128, True], EMA, [32], bottleneck]]\n" in text
    assert "  - [-1, 3, Augment, [C3k2, [256, False, 0.25], CBAM, [16, 7], bottleneck]]\n" in text
    assert "C2f_EMA is C2f with EMA inside: assumed --where bottleneck" in output
    assert "run adopt --where output, or adopt --fork PATH" in output


def test_where_output_is_taken_as_asked(here):
    _, text = adopted(here, "--where", "output")
    assert "  - [-1, 3, Augment, [C2f, [128, True], EMA, [32], output]]\n" in text


def test_fork_source_decides_the_placement_without_running_it(here):
    output, text = adopted(here, "--fork", "fork")
    assert "  - [-1, 3, Augment, [C2f, [128, True], EMA, [32], bottleneck]]\n" in text
    assert "  - [-1, 3, Augment, [C3k2, [256, False, 0.25], CBAM, [16, 7], output]]\n" in text
    assert "C2f_EMA builds Bottleneck_EMA, which builds EMA (in each bottleneck)" in output
    assert "C3k2_CBAM.__init__ builds CBAM itself (after its last conv)" in output


def test_a_fork_class_with_no_attention_is_refused_in_one_line(here):
    (here / "yolo-fork-n.yaml").write_text(YAML.replace("C3k2_CBAM", "C3k2_SE"))
    result = runner.invoke(app, ["adopt", "yolo-fork-n.yaml", "--no-verify", "--fork", "fork"])
    assert result.exit_code == 6, result.output
    assert result.output.strip().splitlines() == [
        "error: --fork fork: C3k2_SE (block.py) builds SE neither itself nor in a bottleneck class it builds, so its "
        "placement is neither --where output nor bottleneck; write the row by hand"
    ]
    assert not (here / "yolo-fork-n-adopted.yaml").exists()


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_adopted_rows_have_the_fork_blocks_parameter_count(here):
    _, text = adopted(here, "--fork", "fork")
    model = ultra.build_model(yamlio.to_plain(yamlio.loads(text)), "n", "yolo-fork-n.yaml")
    # scale n: width 0.25, depth 0.33 -> C2f 32->32 channels, n=1; C3k2 64->64, n=1 (worked out from the YAML)
    assert count(model.model[2]) == count(C2f_EMA(32, 32, 1, True))
    assert count(model.model[4]) == count(C3k2_CBAM(64, 64, 1, False, 0.25))


def test_an_unknown_where_is_a_usage_error(here):
    result = runner.invoke(app, ["adopt", "yolo-fork-n.yaml", "--no-verify", "--where", "inside"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "error: --where 'inside': a fork block's attention goes in each bottleneck or at the output"
    ]
    assert not (here / "yolo-fork-n-adopted.yaml").exists()
