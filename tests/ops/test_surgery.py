"""The splice rule of docs/architecture.md on every packaged Ultralytics YAML, golden YAML output, and bad targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnsurgeon.core import graph
from attnsurgeon.core.yamlfile import model_doc, text_writer, tree_edits
from attnsurgeon.errors import SurgeryError

PACKAGED = sorted(model_doc.packaged_models_dir().rglob("*.yaml"))
GOLDEN = Path(__file__).parents[1] / "golden"


def absolute(g: graph.Graph, i: int) -> list[int]:
    return [i + r if r < 0 else r for r in g.rows[i].refs()]


def expected_after_splice(g: graph.Graph, k: int, rewire: str) -> list[list[int]]:
    """The splice rule written out independently: the absolute targets every row of the result must read."""
    out: list[list[int]] = []
    for j in range(len(g)):
        targets = []
        for ref, t in zip(g.rows[j].refs(), absolute(g, j), strict=True):
            if j > k and t == k and (rewire == "all" or (j == k + 1 and ref == -1)):
                targets.append(k + 1)
            else:
                targets.append(t if t <= k else t + 1)
        out.append(targets)
        if j == k:
            out.append([k])  # the new layer reads layer k
    return out


def test_every_packaged_model_round_trips_byte_for_byte():
    assert len(PACKAGED) > 50
    for path in PACKAGED:
        doc = model_doc.load(path)
        assert text_writer.dump(doc.data) == doc.text, path.name


@pytest.mark.parametrize("path", PACKAGED, ids=lambda p: p.name)
def test_splice_rule_on_every_valid_index(path):
    """For every packaged YAML and every index: references follow the rule, relative stays relative, the YAML
    parses back to the same graph, and an invalid index is a clear error."""
    doc = model_doc.load(path)
    g = doc.graph
    valid = []
    for k in range(len(g)):
        try:
            graph.check_target(g, k)
        except SurgeryError as exc:
            assert k == len(g) - 1 or g.rows[k].module in graph.NON_FEATURE_MAP_MODULES, (k, exc)
            with pytest.raises(SurgeryError):
                graph.insert(g, k, "SE", [16])
            continue
        for rewire in ("all", "next"):
            result = graph.insert(g, k, "SE", [16], rewire=rewire)
            new = result.graph
            assert len(new) == len(g) + 1
            assert [absolute(new, j) for j in range(len(new))] == expected_after_splice(g, k, rewire)
            assert new.rows[k + 1].module == "SE" and new.rows[k + 1].section == g.rows[k].section
            for old, j in result.index_map.items():
                before, after = g.rows[old].refs(), new.rows[j].refs()
                assert [r < 0 for r in before] == [r < 0 for r in after], "relative must stay relative"
                assert type(g.rows[old].from_) is type(new.rows[j].from_)
        valid.append(k)
    # the written YAML reads back to exactly the graph the surgery produced (first, middle and last valid index)
    for k in {valid[0], valid[len(valid) // 2], valid[-1]}:
        text = text_writer.dump(tree_edits.apply(doc, graph.insert(g, k, "SE", [16])))
        back = model_doc.loads(text)
        reread = graph.Graph.from_sections(model_doc.to_plain(back["backbone"]), model_doc.to_plain(back["head"]))
        assert reread == graph.insert(g, k, "SE", [16]).graph


def test_yolo11n_head_inputs_after_16_and_8():
    g = model_doc.load("yolo11n.yaml").graph
    after16 = graph.insert(g, 16, "SE").graph
    assert after16.rows[-1].module == "Detect" and after16.rows[-1].from_ == [17, 20, 23]
    assert after16.rows[17].module == "SE"  # Detect's P3 input is now the attention output
    after8 = graph.insert(g, 8, "SE").graph
    assert after8.rows[-1].from_ == [17, 20, 23]
    concats = {i: r.from_ for i, r in enumerate(after8.rows) if r.module == "Concat"}
    assert concats == {13: [-1, 6], 16: [-1, 4], 19: [-1, 14], 22: [-1, 11]}


def test_rtdetr_negative_relative_references():
    g = model_doc.load("rtdetr-l.yaml").graph
    c = next(i for i, r in enumerate(g.rows) if r.from_ == [-2, -1])  # the first [-2, -1] concat
    assert absolute(g, c) == [c - 2, c - 1]
    # inserting after c-2 puts the attention between the concat's two inputs: -2 now reads the attention (-2 again),
    # -1 still reads the old c-1; both keep their written form because their meaning did not change
    between = graph.insert(g, c - 2, "SE")
    assert between.graph.rows[c + 1].from_ == [-2, -1] and absolute(between.graph, c + 1) == [c - 1, c]
    assert between.graph.rows[c - 1].module == "SE"
    # with rewire next the concat's -2 must keep reading the old layer c-2, so it is rewritten to -3
    kept = graph.insert(g, c - 2, "SE", rewire="next")
    assert kept.graph.rows[c + 1].from_ == [-3, -1] and absolute(kept.graph, c + 1) == [c - 2, c]
    elsewhere = graph.insert(g, 3, "SE")
    assert elsewhere.graph.rows[c + 1].from_ == [-2, -1]


def test_multi_insert_equals_one_by_one_from_the_top():
    g = model_doc.load("yolo11s.yaml").graph
    together = graph.insert(g, [4, 6, 8], "CBAM")
    step = g
    for k in (8, 6, 4):
        step = graph.insert(step, k, "CBAM").graph
    assert together.graph == step
    assert [i.index for i in together.insertions] == [5, 8, 11]
    assert together.index_map[8] == 10 and together.index_map[10] == 13


def test_yolov9e_cblinear_and_cbfuse_references():
    g = model_doc.load("yolov9e.yaml").graph
    new = graph.insert(g, 5, "SE").graph
    assert new.rows[13].module == "CBLinear" and new.rows[13].from_ == 6  # reads the attention, not layer 5
    assert new.rows[17].module == "CBFuse" and new.rows[17].from_ == [11, 12, 13, 14, 15, -1]
    assert new.rows[17].args == g.rows[16].args  # CBFuse args index CBLinear outputs, not layers: untouched


def test_rewire_next_keeps_absolute_readers_on_k():
    g = model_doc.load("yolo11n.yaml").graph
    result = graph.insert(g, 6, "SE", rewire="next")
    assert result.graph.rows[8].from_ == -1 and absolute(result.graph, 8) == [7]  # successor reads the SE
    assert result.graph.rows[13].from_ == [-1, 6]  # the P4 skip still reads the C3k2 at 6
    all_mode = graph.insert(g, 6, "SE")
    assert all_mode.graph.rows[13].from_ == [-1, 7]


@pytest.mark.parametrize(
    ("model", "after", "message"),
    [
        ("yolo11n.yaml", 23, "is the head (Detect), the last layer"),
        ("yolo11n.yaml", 24, "outside the model, which has layers 0 to 23"),
        ("yolo11n.yaml", -1, "is negative"),
        ("yolov9c.yaml", 10, None),
        ("yolov9e.yaml", 10, "is CBLinear, whose output is not a single feature map"),
    ],
)
def test_invalid_targets(model, after, message):
    g = model_doc.load(model).graph
    if message is None:
        graph.insert(g, after, "SE")
        return
    with pytest.raises(SurgeryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        graph.insert(g, after, "SE")


def test_duplicate_after_is_an_error():
    g = model_doc.load("yolo11n.yaml").graph
    with pytest.raises(SurgeryError, match="given twice"):
        graph.insert(g, [8, 8], "SE")


GOLDEN_CASES = [
    ("yolo11n.yaml", [8], "HaloAttention", [2, 1], "all", "yolo11n-after8-HaloAttention.yaml"),
    ("yolo11s.yaml", [4, 6, 8], "CBAM", None, "all", "yolo11s-after4,6,8-CBAM.yaml"),
    ("yolo11n.yaml", [6], "SE", None, "next", "yolo11n-after6-next-SE.yaml"),
    ("yolo11n-seg.yaml", [10], "ECA", None, "all", "yolo11n-seg-after10-ECA.yaml"),
    ("yolo11n-pose.yaml", [16], "CoordAtt", None, "all", "yolo11n-pose-after16-CoordAtt.yaml"),
    ("yolo11n-obb.yaml", [4], "SE", None, "all", "yolo11n-obb-after4-SE.yaml"),
    ("yolo11n-cls.yaml", [8], "SE", None, "all", "yolo11n-cls-after8-SE.yaml"),
    ("yolov8n-p2.yaml", [15], "SE", None, "all", "yolov8n-p2-after15-SE.yaml"),
    ("yolov8n-p6.yaml", [11], "SE", None, "all", "yolov8n-p6-after11-SE.yaml"),
    ("yolov5n.yaml", [8], "SE", None, "all", "yolov5n-after8-SE.yaml"),
    ("yolov9c.yaml", [4], "SE", None, "all", "yolov9c-after4-SE.yaml"),
    ("yolov9e.yaml", [5], "SE", None, "all", "yolov9e-after5-SE.yaml"),  # CBLinear reads the SE; CBFuse refs move
    ("yolov10n.yaml", [9], "SE", None, "all", "yolov10n-after9-SE.yaml"),
    ("yolo12n.yaml", [8], "SE", None, "all", "yolo12n-after8-SE.yaml"),
    ("yolo26n.yaml", [8], "SE", None, "all", "yolo26n-after8-SE.yaml"),
    ("rtdetr-l.yaml", [3], "SE", None, "all", "rtdetr-l-after3-SE.yaml"),
]


@pytest.mark.parametrize(("model", "after", "module", "args", "rewire", "name"), GOLDEN_CASES, ids=lambda v: str(v))
def test_golden_yaml(model, after, module, args, rewire, name, tmp_path, golden):
    from attnsurgeon.ops import surgery as api

    out = tmp_path / name
    report = api.insert(model, module, after, args=args, rewire=rewire, output=out, verify=False)
    assert report.output == out
    # the structure behind the snapshot: one new row per --after, each right after its target (shifted by the rows
    # inserted before it), every original row kept in order
    base, new = model_doc.load(model).graph.rows, model_doc.load(out).graph.rows
    at = [k + 1 + j for j, k in enumerate(sorted(after))]
    assert len(new) == len(base) + len(after) and [new[i].module for i in at] == [module] * len(after)
    assert [r.module for i, r in enumerate(new) if i not in at] == [r.module for r in base]
    golden((GOLDEN / name, out.read_text()))
