"""Flow-style model YAMLs (the YOLOv5, YOLOv7 and YOLOv9 repositories' layout) edited as written.

Golden files hold the exact bytes a user gets from the CLI; ``ATTNSURGEON_UPDATE_GOLDEN=1`` rewrites them and skips
(an updated golden proves nothing). Every other line of the input must keep its bytes, which each test checks
against the input itself, not against the golden.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from flow_fixtures import YOLOV5S, YOLOV7_TINY, YOLOV9_C, block_head, to_flow
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc

GOLDEN = Path(__file__).parents[1] / "golden" / "flow"
runner = CliRunner()
YOLO11 = (model_doc.packaged_models_dir() / "11" / "yolo11.yaml").read_text(encoding="utf-8")
FIXTURES = {
    "yolov5s": YOLOV5S,
    "yolov5s-mixed": block_head(YOLOV5S),  # flow backbone, block head of flow rows
    "yolov7-tiny": YOLOV7_TINY,
    "yolov9-c": YOLOV9_C,
    "yolo11n": to_flow(YOLO11),  # "]" on its own line
    "yolo11n-same": to_flow(YOLO11, "same-line"),  # "]" after the last row
    "yolo11n-nocomma": to_flow(YOLO11, "no-comma"),  # no comma after the last row
}
# (fixture, commands applied one after the other, each to the previous output)
CASES = {
    "yolov5s-insert-CBAM-8": ("yolov5s", [["insert", "-m", "CBAM", "--after", "8"]]),
    "yolov5s-insert-SE-4,9,23": ("yolov5s", [["insert", "-m", "SE", "--after", "4,9,23"]]),
    "yolov5s-insert-remove": ("yolov5s", [["insert", "-m", "SE", "--after", "9"], ["remove", "--at", "10"]]),
    "yolov5s-insert-replace": (
        "yolov5s",
        [["insert", "-m", "SE", "--after", "9"], ["replace", "--at", "10", "-m", "ECA"]],
    ),
    "yolov5s-augment-C3-8": ("yolov5s", [["augment", "--at", "8", "-m", "SE"]]),
    "yolov5s-mixed-insert-SE-8,13,16": ("yolov5s-mixed", [["insert", "-m", "SE", "--after", "8,13,16"]]),
    "yolov7-tiny-insert-SE-21,27": ("yolov7-tiny", [["insert", "-m", "SE", "--after", "21,27"]]),
    "yolov7-tiny-insert-replace": (
        "yolov7-tiny",
        [["insert", "-m", "SE", "--after", "7"], ["replace", "--at", "8", "-m", "CBAM"]],
    ),
    "yolov9-c-insert-SE-7": ("yolov9-c", [["insert", "-m", "SE", "--after", "7"]]),
    "yolov9-c-insert-remove": ("yolov9-c", [["insert", "-m", "SE", "--after", "3"], ["remove", "--at", "4"]]),
    "yolo11n-insert-CBAM-10": ("yolo11n", [["insert", "-m", "CBAM", "--after", "10"]]),
    "yolo11n-augment-EMA-6": ("yolo11n", [["augment", "--at", "6", "-m", "EMA"]]),
    "yolo11n-same-insert-SE-10,22": ("yolo11n-same", [["insert", "-m", "SE", "--after", "10,22"]]),
    "yolo11n-nocomma-insert-SE-10": ("yolo11n-nocomma", [["insert", "-m", "SE", "--after", "10"]]),
}


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def apply_steps(here: Path, fixture: str, steps: list[list[str]]) -> tuple[bytes, bytes]:
    src = here / f"{fixture}.yaml"
    src.write_text(FIXTURES[fixture], encoding="utf-8")
    current = src
    for n, step in enumerate(steps):
        out = here / f"step{n}.yaml"
        result = run(step[0], current.name, *step[1:], "--no-verify", "--force", "-o", out.name)
        assert result.exit_code == 0, result.output
        assert f"wrote {out.name}" in result.output
        current = out
    return src.read_bytes(), current.read_bytes()


@pytest.mark.parametrize("case", sorted(CASES))
def test_output_is_the_golden_file(case, here):
    fixture, steps = CASES[case]
    _, out = apply_steps(here, fixture, steps)
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("ATTNSURGEON_UPDATE_GOLDEN"):
        golden.write_bytes(out)
        pytest.skip(f"updated {golden.name}; check it by eye and run again without ATTNSURGEON_UPDATE_GOLDEN")
    assert out.decode() == golden.read_text(encoding="utf-8")


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    gone, new = [], []
    for line in difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True)):
        if line.startswith("- "):
            gone.append(line[2:])
        elif line.startswith("+ "):
            new.append(line[2:])
    return gone, new


def test_yolov5_insert_changes_only_references_and_index_comments(here):
    src, out = apply_steps(here, "yolov5s", [["insert", "-m", "CBAM", "--after", "8"]])
    gone, new = changed_lines(src.decode(), out.decode())
    assert gone == [
        "   [-1, 1, SPPF, [1024, 5]],  # 9\n",
        "   [-1, 3, C3, [512, False]],  # 13\n",
        "   [-1, 3, C3, [256, False]],  # 17 (P3/8-small)\n",
        "   [[-1, 14], 1, Concat, [1]],  # cat head P4\n",
        "   [-1, 3, C3, [512, False]],  # 20 (P4/16-medium)\n",
        "   [[-1, 10], 1, Concat, [1]],  # cat head P5\n",
        "   [-1, 3, C3, [1024, False]],  # 23 (P5/32-large)\n",
        "   [[17, 20, 23], 1, Detect, [nc, anchors]],  # Detect(P3, P4, P5)\n",
    ]
    assert new == [
        "   [-1, 1, CBAM, [16, 7]],  # 9 CBAM (attnsurgeon)\n",
        "   [-1, 1, SPPF, [1024, 5]],  # 10\n",
        "   [-1, 3, C3, [512, False]],  # 14\n",
        "   [-1, 3, C3, [256, False]],  # 18 (P3/8-small)\n",
        "   [[-1, 15], 1, Concat, [1]],  # cat head P4\n",
        "   [-1, 3, C3, [512, False]],  # 21 (P4/16-medium)\n",
        "   [[-1, 11], 1, Concat, [1]],  # cat head P5\n",
        "   [-1, 3, C3, [1024, False]],  # 24 (P5/32-large)\n",
        "   [[18, 21, 24], 1, Detect, [nc, anchors]],  # Detect(P3, P4, P5)\n",
    ]
    assert b"  - [10,13, 16,30, 33,23]  # P3/8\n" in out  # the anchors keep their spacing


def test_yolov7_list_without_spaces_keeps_its_spelling(here):
    _, out = apply_steps(here, "yolov7-tiny", [["insert", "-m", "SE", "--after", "30"]])
    assert b"   [[32,33], 1, IDetect, [nc, anchors]],   # Detect(P3, P4)\n" in out
    assert b"   [-1, 1, SE, [16]],  # 31 SE (attnsurgeon)\n" in out


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_insert_then_remove_gives_the_input_back_byte_for_byte(fixture, here):
    text = FIXTURES[fixture]
    layers = len(model_doc.loads(text)["backbone"]) + len(model_doc.loads(text)["head"])
    for k in sorted({0, 2, layers // 2, layers - 2}):
        src, middle = apply_steps(here, fixture, [["insert", "-m", "SE", "--after", str(k)]])
        assert middle != src
        _, back = apply_steps(
            here, fixture, [["insert", "-m", "SE", "--after", str(k)], ["remove", "--at", str(k + 1)]]
        )
        assert back == src, (fixture, k)
