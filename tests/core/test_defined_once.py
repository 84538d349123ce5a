"""Facts defined once (issue 21b, "One definition each"): the index-comment rule, the scale row, the shape-keeping set.

Each is pinned by what a user sees: a renumbered comment, a diagnosis, a layer ``remove --at`` takes or refuses.
"""

from __future__ import annotations

import math

import pytest

from attnsurgeon.core import channels, graph, scales
from attnsurgeon.core.yamlfile import comments, model_doc, text_writer, tree_edits
from attnsurgeon.errors import ModelFileError
from attnsurgeon.ops import loading

V8 = (model_doc.packaged_models_dir() / "v8" / "yolov8.yaml").read_text()
SPPF = "[-1, 1, SPPF, [1024, 5]] # 9"


# --------------------------------------------------------------------------------------------------------------------
# index comments: one pattern, two questions (begins with an index: renumbered; is an index comment: diagnosed)


@pytest.mark.parametrize(
    ("comment", "leading", "index"),
    [
        ("# 9", 9, 9),
        ("#9", 9, 9),
        ("# 0-P1/2", 0, 0),
        ("# 7-P5/32", 7, 7),
        ("# 16 (P3/8-small)", 16, 16),
        ("# 4: CBAM", 4, 4),
        # where the two old copies disagreed (yamledit saw no index, yamltree did): attnsurgeon's own comment is an
        # index comment; a number followed by words only begins with an index (renumbered, never reported stale)
        ("# 9 SE (attnsurgeon)", 9, 9),
        ("# 2 heads", 2, None),
        ("# 1024 channels", 1024, None),
        ("# 12abc", 12, None),
        ("# P3/8", None, None),
        ("# lowercase booleans", None, None),
    ],
)
def test_index_comment_rule(comment, leading, index):
    assert comments.leading_index(comment) == leading
    assert comments.index_of(comment) == index
    if index is not None:
        assert leading == index  # an index comment always begins with its index, so a surgery renumbers it


def test_renumbered_changes_only_the_rows_own_number():
    assert comments.renumbered("# 16 (P3/8-small)", 16, 17) == "# 17 (P3/8-small)"
    assert comments.renumbered("#  2 heads", 2, 3) == "#  3 heads"
    assert comments.renumbered("# 2 heads", 5, 6) == "# 2 heads"  # not the row's old index: kept
    assert comments.renumbered("# 1024 channels", 102, 103) == "# 1024 channels"  # all the digits are the number


def _load(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return model_doc.load(path)


BLOCK = """\
nc: 80
backbone:
  - [-1, 1, Conv, [64, 3, 2]]  # 0-P1/2
  - [-1, 1, Conv, [128, 3, 2]]  # 1 heads
  - [-1, 1, SE, [16]]  # 2 SE (attnsurgeon)
head:
  - [-1, 1, Conv, [128, 3, 2]]  # 3 (P4/16)
  - [[2, 3], 1, Detect, [nc]]  # 4
"""
FLOW = """\
nc: 80
backbone:
  [[-1, 1, Conv, [64, 3, 2]],  # 0-P1/2
   [-1, 1, Conv, [128, 3, 2]],  # 1 heads
   [-1, 1, SE, [16]],  # 2 SE (attnsurgeon)
  ]
head:
  [[-1, 1, Conv, [128, 3, 2]],  # 3 (P4/16)
   [[2, 3], 1, Detect, [nc]],  # 4
  ]
"""


@pytest.mark.parametrize("text", [BLOCK, FLOW], ids=["block", "flow"])
def test_insert_renumbers_every_comment_that_begins_with_the_rows_index(tmp_path, text):
    doc = _load(tmp_path, "m.yaml", text)
    result = graph.insert(doc.graph, 0, "ECA")
    data = tree_edits.apply(model_doc.copy_doc(doc), result)
    out = text_writer.surgery_text(doc, result, data) if text_writer.is_flow(doc) else text_writer.dump(data)
    for old, new in (
        ("# 1 heads", "# 2 heads"),
        ("# 2 SE (attnsurgeon)", "# 3 SE (attnsurgeon)"),
        ("# 3 (P4/16)", "# 4 (P4/16)"),
        ("# 4\n", "# 5\n"),
    ):
        assert old not in out and new in out
    assert "# 0-P1/2" in out and "# 1 ECA (attnsurgeon)" in out


def test_diagnosis_reports_stale_index_comments_not_numbers_in_words(tmp_path):
    stale_own = V8.replace(SPPF, "[-1, 1, SPPF, [1024, 5]] # 8 SE (attnsurgeon)")
    assert [f.message for f in loading.findings(_load(tmp_path, "yolov8n.yaml", stale_own))] == [
        "layer 9 (SPPF) has the index comment '# 8'; renumber it to 9"
    ]
    words = V8.replace(SPPF, "[-1, 1, SPPF, [1024, 5]] # 8 heads")
    assert loading.findings(_load(tmp_path, "yolov8s.yaml", words)) == []


# --------------------------------------------------------------------------------------------------------------------
# the scale row: one reader of [depth, width, max_channels] for channels, repeats, the diagnosis and the figures


def test_scale_row_is_what_parse_model_unpacks_for_every_packaged_scale():
    for path in sorted(model_doc.packaged_models_dir().rglob("*.yaml")):
        data = model_doc.to_plain(model_doc.load(path).data)
        for name, row in (data.get("scales") or {}).items():
            assert tuple(scales.scale_row(data, name)) == tuple(float(x) for x in row), (path.name, name)
        assert model_doc.load(path).scales == scales.scale_names(data)


def test_scale_row_fallbacks():
    data = {"scales": {"n": [0.5, 0.25, 1024], "s": [0.5, 0.5, 1024]}}
    assert scales.scale_row(data, "s") == (0.5, 0.5, 1024.0)
    assert scales.scale_row(data, "x") == scales.scale_row(data, "") == (0.5, 0.25, 1024.0)  # the first, as Ultralytics
    legacy = {"depth_multiple": 0.33, "width_multiple": 0.25}
    assert scales.scale_row(legacy, "n") == (0.33, 0.25, math.inf)
    assert scales.scale_row({}, "") == (1.0, 1.0, math.inf)
    assert scales.scale_names(legacy) == []


def test_every_reader_of_the_scale_row_is_the_one_function():
    from attnsurgeon.ultralytics_bridge import ultra

    data = {"scales": {"n": [0.5, 0.25, 1024], "s": [0.33, 0.5, 512]}}
    for scale in ("n", "s", "q"):
        row = scales.scale_row(data, scale)
        assert ultra.depth_gain(data, scale) == row.depth
        assert channels.scale_factors(data, scale) == (row.width, row.max_channels)


def test_a_scale_that_is_not_three_numbers_is_one_error():
    # the copies disagreed here: the channel reader fell back to the first scale, the depth reader raised TypeError
    data = {"scales": {"n": [0.5, 0.25, 1024], "s": None}}
    with pytest.raises(ModelFileError, match=r"scale 's' is None; a scale is \[depth, width, max_channels\]"):
        channels.scale_factors(data, "s")
    with pytest.raises(ModelFileError, match="scale 'n' is"):
        scales.scale_row({"scales": {"n": [0.5, 0.25]}}, "n")


# --------------------------------------------------------------------------------------------------------------------
# the shape-keeping modules: the graph's Ultralytics/torch names plus the catalog's, from one function


def test_shape_keeping_modules_are_the_graphs_plus_the_catalogs():
    from attnsurgeon.catalog import REGISTRY
    from attnsurgeon.ops import surgery

    names = REGISTRY.shape_keeping_modules()
    assert names >= graph.SHAPE_KEEPING_MODULES
    assert {"SE", "CBAM", "CBAMBlock", "CoordAttention", "IdentityInit", "nn.Identity", "AIFI"} <= names
    assert not names & {
        "Conv",
        "C3k2",
        "SPPF",
        "Concat",
        "nn.Upsample",
        "Detect",
        "cbam",
    }  # exact names, as Ultralytics
    assert not hasattr(surgery, "shape_keeping_modules")  # no second copy


def _with_row(tmp_path, module, args):
    doc = model_doc.load("yolo11n.yaml")
    path = tmp_path / "yolo11n-x.yaml"
    path.write_text(text_writer.dump(tree_edits.apply(doc, graph.insert(doc.graph, 8, module, args))))
    return path


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("SE", [16]),
        ("CBAMBlock", []),  # an alias
        ("IdentityInit", ["SE", [16]]),
        ("nn.Identity", []),
        ("nn.Dropout", [0.1]),
        ("AIFI", [1024, 8]),
    ],
)
def test_remove_at_takes_a_shape_keeping_layer(tmp_path, module, args):
    from typer.testing import CliRunner

    from attnsurgeon.cli import app

    result = CliRunner().invoke(app, ["remove", str(_with_row(tmp_path, module, args)), "--at", "9", "--no-verify",
                                      "--dry-run"])  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("at", "module"), [(1, "Conv"), (8, "C3k2"), (10, "SPPF")])
def test_remove_at_refuses_a_layer_that_may_change_the_shape(tmp_path, at, module):
    from typer.testing import CliRunner

    from attnsurgeon.cli import app

    path = _with_row(tmp_path, "SE", [16])
    result = CliRunner().invoke(app, ["remove", str(path), "--at", str(at), "--no-verify", "--dry-run"])
    assert result.exit_code != 0
    assert f"--at {at} is {module}, which may change channels or stride" in result.output
