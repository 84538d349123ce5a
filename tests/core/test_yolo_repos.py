"""Files of the YOLOv5, YOLOv7 and YOLOv9 repositories: Ultralytics cannot build them, and the user is told so in one
line (which rows, why, what to do) before anything is built, never a TypeError from Detect's constructor."""

from __future__ import annotations

import pytest
from flow_fixtures import YOLOV5S, YOLOV7_TINY, YOLOV9_C
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.core import graph, yolo_repos
from attnsurgeon.core.yamlfile import model_doc

runner = CliRunner()
EXPECTED = {
    "yolov5s": (
        YOLOV5S,
        "error: yolov5s.yaml: Ultralytics cannot build layer 24 (anchor-based Detect [nc, anchors]): this is a "
        "YOLOv5-repository file; --no-verify (and show --no-build) edit it, or build it with that repository "
        "(github.com/ultralytics/yolov5)",
    ),
    "yolov7-tiny": (
        YOLOV7_TINY,
        "error: yolov7-tiny.yaml: Ultralytics cannot build layer 8 (MP is a YOLOv7-repository module), layer 15 (MP is "
        "a YOLOv7-repository module), layer 22 (SPPCSPC is a YOLOv7-repository module) and 1 more: this is a "
        "YOLOv7-repository file; --no-verify (and show --no-build) edit it, or build it with that repository "
        "(github.com/WongKinYiu/yolov7)",
    ),
    "yolov9-c": (
        YOLOV9_C,
        "error: yolov9-c.yaml: Ultralytics cannot build layer 0 (Silence is a YOLOv9-repository module), layer 18 "
        "(DualDDetect is a YOLOv9-repository module): this is a YOLOv9-repository file; --no-verify (and show "
        "--no-build) edit it, or build it with that repository (github.com/WongKinYiu/yolov9)",
    ),
}


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("command", [["insert", "-m", "SE", "--after", "4"], ["show"], ["remove", "--at", "4"]])
def test_building_is_refused_in_one_line_and_nothing_is_written(name, command, here):
    text, expected = EXPECTED[name]
    (here / f"{name}.yaml").write_text(text, encoding="utf-8")
    if command[0] == "remove":  # remove needs an attention row: insert one without building first
        made = runner.invoke(
            app, ["insert", f"{name}.yaml", "-m", "SE", "--after", "3", "--no-verify", "-o", "in.yaml"]
        )
        assert made.exit_code == 0, made.output
        (here / f"{name}.yaml").write_bytes((here / "in.yaml").read_bytes())
        (here / "in.yaml").unlink()
        expected = expected.replace("layer 24", "layer 25").replace("layer 18", "layer 19")
        expected = (
            expected.replace("layer 8 (MP", "layer 9 (MP")
            .replace("layer 15", "layer 16")
            .replace("layer 22", "layer 23")
        )
    before = sorted(p.name for p in here.iterdir())
    result = runner.invoke(app, [command[0], f"{name}.yaml", *command[1:]])
    assert result.exit_code == 3, result.output
    assert result.output.strip().splitlines() == [expected]
    assert "TypeError" not in result.output
    assert sorted(p.name for p in here.iterdir()) == before


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_show_without_build_shows_the_rows_and_says_why_once(name, here):
    text, expected = EXPECTED[name]
    (here / f"{name}.yaml").write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["show", f"{name}.yaml", "--no-build"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert expected.removeprefix("error: ") in result.output.replace("\n", " ")
    assert result.output.count("Ultralytics cannot build") == 1


def test_no_packaged_ultralytics_model_is_taken_for_a_repository_file():
    for path in sorted(model_doc.packaged_models_dir().rglob("*.yaml")):
        doc = model_doc.load(path)
        assert yolo_repos.unbuildable(doc.graph, doc.plain()) == [], path.name


def test_explicit_anchor_lists_are_anchor_based_too():
    g = graph.Graph.from_sections([[-1, 1, "Conv", [16, 3, 2]]], [[[0], 1, "Detect", [80, [[10, 13, 16, 30]]]]])
    (found,) = yolo_repos.unbuildable(g, {"anchors": [[10, 13, 16, 30]]})
    assert (found.layer, found.repo) == (1, yolo_repos.YOLOV5)
