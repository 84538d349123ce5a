"""The "I found a module in a paper" example of the site (docs/modules.md), run as written in a fresh directory:
the class saved as its authors wrote it, the contract, the insert, the YAML built by plain Ultralytics in a fresh
process (and, slow, the training on a tiny synthetic data set instead of coco8)."""

from __future__ import annotations

import shlex

import pytest
from test_interop import BIN, make_dataset, ok, python, run, train_overrides, yolo_cli_args
from test_own_module_example import block


def example() -> tuple[str, str, list[list[str]]]:
    """(file name, file text, commands) of the example."""
    code = block("<!-- found-module-file -->", "python")
    name = code.splitlines()[0].removeprefix("# ").strip()
    lines = block("<!-- found-module-commands -->", "bash").splitlines()
    return name, code, [shlex.split(line.split("  #")[0]) for line in lines if line.strip()]


def test_the_example_is_a_plain_module_and_three_commands():
    name, code, steps = example()
    assert name == "parnet_attention.py" and "attnsurgeon" not in code  # nothing of attnsurgeon in the file
    assert [s[:2] for s in steps] == [["attnsurgeon", "check-module"], ["attnsurgeon", "insert"], ["yolo", "train"]]


def _attnsurgeon(tmp_path, steps) -> None:
    for step in steps:
        if step[0] == "attnsurgeon":
            ok(run([str(BIN / "attnsurgeon"), *step[1:]], tmp_path, timeout=600))


def test_found_module_example_inserts_and_builds_in_a_fresh_process(tmp_path):
    name, code, steps = example()
    (tmp_path / name).write_text(code)
    _attnsurgeon(tmp_path, steps)
    out = tmp_path / "yolo11n-ParNetAttention.yaml"
    text = out.read_text()
    assert "attnsurgeon_plugins: [parnet_attention.py:ParNetAttention]" in text
    assert "  - [-1, 1, ParNetAttention, []] # 9 ParNetAttention (attnsurgeon)" in text
    built = ok(
        python(
            """
            import sys
            sys.path.insert(0, ".")
            from ultralytics import YOLO
            from parnet_attention import ParNetAttention
            layer = YOLO("yolo11n-ParNetAttention.yaml").model.model[9]
            direct = ParNetAttention(channel=256)  # layer 8 of yolo11n at n has 256 channels, not the default 512
            count = lambda m: sum(p.numel() for p in m.parameters())
            print(type(layer).__name__, type(layer.block).__name__, count(layer) == count(direct))
            """,
            tmp_path,
        )
    )
    assert built.splitlines()[-1] == "ParNetAttention ParNetAttention True"


@pytest.mark.slow
def test_found_module_example_trains(tmp_path):
    name, code, steps = example()
    (tmp_path / name).write_text(code)
    _attnsurgeon(tmp_path, steps)
    data = make_dataset(tmp_path / "data")
    train = steps[-1]
    model = train[2].removeprefix("model=")
    args = [str(BIN / "yolo"), "train", *yolo_cli_args(model, train_overrides(data, tmp_path / "runs"))]
    ok(run(args, tmp_path, timeout=900))
    assert (tmp_path / "runs" / "run" / "weights" / "last.pt").is_file()
