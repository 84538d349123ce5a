"""``adopt`` on fork blocks named after their attention (C2f_EMA, C3k2_CBAM): Augment rows, the placement assumed
or read from the fork's source (``--fork``, never run), and the parameter count of the fork's own block when built.

The fork classes below follow the published patterns: a Bottleneck subclass applying the attention to its residual
branch, used by a C2f subclass (attention in each bottleneck); a C3k2 subclass applying it to the base block's output;
a C3 subclass applying it to its last conv through a local name; and a C2f subclass whose own ``__init__`` builds the
attentions while its forward applies them to each bottleneck's output (in each bottleneck, though ``__init__`` alone
would say the block has it). The placement is read from ``forward``."""

from __future__ import annotations

import inspect
import textwrap

import pytest
import torch
from typer.testing import CliRunner
from ultralytics.nn.modules.block import C3, Bottleneck, C2f, C3k2

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.ultralytics_bridge import ultra

runner = CliRunner()
EMA = REGISTRY.load_class("EMA")
CBAM = REGISTRY.load_class("CBAM")
SE = REGISTRY.load_class("SE")
ECA = REGISTRY.load_class("ECA")


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


class C3_SE(C3):
    def __init__(self, c1, c2, n=1, shortcut=True, g=1, e=0.5):
        super().__init__(c1, c2, n, shortcut, g, e)
        self.se = SE(c2)

    def forward(self, x):
        y = self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))
        return self.se(y)


class C2f_ECA(C2f):
    def __init__(self, c1, c2, n=1, shortcut=False, g=1, e=0.5):
        super().__init__(c1, c2, n, shortcut, g, e)
        self.atts = torch.nn.ModuleList(ECA(self.c) for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(att(m(y[-1])) for m, att in zip(self.m, self.atts, strict=True))
        return self.cv2(torch.cat(y, 1))


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
  - [-1, 3, C2f_ECA, [128, False]]
  - [-1, 1, Conv, [256, 3, 2]] # 4-P3/8
  - [-1, 3, C3k2_CBAM, [256, False, 0.25]]
  - [-1, 3, C3_SE, [256]]
head:
  - [[6], 1, Detect, [nc]]
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "yolo-fork-n.yaml").write_text(YAML)
    src = tmp_path / "fork" / "ultralytics" / "nn" / "modules"
    src.mkdir(parents=True)
    body = "\n\n".join(
        textwrap.dedent(inspect.getsource(c)) for c in (Bottleneck_EMA, C2f_EMA, C3k2_CBAM, C3_SE, C2f_ECA, C3k2_SE)
    )
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


def test_fork_source_decides_the_placement_from_forward_without_running_it(here):
    output, text = adopted(here, "--fork", "fork")
    assert "  - [-1, 3, Augment, [C2f, [128, True], EMA, [32], bottleneck]]\n" in text
    assert "  - [-1, 3, Augment, [C2f, [128, False], ECA, [1, 2, 0], bottleneck]]\n" in text
    assert "  - [-1, 3, Augment, [C3k2, [256, False, 0.25], CBAM, [16, 7], output]]\n" in text
    assert "  - [-1, 3, Augment, [C3, [256], SE, [16], output]]\n" in text
    assert (
        "C2f_EMA.m builds Bottleneck_EMA: Bottleneck_EMA.forward applies EMA to self.cv2(self.cv1(x)), so --where "
        "bottleneck (in each bottleneck)"
    ) in output
    # __init__ builds the attentions in the block itself, but forward applies them to each bottleneck's output
    assert "C2f_ECA.forward applies ECA to each bottleneck's output, m(y[-1]) (Augment attends before the" in output
    assert "C3k2_CBAM.forward applies CBAM to super().forward(x), so --where output (after the block's last conv)" in (
        output
    )
    assert "C3_SE.forward applies SE to self.cv3(" in output  # y = self.cv3(...); return self.se(y)


def test_a_fork_class_with_no_attention_is_refused_in_one_line(here):
    (here / "yolo-fork-n.yaml").write_text(YAML.replace("C3k2_CBAM", "C3k2_SE"))
    result = runner.invoke(app, ["adopt", "yolo-fork-n.yaml", "--no-verify", "--fork", "fork"])
    assert result.exit_code == 6, result.output
    assert result.output.strip().splitlines() == [
        "error: --fork fork: C3k2_SE builds SE neither itself nor in a bottleneck class it builds (block.py); "
        + PLACEMENTS
    ]
    assert not (here / "yolo-fork-n-adopted.yaml").exists()


PLACEMENTS = (
    "attnsurgeon's placements are output (after the last conv) and bottleneck (in each bottleneck's branch): "
    "--where forces one, or write the row by hand"
)
FORK_HEAD = "from ultralytics.nn.modules.block import C2f, Bottleneck\nfrom attention import EMA\n\n\n"
INIT = """    def __init__(self, c1, c2, n=1, shortcut=False, g=1, e=0.5):
        super().__init__(c1, c2, n, shortcut, g, e)
        self.att = EMA(c1)
"""
ELSEWHERE = {
    "on the input": (
        "class C2f_EMA(C2f):\n" + INIT + "\n    def forward(self, x):\n        x = self.att(x)\n"
        "        y = list(self.cv1(x).chunk(2, 1))\n        y.extend(m(y[-1]) for m in self.m)\n"
        "        return self.cv2(torch.cat(y, 1))\n",
        "C2f_EMA.forward applies EMA to the input (before cv1)",
    ),
    "on one chunk": (
        "class C2f_EMA(C2f):\n" + INIT + "\n    def forward(self, x):\n        a, b = self.cv1(x).chunk(2, 1)\n"
        "        b = self.att(b)\n        y = [a, b]\n        y.extend(m(y[-1]) for m in self.m)\n"
        "        return self.cv2(torch.cat(y, 1))\n",
        "C2f_EMA.forward applies EMA to one chunk (self.cv1(x).chunk(2, 1)[1])",
    ),
    "never": (
        "class C2f_EMA(C2f):\n" + INIT,
        "C2f_EMA builds EMA as self.att but its (inherited) forward never applies it",
    ),
    "after the addition": (
        "class Bottleneck_EMA(Bottleneck):\n    def __init__(self, c1, c2, shortcut=True, g=1, k=(3, 3), e=0.5):\n"
        "        super().__init__(c1, c2, shortcut, g, k, e)\n        self.att = EMA(c2)\n\n"
        "    def forward(self, x):\n        return self.att(x + self.cv2(self.cv1(x)))\n\n\n"
        "class C2f_EMA(C2f):\n    def __init__(self, c1, c2, n=1, shortcut=False, g=1, e=0.5):\n"
        "        super().__init__(c1, c2, n, shortcut, g, e)\n"
        "        self.m = nn.ModuleList(Bottleneck_EMA(self.c, self.c, shortcut, g, e=1.0) for _ in range(n))\n",
        "C2f_EMA.m builds Bottleneck_EMA: Bottleneck_EMA.forward applies EMA after the residual addition "
        "(x + self.cv2(self.cv1(x)))",
    ),
}


@pytest.mark.parametrize("case", sorted(ELSEWHERE))
def test_attention_applied_elsewhere_is_refused_saying_where(here, case):
    source, where = ELSEWHERE[case]
    (here / "other.py").write_text(FORK_HEAD + source)
    result = runner.invoke(app, ["adopt", "yolo-fork-n.yaml", "--no-verify", "--fork", "other.py"])
    assert result.exit_code == 6, result.output
    assert result.output.strip().splitlines() == [f"error: --fork other.py: {where} (other.py); {PLACEMENTS}"]
    assert not (here / "yolo-fork-n-adopted.yaml").exists()
    forced = runner.invoke(app, ["adopt", "yolo-fork-n.yaml", "--no-verify", "--fork", "other.py", "--where", "output"])
    assert forced.exit_code == 0, forced.output  # --where forces one (the fork is not read then)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_adopted_rows_have_the_fork_blocks_parameter_count(here):
    _, text = adopted(here, "--fork", "fork")
    model = ultra.build_model(model_doc.to_plain(model_doc.loads(text)), "n", "yolo-fork-n.yaml")
    # scale n: width 0.25, depth 0.33 -> C2f 32->32 channels, n=1; C3k2 and C3 64->64, n=1 (worked out from the YAML)
    assert count(model.model[2]) == count(C2f_EMA(32, 32, 1, True))
    assert count(model.model[3]) == count(C2f_ECA(32, 32, 1, False))
    assert count(model.model[5]) == count(C3k2_CBAM(64, 64, 1, False, 0.25))
    assert count(model.model[6]) == count(C3_SE(64, 64, 1))


def test_an_unknown_where_is_a_usage_error(here):
    result = runner.invoke(app, ["adopt", "yolo-fork-n.yaml", "--no-verify", "--where", "inside"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "error: --where 'inside': a fork block's attention goes in each bottleneck or at the output"
    ]
    assert not (here / "yolo-fork-n-adopted.yaml").exists()


def test_a_catalog_attention_built_with_literal_args_keeps_them(here):
    block = here / "fork" / "ultralytics" / "nn" / "modules" / "block.py"
    block.write_text(block.read_text().replace("self.att = EMA(c2)", "self.att = EMA(c2, factor=8)"))
    output, text = adopted(here, "--fork", "fork")
    assert "  - [-1, 3, Augment, [C2f, [128, True], EMA, [8], bottleneck]]\n" in text
    assert "EMA args [8] as the fork builds it (EMA(c2, factor=8))" in output
    assert "  - [-1, 3, Augment, [C3, [256], SE, [16], output]]\n" in text  # SE(c2): the defaults
