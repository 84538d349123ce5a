"""``adopt`` on flow-style files: the forked-YAML corpus and a fork-block file, rows written in flow style, adopt to
the same model as their block-style originals, and only the adopted rows' lines change."""

from __future__ import annotations

import difflib

import pytest
from flow_fixtures import to_flow
from forked_yamls import CASES
from test_adopt_fork_blocks import YAML
from test_adopt_fork_classes import ATTENTION_FILE, write_fork
from test_adopt_fork_classes import YAML as CLASS_YAML
from typer.testing import CliRunner

from attnsurgeon.catalog import name_rules
from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.ops import adopt_plan

KNOWN = name_rules.ultralytics_names()
runner = CliRunner()


def plan_text(path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return adopt_plan.plan(path, known=KNOWN).text.replace("\r\n", "\n")


@pytest.mark.parametrize("case", [c for c in CASES if not c.crlf], ids=lambda c: c.name)
def test_flow_file_adopts_to_the_block_files_model(case, tmp_path):
    block = plan_text(tmp_path / f"{case.name}.yaml", case.text)
    flow_in = to_flow(case.text)
    flow = plan_text(tmp_path / f"{case.name}.yaml", flow_in)
    assert model_doc.to_plain(model_doc.loads(flow)) == model_doc.to_plain(model_doc.loads(block))
    assert len(flow.splitlines()) == len(flow_in.splitlines())  # rows changed in place, nothing re-flowed


def test_fork_block_rows_change_in_place_in_a_flow_file(tmp_path):
    flow_in = to_flow(YAML)
    flow = plan_text(tmp_path / "yolo-fork-n.yaml", flow_in)
    diff = [d for d in difflib.ndiff(flow_in.splitlines(), flow.splitlines()) if d[:2] in ("- ", "+ ")]
    assert diff == [
        "-    [-1, 3, C2f_EMA, [128, True]],",
        "-    [-1, 3, C2f_ECA, [128, False]],",
        "+    [-1, 3, Augment, [C2f, [128, True], EMA, [32], bottleneck]],",
        "+    [-1, 3, Augment, [C2f, [128, False], ECA, [1, 2, 0], bottleneck]],",
        "-    [-1, 3, C3k2_CBAM, [256, False, 0.25]],",
        "-    [-1, 3, C3_SE, [256]],",
        "+    [-1, 3, Augment, [C3k2, [256, False, 0.25], CBAM, [16, 7], bottleneck]],",
        "+    [-1, 3, Augment, [C3, [256], SE, [16], bottleneck]],",
    ]


def test_a_flow_file_whose_adoption_needs_plugins_keeps_every_other_line(tmp_path, monkeypatch, clean_registry):
    """adopt of a fork's own attention class (recorded under ``attnsurgeon_plugins``) writes a flow-style file as the
    line edit does: the adopted rows and the one added key differ, every other line byte for byte (ruamel's dump of
    the whole file re-flowed the rows and moved their comments)."""
    monkeypatch.chdir(tmp_path)
    write_fork(tmp_path)
    flow_in = (
        to_flow(CLASS_YAML)
        .replace("nc: 80\n", "nc: 80  # number of classes\n")
        .replace("[-1, 1, Conv, [64, 3, 2]],", "[-1, 1, Conv, [64,3,2]],   ")  # spacing ruamel would not keep
        .replace("head:\n", "\n# the head\nhead:\n")
    )
    (tmp_path / "yolo-fork-n.yaml").write_text(flow_in)
    result = runner.invoke(app, ["adopt", "yolo-fork-n.yaml", "--no-verify", "--fork", "fork"])
    assert result.exit_code == 0, result.output
    out = (tmp_path / "yolo-fork-n-adopted.yaml").read_text()
    diff = [d for d in difflib.ndiff(flow_in.splitlines(), out.splitlines()) if d[:2] in ("- ", "+ ")]
    assert diff == [
        f"+ attnsurgeon_plugins: [{ATTENTION_FILE}:Attention, {ATTENTION_FILE}:LocalAttn] # plugin files of this "
        "model's modules (see attnsurgeon)",
        "-    [-1, 3, C2f_Attention, [128, True]],",
        "+    [-1, 3, Augment, [C2f, [128, True], Attention, [4], bottleneck]],",
        "-    [-1, 3, C3k2_LocalAttn, [256, False, 0.25]],",
        "+    [-1, 3, Augment, [C3k2, [256, False, 0.25], LocalAttn, [kernel: 5], output]],",
    ]
