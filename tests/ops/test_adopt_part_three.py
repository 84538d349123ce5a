"""Issue 29, the smaller points: ``show`` names a fork's modules with ``adopt`` (built or not), a fork's spelling of
a catalog name gets the close one, swapped index comments in a flow-style file are reported, and an adopted row that
relies on a catalog default the forks set otherwise says so. Fixtures: tests/ops/issue29_yamls.py.
"""

from __future__ import annotations

import pytest
from issue29_yamls import FORK_BLOCKS, SPELLED, SWAPPED_FLOW
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.ops import adopt_plan

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_show_names_fork_blocks_with_adopt_in_one_line(here):
    (here / "yolo11n-forkblocks.yaml").write_text(FORK_BLOCKS)
    result = run("show", "yolo11n-forkblocks.yaml")
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "C2f_CBAM, C3k2_EMA" in lines[0] and "attnsurgeon adopt yolo11n-forkblocks.yaml" in lines[0]
    assert "Augment" in lines[0] and "attnsurgeon_plugins" not in lines[0]


def test_show_without_a_build_names_every_unknown_module_and_adopt(here):
    (here / "yolo11n-spelled.yaml").write_text(SPELLED)
    result = run("show", "yolo11n-spelled.yaml", "--no-build")
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.output.splitlines() if line.startswith("warning:"))
    assert "C3k2_EMA" in warning and "C2f_TripleAttention" in warning and "TripleAttention" in warning
    assert "attnsurgeon adopt yolo11n-spelled.yaml" in warning


def test_a_defined_file_gets_no_unknown_module_line(here):
    (here / "yolo11n-fine.yaml").write_text(FORK_BLOCKS.replace("C3k2_EMA", "C3k2").replace("C2f_CBAM", "C2f"))
    result = run("show", "yolo11n-fine.yaml", "--no-build")
    assert result.exit_code == 0 and "warning" not in result.output, result.output


@pytest.mark.parametrize(
    "name", ["TripleAttention", "C2f_TripleAttention", "C3k2_TripletAtention", "TripleAttention_v2", "C2f_CBMA"]
)
def test_a_forks_spelling_gets_the_close_catalog_name(name):
    closest, embedded = adopt_plan._closest(name)
    assert ("CBAM" if "CBMA" in name else "TripletAttention") in closest and not embedded


def test_adopt_lists_the_close_name_of_a_misspelled_block(here):
    (here / "yolo11n-spelled.yaml").write_text(SPELLED)
    result = run("adopt", "yolo11n-spelled.yaml", "--no-verify", "--dry-run")
    assert "layer 4: [-1, 1, C2f_TripleAttention, [256, True]] (closest: TripletAttention)" in result.output
    assert "layer 5: [-1, 1, TripleAttention, []] (closest: TripletAttention)" in result.output


def test_swapped_index_comments_in_a_flow_file_are_reported(here):
    (here / "yolov8n-swapped.yaml").write_text(SWAPPED_FLOW)
    result = run("show", "yolov8n-swapped.yaml", "--no-build")
    assert result.exit_code == 0, result.output
    assert "layer 5 (Conv) has the index comment '# 6'; renumber it to 5" in result.output
    assert "layer 6 (SPPF) has the index comment '# 5'; renumber it to 6" in result.output
    fixed = SWAPPED_FLOW.replace("# 6-P4/16", "# 5-P4/16").replace("5]],  # 5", "5]],  # 6")
    (here / "yolov8n-fixed.yaml").write_text(fixed)
    assert "index comment" not in run("show", "yolov8n-fixed.yaml", "--no-build").output


IRMB_FORK = FORK_BLOCKS.replace("C2f_CBAM, [256, True]] # 4", "iRMB, [256]] # 4").replace(
    "C3k2_EMA, [128, False, 0.25]] # 2", "iRMB, [128, 16]] # 2"
)


def test_a_row_relying_on_a_default_forks_set_otherwise_says_which_it_gets(here):
    (here / "yolo11n-irmb.yaml").write_text(IRMB_FORK)
    result = adopt_plan.plan("yolo11n-irmb.yaml")
    why = {c.layer: c.why for c in result.changes}
    assert "dim_head is now the catalog's default 32, where forks commonly use 64: the fork's may differ" in why[4]
    assert "dim_head=16 kept" in why[2] and "forks commonly use" not in why[2]  # the row sets it: nothing to say


def test_fork_defaults_are_read_torch_free_and_checked():
    from attnsurgeon.catalog import REGISTRY
    from attnsurgeon.catalog.argcheck import check_names
    from attnsurgeon.catalog.scan import scan_builtins
    from attnsurgeon.errors import RegistryError

    assert scan_builtins()["iRMB"].fork_defaults == REGISTRY.get("iRMB").fork_defaults == (("dim_head", 64),)
    with pytest.raises(RegistryError, match="fork_defaults names unknown hyper-parameters"):
        check_names("x.py:X", {"dim_head"}, {}, (), ["heads"])
