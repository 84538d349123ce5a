"""Every packaged Ultralytics model, its rows rewritten in flow style, gives under insert, remove, replace and augment
the same parsed model as the block-style original under the same edit, and insert then remove gives the flow text
back byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from flow_fixtures import to_flow

from attnsurgeon.core import augment_graph, graph
from attnsurgeon.core.yamlfile import line_layout, model_doc, text_writer, tree_edits
from attnsurgeon.errors import SurgeryError

FILES = sorted(model_doc.packaged_models_dir().rglob("*.yaml"))
CLOSES = ("own-line", "same-line", "no-comma")
BLOCKS = ("C3k2", "C2f", "C3")


def doc_of(text: str, name: str) -> model_doc.ModelDoc:
    data = model_doc.loads(text, name)
    g = graph.Graph.from_sections(model_doc.to_plain(data["backbone"]), model_doc.to_plain(data["head"]))
    return model_doc.ModelDoc(data=data, graph=g, path=Path(name), stem=Path(name).stem, packaged=False, text=text)


def parsed(text: str) -> dict:
    return model_doc.to_plain(model_doc.loads(text))


def written(doc: model_doc.ModelDoc, result: graph.SurgeryResult) -> str:
    return text_writer.surgery_text(doc, result, tree_edits.apply(doc, result))


def test_the_fixture_is_the_same_model():
    for n, path in enumerate(FILES):
        text = path.read_text(encoding="utf-8")
        flow = to_flow(text, CLOSES[n % 3])
        assert parsed(flow) == parsed(text), path.name
        assert line_layout.layout(flow) is not None and line_layout.layout(text) is None


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_flow_edits_read_as_the_block_edits(path):
    text = path.read_text(encoding="utf-8")
    close = CLOSES[FILES.index(path) % 3]
    block, flow = doc_of(text, path.name), doc_of(to_flow(text, close), path.name)
    n = len(block.graph)
    edits = []
    for k in sorted({len(block.data["backbone"]) - 1, n // 2, n - 2}):
        try:
            edits.append(("insert", k, graph.insert(block.graph, k, "SE", [16])))
        except SurgeryError:
            continue
    blocks = [i for i, r in enumerate(block.graph.rows) if r.module in BLOCKS]
    if blocks:
        edits.append(("augment", blocks[0], augment_graph.augment(block.graph, [blocks[0]], "SE", [16])))
    assert edits, path.name
    for what, k, result in edits:
        out_block, out_flow = written(block, result), written(flow, result)
        assert parsed(out_flow) == parsed(out_block), (path.name, what, k)
        if what != "insert":
            continue
        middle = doc_of(out_flow, path.name)
        replaced = graph.replace(middle.graph, k + 1, "ECA", [1, 2, 0], {"SE"})
        middle_block = doc_of(out_block, path.name)
        assert parsed(written(middle, replaced)) == parsed(written(middle_block, replaced)), (path.name, "replace", k)
        assert written(middle, graph.remove(middle.graph, k + 1, {"SE"})) == flow.text, (path.name, "remove", k)
