"""Issue 29: one writer for every model file (every line a rewrite need not change kept byte for byte, block style as
flow style), YOLOv5/v7-repository files named in one line on every path that builds, and a fork row named like an
Ultralytics module whose args do not fit it (``PSA [c]``) never passed on as it is.
Fixtures: tests/ops/issue29_yamls.py.
"""

from __future__ import annotations

import pytest
from issue29_yamls import LAYOUT_BLOCK, LAYOUT_ROW, PSA_FORK, YOLOV5_BLOCK, YOLOV7_FLOW
from typer.testing import CliRunner

from attnsurgeon.cli import app

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_adopt_keeps_every_other_line_of_a_block_file_byte_for_byte(here, newline):
    raw = LAYOUT_BLOCK.replace("\n", newline).encode()
    (here / "yolov8n-layout.yaml").write_bytes(raw)
    result = run("adopt", "yolov8n-layout.yaml", "--no-verify")
    assert result.exit_code == 0, result.output
    out = (here / "yolov8n-layout-adopted.yaml").read_bytes()
    old, new = (row.replace("\n", newline).encode() for row in LAYOUT_ROW)
    assert raw.count(old) == 1 and out == raw.replace(old, new)


def test_insert_keeps_every_other_line_of_a_block_file_byte_for_byte(here):
    adopted = LAYOUT_BLOCK.replace(*LAYOUT_ROW)
    (here / "yolov8n-layout.yaml").write_text(adopted)
    result = run("insert", "yolov8n-layout.yaml", "-m", "SE", "--after", "1", "--no-verify")
    assert result.exit_code == 0, result.output
    out = (here / "yolov8n-layout-SE.yaml").read_text()
    expected = (
        adopted.replace("# 1-P2/4\n", "# 1-P2/4\n  - [-1, 1, SE, [16]]   # 2 SE (attnsurgeon)\n")
        .replace("# 3-P3/8", "# 4-P3/8")
        .replace("# 4 attention", "# 5 attention")
        .replace("  # 5\n", "  # 6\n")
        .replace("[[-1, 2], 1, Concat, [1]]  # 7", "[[-1, 3], 1, Concat, [1]]  # 8")
        .replace("C2f, [128]] # 8", "C2f, [128]] # 9")
        .replace("[[8, 5], 1, Detect,   [nc]]        # 9", "[[9, 6], 1, Detect,   [nc]]        # 10")
    )
    assert out == expected


def test_a_yolov5_repository_file_is_named_in_one_line_under_verification(here):
    (here / "yolov5s-cbam.yaml").write_text(YOLOV5_BLOCK)
    result = run("adopt", "yolov5s-cbam.yaml")
    assert result.exit_code == 3, result.output
    last = result.output.strip().splitlines()[-1]
    assert last == (
        "error: yolov5s-cbam.yaml: Ultralytics cannot build layer 11 (anchor-based Detect [nc, anchors]): this is a "
        "YOLOv5-repository file; --no-verify (and show --no-build) edit it, or build it with that repository "
        "(github.com/ultralytics/yolov5)"
    )
    assert "TypeError" not in result.output
    assert "layer 5: [-1, 1, CBAM, [256]] -> [-1, 1, CBAM, [16, 7]]" in result.output
    assert sorted(p.name for p in here.iterdir()) == ["yolov5s-cbam.yaml"]
    edited = run("adopt", "yolov5s-cbam.yaml", "--no-verify")
    assert edited.exit_code == 0, edited.output
    assert "yolov5s-cbam.yaml is a YOLOv5-repository file: Ultralytics cannot build layer 11" in edited.output
    assert (here / "yolov5s-cbam-adopted.yaml").read_text() == YOLOV5_BLOCK.replace("CBAM, [256]", "CBAM, [16, 7]")


def test_a_yolov7_repository_file_is_said_to_be_one_not_module_by_module(here):
    (here / "yolov7-se.yaml").write_text(YOLOV7_FLOW)
    edited = run("adopt", "yolov7-se.yaml", "--no-verify")
    assert edited.exit_code == 0, edited.output
    assert "neither a catalog module" not in edited.output
    assert edited.output.count("is a YOLOv7-repository file") == 1
    assert (here / "yolov7-se-adopted.yaml").read_text() == YOLOV7_FLOW.replace("SE, [128, 8]", "SE, [8]")
    verified = run("adopt", "yolov7-se.yaml")
    assert verified.exit_code == 3
    assert "this is a YOLOv7-repository file; --no-verify" in verified.output.strip().splitlines()[-1]
    again = run("adopt", "yolov7-se-adopted.yaml", "--no-verify")
    assert again.exit_code == 0, again.output
    assert "every row already builds" not in again.output
    assert "Ultralytics cannot build this YOLOv7-repository file" in again.output


def test_every_build_path_names_the_repository(here):
    """profile builds through the same check as show and insert (ultra.build_model)."""
    (here / "yolov5s-cbam.yaml").write_text(YOLOV5_BLOCK.replace("CBAM, [256]", "CBAM, [16, 7]"))
    result = run("profile", "yolov5s-cbam.yaml")
    assert result.exit_code == 3, result.output
    assert "this is a YOLOv5-repository file" in result.output and "TypeError" not in result.output


def test_a_row_named_like_an_ultralytics_module_that_does_not_fit_it_is_never_passed_on(here):
    (here / "yolov5s-psa.yaml").write_text(PSA_FORK)
    result = run("adopt", "yolov5s-psa.yaml", "--no-verify", "--json")
    assert result.exit_code == 6
    import json

    payload, _ = json.JSONDecoder().raw_decode(result.output)
    unmapped = {u["layer"]: u["why"] for u in payload["unmapped"]}
    assert "nothing to change" not in result.output
    assert sorted(unmapped) == [3, 5]
    assert "Ultralytics' PSA(c1, c2, e=0.5)" in unmapped[3] and "e=True is a flag where e is a number" in unmapped[3]
    assert "the YOLOv5 repository has no PSA" in unmapped[5] and "adopt --fork PATH" in unmapped[5]
    assert sorted(p.name for p in here.iterdir()) == ["yolov5s-psa.yaml"]


def test_with_fork_the_forks_class_names_both_meanings(here):
    (here / "yolov5s-psa.yaml").write_text(PSA_FORK)
    fork = here / "fork"
    fork.mkdir()
    (fork / "attention.py").write_text(
        "import torch.nn as nn\n\n\nclass PSA(nn.Module):\n"
        "    def __init__(self, in_channel, parallel=True):\n        super().__init__()\n"
    )
    result = run("adopt", "yolov5s-psa.yaml", "--no-verify", "--fork", fork)
    assert result.exit_code == 6
    last = result.output.strip().splitlines()[-1]
    assert "PSA is two modules: the fork's PSA(in_channel, parallel=True)" in last
    assert "Ultralytics' PSA(c1, c2, e=0.5)" in last


def test_rows_that_are_ultralytics_modules_as_written_still_fit():
    from attnsurgeon.sources import ultralytics_classes as uc

    for module, args, c1 in (("C2f", [128, True], 64), ("Conv", [64, 3, 2], 3), ("SPPF", [256, 5], 256)):
        assert uc.misfit(uc.find(module), args, c1) == "", module
    assert "asserts c1 == c2" in uc.misfit(uc.find("PSA"), [256], 128)
    assert "at most" in uc.misfit(uc.find("SPPF"), [256, 5, 3, True, 1], 256)


def test_the_forks_constructor_decides_the_mapping_with_fork(here):
    (here / "yolov5s-sa.yaml").write_text(YOLOV5_BLOCK.replace("CBAM, [256]", "ShuffleAttention, [16, 8]"))
    without = run("adopt", "yolov5s-sa.yaml", "--no-verify")
    assert without.exit_code == 6
    said = " ".join(without.output.split())
    assert "the forks' ShuffleAttention(c1, G) takes at most 1; adopt --fork PATH reads" in said
    fork = here / "fork"
    fork.mkdir()
    (fork / "sa.py").write_text(
        "import torch.nn as nn\n\n\nclass ShuffleAttention(nn.Module):\n"
        "    def __init__(self, channel=512, reduction=16, G=8):\n        super().__init__()\n"
    )
    result = run("adopt", "yolov5s-sa.yaml", "--no-verify", "--fork", fork)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "G=8 kept as in the fork's ShuffleAttention(channel=512, reduction=16, G=8) in " in said
    assert "reduction=16: no such parameter in the catalog's ShuffleAttention" in said
    assert "ShuffleAttention, [8]]" in (here / "yolov5s-sa-adopted.yaml").read_text()


def test_a_conv_style_attention_row_is_said_to_be_a_conv_block(here):
    (here / "yolov5s-cbam.yaml").write_text(YOLOV5_BLOCK.replace("CBAM, [256]", "CBAM, [64, 3, 2]"))
    result = run("adopt", "yolov5s-cbam.yaml", "--no-verify")
    assert result.exit_code == 6
    last = result.output.strip().splitlines()[-1]
    assert "CBAM [64, 3, 2] reads as a conv block's [out channels, kernel, stride]" in last
    assert "not an attention layer: write Conv [64, 3, 2] and insert CBAM after it" in last
    assert "none is a channel count" not in last
