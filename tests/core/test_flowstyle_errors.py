"""Flow-style files attnsurgeon cannot edit line by line: one line saying what is wrong and what would be right,
a non-zero exit, nothing written."""

from __future__ import annotations

import pytest
from flow_fixtures import YOLOV5S
from typer.testing import CliRunner

from attnsurgeon.cli import app

runner = CliRunner()
ROW1 = "   [-1, 1, Conv, [128, 3, 2]],  # 1-P2/4\n"
assert ROW1 in YOLOV5S

BAD = {
    "row-split-across-lines": (
        YOLOV5S.replace(ROW1, "   [-1, 1, Conv,\n    [128, 3, 2]],  # 1-P2/4\n"),
        "line 16: a row is not closed on its line; write each [from, repeats, module, args] on one line",
    ),
    "two-rows-on-a-line": (
        YOLOV5S.replace(ROW1, "   [-1, 1, Conv, [128, 3, 2]], [-1, 3, C3, [128]],\n").replace(
            "   [-1, 3, C3, [128]],\n", "", 1
        ),
        "line 16: two backbone rows on one line; put each row on its own line",
    ),
    "tab": (YOLOV5S.replace(ROW1, "\t" + ROW1.lstrip(" ")), "tab"),
    "unclosed-bracket": (
        YOLOV5S.replace("   [-1, 1, SPPF, [1024, 5]],  # 9\n  ]\n", "   [-1, 1, SPPF, [1024, 5]],  # 9\n"),
        "not valid YAML",
    ),
    "anchor-and-alias": (
        YOLOV5S.replace(ROW1, "   [-1, 1, Conv, &c [128, 3, 2]],  # 1-P2/4\n").replace(
            "   [-1, 1, Conv, [256, 3, 2]],  # 3-P3/8", "   [-1, 1, Conv, *c],  # 3-P3/8"
        ),
        "a YAML anchor or alias (&name, *name) in a row; write the values out",
    ),
    "python-tag": (
        YOLOV5S.replace(ROW1, "   [-1, 1, Conv, !!python/tuple [128, 3, 2]],  # 1-P2/4\n"),
        "uses the YAML tag !!python/tuple; a model file holds plain values only, no tags",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_flow_file_is_one_line_and_writes_nothing(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text, expected = BAD[case]
    (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["insert", "bad.yaml", "-m", "SE", "--after", "4", "--no-verify", "-o", "out.yaml"])
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: bad.yaml"), lines[0]
    assert expected in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]
    assert (tmp_path / "bad.yaml").read_text(encoding="utf-8") == text


@pytest.mark.parametrize("missed", ["from", "module"])
def test_a_row_the_line_edit_left_unchanged_is_caught(missed, tmp_path, monkeypatch):
    """The self-check reads every row of the written text, not only the lines whose text changed: a row that should
    have been rewritten (a renumbered from, a replaced module) but was left as it was must not be written."""
    from attnsurgeon.core.yamlfile import line_layout

    monkeypatch.chdir(tmp_path)
    (tmp_path / "v5.yaml").write_text(YOLOV5S, encoding="utf-8")
    if missed == "from":  # insert after 4: [[-1, 4], 1, Concat, [1]] must become [[-1, 5], ...]
        monkeypatch.setattr(line_layout, "_set_from", lambda row, new_from: None)
        args = ["insert", "v5.yaml", "-m", "SE", "--after", "4"]
    else:  # augment the C3 at 2: its module (C3 -> Augment) and args must change; both left
        real = line_layout._set_field
        monkeypatch.setattr(line_layout, "_set_field", lambda row, k, new: None if k >= 2 else real(row, k, new))
        args = ["augment", "v5.yaml", "--at", "2", "-m", "SE"]
    result = runner.invoke(app, [*args, "--no-verify", "-o", "out.yaml"])
    assert result.exit_code == 3, result.output
    assert result.output.strip().splitlines() == [
        "error: v5.yaml: this flow-style file cannot be edited line by line (the rewritten lines would not read as the "
        "edited model); nothing was written; write its rows in block style ('- [...]')"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v5.yaml"]
