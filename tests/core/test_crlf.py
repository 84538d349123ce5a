"""A model YAML saved with Windows line endings (CRLF) keeps them through insert, remove, replace and augment, in flow
style (the YOLOv5/v7/v9 repositories' layout, edited line by line) and in block style (Ultralytics' own).

The oracle is the LF golden file of the same edit with every line ending written CRLF: the line endings are the only
bytes that may differ. Insert then remove gives the CRLF input back byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_flowstyle import CASES, FIXTURES
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc

runner = CliRunner()
GOLDEN = Path(__file__).parents[1] / "golden"
YOLO11 = (model_doc.packaged_models_dir() / "11" / "yolo11.yaml").read_text(encoding="utf-8")
FLOW = {name: FIXTURES[name] for name in ("yolov5s", "yolov9-c", "yolo11n")}
# test_flowstyle's cases (their golden files in tests/golden/flow) on those fixtures, one per edit kind
FLOW_CASES = {
    name: CASES[name]
    for name in (
        "yolov5s-insert-CBAM-8",
        "yolov5s-insert-replace",
        "yolov5s-augment-C3-8",
        "yolov9-c-insert-remove",
        "yolo11n-augment-EMA-6",
    )
}


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def apply_steps(src: Path, steps: list[list[str]]) -> bytes:
    current = src
    for n, step in enumerate(steps):
        out = src.parent / f"step{n}.yaml"
        result = runner.invoke(app, [step[0], current.name, *step[1:], "--no-verify", "--force", "-o", out.name])
        assert result.exit_code == 0, result.output
        current = out
    return current.read_bytes()


@pytest.mark.parametrize("case", sorted(FLOW_CASES))
def test_a_crlf_flow_file_is_the_golden_edit_with_crlf_line_endings(case, here):
    fixture, steps = FLOW_CASES[case]
    src = here / f"{fixture}.yaml"
    src.write_bytes(crlf(FLOW[fixture]))
    out = apply_steps(src, steps)
    assert out == crlf((GOLDEN / "flow" / f"{case}.yaml").read_text(encoding="utf-8"))
    assert src.read_bytes() == crlf(FLOW[fixture])  # the input is never modified


@pytest.mark.parametrize("fixture", sorted(FLOW))
def test_crlf_flow_insert_then_remove_gives_the_input_back_byte_for_byte(fixture, here):
    src = here / f"{fixture}.yaml"
    src.write_bytes(crlf(FLOW[fixture]))
    assert apply_steps(src, [["insert", "-m", "SE", "--after", "4"], ["remove", "--at", "5"]]) == src.read_bytes()


def test_a_crlf_block_file_is_the_golden_edit_with_crlf_line_endings(here):
    src = here / "yolo11n.yaml"
    src.write_bytes(crlf(YOLO11))
    insert = ["insert", "-m", "HaloAttention", "--after", "8", "--args", "[2, 1]"]
    assert apply_steps(src, [insert]) == crlf((GOLDEN / "yolo11n-after8-HaloAttention.yaml").read_text())
    augment = ["augment", "-m", "EMA", "--at", "2", "--at", "6", "--at", "10", "--args", "[8]"]
    assert apply_steps(src, [augment]) == crlf((GOLDEN / "yolo11n-augment2,6,10-EMA.yaml").read_text())


@pytest.mark.parametrize(
    "steps",
    [
        [["insert", "-m", "SE", "--after", "8"], ["remove", "--at", "9"]],
        [["insert", "-m", "SE", "--after", "8"], ["replace", "--at", "9", "-m", "ECA"], ["remove", "--at", "9"]],
    ],
    ids=["insert-remove", "insert-replace-remove"],
)
def test_crlf_block_edits_undone_give_the_input_back_byte_for_byte(steps, here):
    src = here / "yolo11n.yaml"
    src.write_bytes(crlf(YOLO11))
    assert apply_steps(src, steps) == src.read_bytes()


def test_a_crlf_sweep_writes_its_base_copy_and_variants_crlf(here):
    """The sweep's copy of the base model is the input byte for byte, line endings included, like its variants."""
    src = here / "yolo11n.yaml"
    src.write_bytes(crlf(YOLO11))
    args = ["sweep", src.name, "-m", "SE", "--at", "8", "-o", "out", "--imgsz", "64", "--runs", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (here / "out" / "yolo11n.yaml").read_bytes() == src.read_bytes()
    variant = (here / "out" / "yolo11n-SE-after8.yaml").read_bytes()
    assert variant.count(b"\n") == variant.count(b"\r\n") > 0
