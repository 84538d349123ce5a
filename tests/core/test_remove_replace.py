"""remove and replace on the graph and in the round-trip YAML: refusals, comments, layout, the inverse of insert."""

from __future__ import annotations

import pytest

from attnsurgeon.core import graph
from attnsurgeon.core.yamlfile import model_doc, text_writer, tree_edits
from attnsurgeon.errors import SurgeryError

PACKAGED = sorted(model_doc.packaged_models_dir().rglob("*.yaml"))


def reread(text: str) -> model_doc.ModelDoc:
    data = model_doc.loads(text)
    g = graph.Graph.from_sections(model_doc.to_plain(data["backbone"]), model_doc.to_plain(data["head"]))
    return model_doc.ModelDoc(data=data, graph=g, path=model_doc.Path("x.yaml"), stem="x", packaged=False, text=text)


def insert_then_remove(doc: model_doc.ModelDoc, k: int) -> str:
    inserted = graph.insert(doc.graph, k, "SE", [16])
    middle = reread(text_writer.dump(tree_edits.apply(doc, inserted)))
    removed = graph.remove(middle.graph, k + 1, {"SE"})
    assert removed.graph == doc.graph
    return text_writer.dump(tree_edits.apply(middle, removed))


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (23, "--at 23 is the head (Detect), the last layer; it cannot be taken out"),
        (24, "--at 24 is outside the model, which has layers 0 to 23"),
        (-1, "--at -1 is outside the model"),
        (12, "--at 12 is Concat, which reads 2 layers ([-1, 6]); only a layer with a single input can be taken out"),
        (0, "--at 0 is Conv, which reads the input image; no layer could take its place"),
        (9, "--at 9 is SPPF, which may change channels or stride; only a layer that keeps its input's shape"),
        (11, "--at 11 is nn.Upsample, which may change channels or stride"),
    ],
)
def test_remove_refuses_with_the_reason(at, message):
    g = model_doc.load("yolo11n.yaml").graph
    with pytest.raises(SurgeryError) as info:
        graph.remove(g, at)
    assert message in str(info.value)
    with pytest.raises(SurgeryError):
        graph.replace(g, at, "CBAM", [7])


def test_remove_and_replace_take_each_index_once():
    g = graph.insert(model_doc.load("yolo11n.yaml").graph, [4, 6], "SE").graph
    with pytest.raises(SurgeryError, match="--at 5 is given twice"):
        graph.remove(g, [5, 5], {"SE"})
    with pytest.raises(SurgeryError, match="no --at index given"):
        graph.remove(g, [], {"SE"})
    with pytest.raises(SurgeryError, match="--at 5 is SE, which may change"):
        graph.remove(g, 5)  # SE is shape-keeping only when the caller says so (the catalog is not the graph's)


def test_shape_keeping_ultralytics_rows_and_identity_init():
    g = model_doc.load("yolo11n.yaml").graph
    for module, args in (("nn.Identity", []), ("IdentityInit", ["SE", [16]]), ("AIFI", [1024, 8])):
        with_row = graph.insert(g, 8, module, args).graph
        assert graph.remove(with_row, 9).graph == g
        swapped = graph.replace(with_row, 9, "ECA", [])
        assert swapped.graph.rows[9].module == "ECA" and swapped.graph.rows[9].from_ == -1


def test_remove_a_head_input_attention_rewires_detect():
    g = graph.insert(model_doc.load("yolo11n.yaml").graph, [16, 19, 22], "SE").graph
    assert g.rows[-1].from_ == [17, 21, 25]
    result = graph.remove(g, [17, 21], {"SE"})
    assert result.graph.rows[-1].from_ == [16, 19, 23]
    assert result.removed == (17, 21)
    assert result.index_map[25] == 23 and 17 not in result.index_map
    assert (len(result.graph) - 1, [17, 21, 25], [16, 19, 23]) in result.changed


def test_remove_keeps_relative_references_relative():
    g = model_doc.load("rtdetr-l.yaml").graph
    c = next(i for i, r in enumerate(g.rows) if r.from_ == [-2, -1])  # reads c-2 and c-1
    with_se = graph.insert(g, c - 2, "SE").graph  # the SE sits between the concat's inputs
    assert graph.remove(with_se, c - 1, {"SE"}).graph == g
    kept = graph.insert(g, c - 2, "SE", rewire="next").graph  # the concat's -2 was rewritten to -3
    assert kept.rows[c + 1].from_ == [-3, -1]
    assert graph.remove(kept, c - 1, {"SE"}).graph.rows[c].from_ == [-2, -1]


def test_replace_changes_one_row_and_our_own_comment():
    doc = model_doc.load("yolo11n.yaml")
    inserted = graph.insert(doc.graph, 8, "SE", [16])
    middle = reread(text_writer.dump(tree_edits.apply(doc, inserted)))
    assert "  - [-1, 1, SE, [16]] # 9 SE (attnsurgeon)\n" in middle.text
    result = graph.replace(middle.graph, 9, "CBAM", [7], {"SE"})
    assert result.replaced == (9,) and result.removed == () and result.insertions == ()
    assert result.changed == () and result.index_map == {i: i for i in range(len(middle.graph))}
    text = text_writer.dump(tree_edits.apply(middle, result))
    assert text == middle.text.replace(
        "  - [-1, 1, SE, [16]] # 9 SE (attnsurgeon)\n", "  - [-1, 1, CBAM, [7]] # 9 CBAM (attnsurgeon)\n"
    )
    wrapped = graph.replace(middle.graph, 9, "IdentityInit", ["ECA", [3]], {"SE"})
    assert "  - [-1, 1, IdentityInit, [ECA, [3]]] # 9 IdentityInit (attnsurgeon)\n" in text_writer.dump(
        tree_edits.apply(middle, wrapped)
    )


def test_removing_a_users_row_keeps_the_lines_after_it():
    text = (
        "nc: 80 # classes\n"
        "backbone:\n"
        "  - [-1, 1, Conv, [64, 3, 2]] # 0-P1/2\n"
        "  - [-1, 1, SE, []] # 1 my attention\n"
        "  - [-1, 1, CBAM, []] # 2\n"
        "\n"
        "# the head\n"
        "head:\n"
        "  - [[-1, 1], 1, Concat, [1]] # 3 reads the SE\n"
        "  - [[3], 1, Detect, [nc]] # 4 Detect\n"
    )
    doc = reread(text)
    assert text_writer.dump(doc.data) == text
    result = graph.remove(doc.graph, [1, 2], {"SE", "CBAM"})
    assert text_writer.dump(tree_edits.apply(doc, result)) == (
        "nc: 80 # classes\n"
        "backbone:\n"
        "  - [-1, 1, Conv, [64, 3, 2]] # 0-P1/2\n"
        "\n"
        "# the head\n"
        "head:\n"
        "  - [[-1, 0], 1, Concat, [1]] # 1 reads the SE\n"
        "  - [[1], 1, Detect, [nc]] # 2 Detect\n"
    )


def test_a_digit_more_or_less_keeps_the_comment_where_it_was():
    doc = model_doc.load("yoloe-v8-seg.yaml")  # "[[-1, 9], 1, Concat, [1]] # cat head P5": 9 becomes 10 and back
    assert "  - [[-1, 9], 1, Concat, [1]] # cat head P5\n" in doc.text
    inserted = graph.insert(doc.graph, 0, "SE", [16])
    assert "  - [[-1, 10], 1, Concat, [1]] # cat head P5\n" in text_writer.dump(tree_edits.apply(doc, inserted))
    assert insert_then_remove(doc, 0) == doc.text


@pytest.mark.parametrize("path", PACKAGED, ids=lambda p: p.name)
def test_insert_then_remove_restores_every_packaged_file_sampled(path):
    """The middle valid index of every packaged YAML (every index, through the files the API writes: the slow test in
    test_remove_cmd.py)."""
    doc = model_doc.load(path)
    valid = [k for k in range(len(doc.graph) - 1) if _valid(doc.graph, k)]
    k = valid[len(valid) // 2]
    assert insert_then_remove(doc, k) == doc.text, (path.name, k)


def _valid(g: graph.Graph, k: int) -> bool:
    try:
        graph.check_target(g, k)
    except SurgeryError:
        return False
    return True


def test_removing_the_first_row_of_a_section_keeps_the_lines_after_it_before_the_next_row():
    text = (
        "backbone:\n"
        "  - [-1, 1, Conv, [64, 3, 2]] # 0\n"
        "head:\n"
        "  # the head\n"
        "  - [-1, 1, SE, []] # 1 first of the head\n"
        "\n"
        "  # neck\n"
        "  - [-1, 1, Conv, [64]] # 2\n"
        "  - [[2], 1, Detect, [nc]] # 3\n"
    )
    doc = reread(text)
    assert text_writer.dump(doc.data) == text
    out = text_writer.dump(tree_edits.apply(doc, graph.remove(doc.graph, 1, {"SE"})))
    assert out == (
        "backbone:\n"
        "  - [-1, 1, Conv, [64, 3, 2]] # 0\n"
        "head:\n"
        "  # the head\n"
        "\n"
        "  # neck\n"
        "  - [-1, 1, Conv, [64]] # 1\n"
        "  - [[1], 1, Detect, [nc]] # 2\n"
    )
