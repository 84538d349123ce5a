"""The text properties of test_properties.py on flow-style renderings of the generated models: insert then remove
gives the flow text back byte for byte, and every edit reads as the same edit of the block-style file."""

from __future__ import annotations

from flow_fixtures import to_flow
from hypothesis import assume, given
from hypothesis import strategies as st
from test_properties import ATTN, TEXT_SETTINGS, insert_targets, layer_graphs, load_text, text_of

from attnsurgeon.core import graph
from attnsurgeon.core.yamlfile import model_doc, text_writer, tree_edits

CLOSES = ("own-line", "same-line", "no-comma")


def written(doc: model_doc.ModelDoc, result: graph.SurgeryResult) -> str:
    return text_writer.surgery_text(doc, result, tree_edits.apply(doc, result))


@TEXT_SETTINGS
@given(layer_graphs(), st.sampled_from(CLOSES), st.data())
def test_flow_insert_then_remove_gives_back_the_text_byte_for_byte(sections, close, data):
    block = load_text(text_of(*sections))
    assume(text_writer.dump(block.data) == block.text)
    flow = load_text(to_flow(block.text, close))
    assert flow.graph == block.graph
    k = data.draw(st.sampled_from(insert_targets(flow.graph)))
    rewire = data.draw(st.sampled_from(["all", "next"]))
    inserted = graph.insert(flow.graph, k, ATTN, ["NEW"], rewire=rewire)
    middle = written(flow, inserted)
    assert model_doc.to_plain(model_doc.loads(middle)) == model_doc.to_plain(model_doc.loads(written(block, inserted)))
    doc2 = load_text(middle)
    assert doc2.graph == inserted.graph
    removed = graph.remove(doc2.graph, k + 1, {ATTN})
    assert written(doc2, removed) == flow.text


@TEXT_SETTINGS
@given(layer_graphs(), st.sampled_from(CLOSES), st.data())
def test_flow_replace_changes_exactly_one_line(sections, close, data):
    flow = load_text(to_flow(text_of(*sections), close))
    g = flow.graph
    candidates = [i for i in range(1, len(g) - 1) if g.rows[i].module == ATTN and len(g.rows[i].refs()) == 1]
    assume(candidates)
    k = data.draw(st.sampled_from(candidates))
    out = written(flow, graph.replace(g, k, "Other", ["swapped", 2], {ATTN})).splitlines()
    before = flow.text.splitlines()
    assert len(out) == len(before)
    changed = [n for n, (a, b) in enumerate(zip(before, out, strict=True)) if a != b]
    assert len(changed) == 1 and "Other, [swapped, 2]" in out[changed[0]]
