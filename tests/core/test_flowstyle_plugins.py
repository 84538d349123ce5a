"""A plugin module inserted into a flow-style file: the ``attnsurgeon_plugins`` key is added as the block path adds
it (after ``nc``, commented), every other line as written."""

from __future__ import annotations

from flow_fixtures import YOLOV5S
from plugin_files import gate_plugin
from typer.testing import CliRunner

from attnsurgeon.cli import app

runner = CliRunner()


def test_the_plugin_key_is_one_new_line_after_nc(tmp_path, monkeypatch, clean_registry):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gate.py").write_text(gate_plugin("FlowGate"))
    (tmp_path / "v5.yaml").write_text(YOLOV5S)
    args = [
        "insert",
        "v5.yaml",
        "-m",
        "FlowGate",
        "--after",
        "23",
        "--plugin",
        "gate.py",
        "--no-verify",
        "-o",
        "out.yaml",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = (tmp_path / "out.yaml").read_text().splitlines(keepends=True)
    src = YOLOV5S.splitlines(keepends=True)
    nc = src.index("nc: 80  # number of classes\n")
    assert out[nc + 1] == "attnsurgeon_plugins: [gate.py] # plugin files of this model's modules (see attnsurgeon)\n"
    del out[nc + 1]
    added = [line for line in out if "FlowGate" in line]
    assert added == ["   [-1, 1, FlowGate, [4]],  # 24 FlowGate (attnsurgeon)\n"]
    out.remove(added[0])
    detect = "   [[17, 20, 23], 1, Detect, [nc, anchors]],  # Detect(P3, P4, P5)\n"
    assert out == [detect.replace("23]", "24]") if line == detect else line for line in src]
