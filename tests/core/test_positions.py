"""Named positions on every packaged Ultralytics model; strides computed from the rows pinned against built models."""

from __future__ import annotations

import json
import re

import pytest

from attnsurgeon.core import graph, positions
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.errors import SurgeryError, UsageError

PACKAGED = sorted(model_doc.packaged_models_dir().rglob("*.yaml"))
# Every packaged model that predicts from feature maps (detection and the tasks built on it), not classification.
DETECTION = [p for p in PACKAGED if model_doc.load(p).graph.rows[-1].module != "Classify"]
FIXED = [n for n in positions.POSITION_NAMES if "MODULE" not in n]


def test_the_names_users_type():
    assert positions.POSITION_NAMES == (
        "heads",
        "backbone-end",
        "sppf",
        "before-sppf",
        "p3",
        "p4",
        "p5",
        "every:MODULE",
        "backbone:every:MODULE",
        "head:every:MODULE",
    )


@pytest.mark.parametrize(
    ("name", "indices"),
    [
        ("heads", [16, 19, 22]),
        ("backbone-end", [10]),
        ("sppf", [9]),
        ("before-sppf", [8]),
        ("p3", [4]),
        ("p4", [6]),
        ("p5", [10]),
        ("every:C3k2", [2, 4, 6, 8, 13, 16, 19, 22]),
        ("backbone:every:C3k2", [2, 4, 6, 8]),
        ("head:every:C3k2", [13, 16, 19, 22]),
        ("every:C2PSA", [10]),
    ],
)
def test_yolo11n_positions(name, indices):
    # yolo11.yaml's own comments: "- [-1, 2, C3k2, [512, False, 0.25]] # 4" is P3/8, 6 is P4/16, 10 (C2PSA) ends P5/32
    assert positions.resolve_name(model_doc.load("yolo11n.yaml").graph, name) == indices


def test_several_heads_and_p2_p6_heads_are_all_named():
    assert positions.resolve_name(model_doc.load("yolov8n-p2.yaml").graph, "heads") == [
        18,
        21,
        24,
        27,
    ]  # Detect(P2, P3, P4, P5)
    assert positions.resolve_name(model_doc.load("yolov8n-p6.yaml").graph, "heads") == [20, 23, 26, 29]
    assert positions.resolve_name(model_doc.load("yolov8n-p6.yaml").graph, "p5") == [8]  # P6 models go on to /64
    # YOLOv9-E: the auxiliary CBLinear branches are no heads; the CBFuse layers are feature maps at their strides
    g = model_doc.load("yolov9e.yaml").graph
    assert positions.resolve_name(g, "heads") == [35, 38, 41]
    assert [positions.resolve_name(g, p)[0] for p in ("p3", "p4", "p5")] == [22, 25, 29]


def test_combinations_merge_and_report_each_name():
    g = model_doc.load("yolo11n.yaml").graph
    resolved = positions.resolve(g, ["4", "heads", "p3,sppf"])
    assert resolved.indices == (4, 16, 19, 22, 9)
    assert resolved.names == {"heads": (16, 19, 22), "p3": (4,), "sppf": (9,)}
    assert positions.resolve(g, [8, 6]).indices == (8, 6)


@pytest.mark.parametrize(
    ("tokens", "error", "message"),
    [
        (["nope"], UsageError, "'nope' is not a layer index or a position; use an index or one of: heads, "),
        ([""], UsageError, "is empty; use a layer index or one of: heads"),
        ([], UsageError, "no --after given"),
        (["4.5"], UsageError, "'4.5' is not a layer index or a position"),
        (["every:"], UsageError, "names no module; write it like every:C3k2"),
        (["every:c3k2"], SurgeryError, "no layer is c3k2; did you mean every:C3k2"),
        (["head:every:C2PSA"], SurgeryError, "no layer in the head is C2PSA; modules in the head: C3k2, Concat"),
        (["8", "8"], SurgeryError, "--after 8 is given twice"),
        (["heads", "heads"], SurgeryError, "--after heads is given twice"),
    ],
)
def test_bad_positions(tokens, error, message):
    with pytest.raises(error) as info:
        positions.resolve(model_doc.load("yolo11n.yaml").graph, tokens)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_model_without_sppf_says_so():
    g = model_doc.load("rtdetr-l.yaml").graph
    with pytest.raises(SurgeryError, match="this model has no SPPF, SPPELAN or SPP layer"):
        positions.resolve(g, ["sppf"])


@pytest.mark.parametrize("path", DETECTION, ids=lambda p: p.name)
def test_every_name_resolves_on_every_packaged_detection_model(path):
    g = model_doc.load(path).graph
    has_spp = any(r.module in positions.SPP_MODULES for r in g.rows)
    for name in FIXED:
        if name in ("sppf", "before-sppf") and not has_spp:
            with pytest.raises(SurgeryError, match="no SPPF, SPPELAN or SPP layer"):
                positions.resolve_name(g, name)
            continue
        hits = positions.resolve_name(g, name)
        assert hits, name
        for k in hits:  # every name is a place an attention layer can go
            graph.check_target(g, k)
        if name in ("p3", "p4", "p5", "backbone-end"):
            assert g.rows[hits[0]].section == "backbone"
    every = positions.resolve_name(g, f"every:{g.rows[1].module}")
    assert every == [i for i, r in enumerate(g.rows) if r.module == g.rows[1].module]
    table = positions.table(g)
    assert set(FIXED) <= set(table)


def built_heights(path) -> list[int | None]:
    """Output height of every layer of the real model on a 640x640 image, measured with forward hooks."""
    import torch

    from attnsurgeon.ultralytics_bridge import ultra

    doc = model_doc.load(path)
    scale = doc.scales[0] if doc.scales else None
    model = ultra.build_model(doc.plain(), scale, path.name).eval()
    out: dict[int, int | None] = {}
    for i, layer in enumerate(model.model):
        layer.register_forward_hook(
            lambda _m, _x, y, i=i: out.__setitem__(
                i, y.shape[-2] if isinstance(y, torch.Tensor) and y.dim() == 4 else None
            )
        )
    with torch.inference_mode():
        model(torch.zeros(1, int(doc.plain().get("channels", 3)), 640, 640))
    return [out.get(i) for i in range(len(model.model))]


def _check_strides(path) -> None:
    g = model_doc.load(path).graph
    computed = positions.strides(g)
    heights = built_heights(path)
    for i, (mine, height) in enumerate(zip(computed, heights, strict=True)):
        module = g.rows[i].module
        if module in graph.NON_FEATURE_MAP_MODULES:
            continue  # a head's predictions (a depth map is one too), CBLinear's tuple: no feature map to place at
        assert mine is not None and height is not None, (path.name, i, module, mine, height)
        padded = 1 if module == "nn.ZeroPad2d" else 0  # YOLOv3-tiny pads 20x20 to 21x21 for a stride-1 max-pool
        assert 640 // mine + padded == height, (path.name, i, module, mine, height)


def test_strides_from_the_rows_match_the_built_yolo11n(torch_threads):
    _check_strides(model_doc.packaged_models_dir() / "11" / "yolo11.yaml")


@pytest.mark.slow
@pytest.mark.parametrize("path", DETECTION, ids=lambda p: p.name)
def test_strides_from_the_rows_match_every_built_packaged_model(path, torch_threads):
    _check_strides(path)


def test_the_cli_help_lists_the_same_names():
    from attnsurgeon.cli._common import POSITIONS_HELP

    assert ", ".join(positions.POSITION_NAMES) == POSITIONS_HELP


def test_show_lists_what_each_name_stands_for():
    from typer.testing import CliRunner

    from attnsurgeon.cli import app

    result = CliRunner().invoke(app, ["show", "rtdetr-l.yaml", "--no-build", "--json"])
    assert result.exit_code == 0, result.output
    named = json.loads(result.output)["positions"]
    assert named["heads"] == [21, 24, 27] and named["p4"] == [7] and named["every:RepC3"] == [16, 21, 24, 27]
    assert named["sppf"] == "this model has no SPPF, SPPELAN or SPP layer"
    table = CliRunner().invoke(app, ["show", "yolo11n.yaml", "--no-build"]).output
    assert re.search(r"\nheads +16, 19, 22 *\n", table) and re.search(
        r"\nevery:C3k2 +2, 4, 6, 8, 13, 16, 19, 22", table
    )


SAMPLE = ["yolo11n.yaml", "yolov8n-p2.yaml", "yolov8n-p6.yaml", "yolov9t.yaml", "yolo26n-seg.yaml", "rtdetr-l.yaml"]


@pytest.mark.slow
@pytest.mark.parametrize("model", SAMPLE)
def test_attention_at_every_named_position_builds_and_runs(model, tmp_path, torch_threads):
    """SE after every fixed position a sample model has, all in one file: it builds and runs forward."""
    import torch

    from attnsurgeon.ops import surgery as api
    from attnsurgeon.ultralytics_bridge import ultra

    g = model_doc.load(model).graph
    names = [n for n, hits in positions.table(g).items() if isinstance(hits, list) and n in FIXED]
    out = tmp_path / model
    report = api.insert(model, "SE", names, output=out, verify=False)
    assert set(report.positions) == set(names)
    doc = model_doc.load(out)
    built = ultra.build_model(doc.plain(), doc.scale or None, out.name).eval()
    with torch.inference_mode():
        built(torch.zeros(1, 3, 128, 128))
    assert sum(r.module == "SE" for r in doc.graph.rows) == len(positions.resolve(g, names).indices)
