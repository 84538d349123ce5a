"""Surgery proven by properties over random valid layer graphs.

The oracle does not use graph.py's index arithmetic: every row carries its identity in its args (``[id]``), the
surgery leaves args alone, so each reference of a result can be resolved to the identity of the row it reads and
compared with what the splice rule (DESIGN "Surgery semantics") says that identity must be.
"""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from attnsurgeon.core import graph
from attnsurgeon.core.graph import Graph
from attnsurgeon.core.yamlfile import model_doc, text_writer, tree_edits

ATTN = "Attn"  # stands for a catalog attention module: shape-keeping, single input
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT_SETTINGS = settings(SETTINGS, max_examples=40)  # each example parses and writes YAML with ruamel (slow)


@st.composite
def layer_graphs(draw: st.DrawFn) -> tuple[list[list], list[list]]:
    """Backbone and head rows ``[from, repeats, module, [identity]]``: int and list ``from``, negative relative and
    absolute references, the backbone/head split anywhere, a last layer that reads several earlier layers."""
    n = draw(st.integers(3, 14))
    rows: list[list] = [[-1, 1, "Conv", ["L0"]]]
    for i in range(1, n - 1):

        def ref(i: int = i) -> st.SearchStrategy[int]:
            return st.one_of(st.just(-1), st.integers(-i, -1), st.integers(0, i - 1))

        if draw(st.booleans()):
            from_: int | list[int] = draw(ref())
            module = draw(st.sampled_from(["Conv", ATTN, "C3k2"]))
        else:
            from_ = draw(st.lists(ref(), min_size=1, max_size=3))
            module = "Concat" if len(from_) > 1 else draw(st.sampled_from(["Conv", ATTN]))
        rows.append([from_, 1, module, [f"L{i}"]])
    heads = draw(st.lists(st.integers(0, n - 2), min_size=1, max_size=4, unique=True))
    rows.append([sorted(heads), 1, "Detect", [f"L{n - 1}"]])
    split = draw(st.integers(1, n - 1))
    return rows[:split], rows[split:]


def ident(g: Graph, i: int) -> str:
    return "image" if i == graph.INPUT else str(g.rows[i].args[0])


def reads(g: Graph) -> dict[str, list[str]]:
    """For every row identity, the identities it reads, resolving each reference from the YAML rule alone."""
    out = {}
    for j, row in enumerate(g.rows):
        refs = [row.from_] if isinstance(row.from_, int) else row.from_
        out[ident(g, j)] = [ident(g, j + r if r < 0 else r) for r in refs]
    return out


def written(g: Graph) -> dict[str, list[bool]]:
    return {ident(g, j): [r < 0 for r in row.refs()] for j, row in enumerate(g.rows)}


def nothing_reads_later(g: Graph) -> bool:
    return all(
        all(t < j for t in g.absolute(j)) and (j == 0 or graph.INPUT not in g.absolute(j)) for j in range(len(g))
    )


def insert_targets(g: Graph) -> list[int]:
    return list(range(len(g) - 1))


def text_of(backbone: list[list], head: list[list]) -> str:
    """The model as a user writes it: index comments, a section header comment, blank lines."""
    lines = ["# random model", "nc: 80", "backbone:"]
    i = 0
    for section, rows in (("backbone", backbone), ("head", head)):
        if section == "head":
            lines += ["", "# the head", "head:"]
        for row in rows:
            from_ = row[0] if isinstance(row[0], int) else "[" + ", ".join(map(str, row[0])) + "]"
            comment = f" # {i}" if i % 3 else (" # note" if i % 2 else "")
            lines.append(f"  - [{from_}, {row[1]}, {row[2]}, [{row[3][0]}]]{comment}")
            i += 1
    return "\n".join(lines) + "\n"


def load_text(text: str) -> model_doc.ModelDoc:
    data = model_doc.loads(text)
    g = Graph.from_sections(model_doc.to_plain(data["backbone"]), model_doc.to_plain(data["head"]))
    return model_doc.ModelDoc(
        data=data, graph=g, path=model_doc.Path("random.yaml"), stem="random", packaged=False, text=text
    )


@SETTINGS
@given(layer_graphs(), st.data())
def test_every_reference_after_insert_reads_what_the_splice_rule_names(sections, data):
    g = Graph.from_sections(*sections)
    g.validate()
    k = data.draw(st.sampled_from(insert_targets(g)))
    rewire = data.draw(st.sampled_from(["all", "next"]))
    new = graph.insert(g, k, ATTN, ["NEW"], rewire=rewire).graph
    before, after = reads(g), reads(new)
    target = ident(g, k)
    assert after.pop("NEW") == [target]
    assert new.rows[k + 1].section == g.rows[k].section
    for j, row in enumerate(g.rows):
        who = ident(g, j)
        expected = [
            "NEW" if j > k and s == target and (rewire == "all" or (j == k + 1 and ref == -1)) else s
            for ref, s in zip(row.refs(), before[who], strict=True)
        ]
        assert after[who] == expected, (who, before[who], after[who])
        assert written(new)[who] == written(g)[who], "relative stays relative, absolute stays absolute"
    assert nothing_reads_later(new)


@TEXT_SETTINGS
@given(layer_graphs(), st.data())
def test_insert_then_remove_gives_back_the_text_byte_for_byte(sections, data):
    text = text_of(*sections)
    doc = load_text(text)
    assume(text_writer.dump(doc.data) == text)  # the starting point is a file ruamel writes back unchanged
    k = data.draw(st.sampled_from(insert_targets(doc.graph)))
    rewire = data.draw(st.sampled_from(["all", "next"]))
    inserted = graph.insert(doc.graph, k, ATTN, ["NEW"], rewire=rewire)
    middle = text_writer.dump(tree_edits.apply(doc, inserted))
    doc2 = load_text(middle)
    assert doc2.graph == inserted.graph
    removed = graph.remove(doc2.graph, k + 1, {ATTN})
    assert removed.graph == doc.graph
    assert removed.removed == (k + 1,)
    assert text_writer.dump(tree_edits.apply(doc2, removed)) == text


@SETTINGS
@given(layer_graphs(), st.data())
def test_remove_makes_every_reader_read_the_removed_layers_input(sections, data):
    g = Graph.from_sections(*sections)
    removable = [i for i in range(1, len(g) - 1) if g.rows[i].module == ATTN and len(g.rows[i].refs()) == 1]
    assume(removable)
    k = data.draw(st.sampled_from(removable))
    result = graph.remove(g, k, {ATTN})
    before, after = reads(g), reads(result.graph)
    gone, source = ident(g, k), before[ident(g, k)][0]
    assert gone not in after
    for who, sources in after.items():
        assert sources == [source if s == gone else s for s in before[who]]
        assert written(result.graph)[who] == written(g)[who]
    assert nothing_reads_later(result.graph)
    assert [ident(result.graph, result.index_map[old]) for old in result.index_map] == [
        ident(g, old) for old in result.index_map
    ]


@SETTINGS
@given(layer_graphs(), st.data())
def test_several_positions_in_one_call_equal_one_at_a_time(sections, data):
    g = Graph.from_sections(*sections)
    targets = data.draw(st.lists(st.sampled_from(insert_targets(g)), min_size=1, max_size=4, unique=True))
    together = graph.insert(g, targets, ATTN, ["NEW"])
    step = g
    for k in sorted(targets, reverse=True):
        step = graph.insert(step, k, ATTN, ["NEW"]).graph
    assert together.graph == step
    # and every attention layer can be taken out again in one call, in any order of the indices
    news = [i.index for i in together.insertions]
    assert graph.remove(together.graph, data.draw(st.permutations(news)), {ATTN}).graph == g
    # removing several equals removing one at a time from the highest down
    removable = [i for i in range(1, len(g) - 1) if g.rows[i].module == ATTN and len(g.rows[i].refs()) == 1]
    if removable:
        many = data.draw(st.lists(st.sampled_from(removable), min_size=1, unique=True))
        one_by_one = g
        for k in sorted(many, reverse=True):
            one_by_one = graph.remove(one_by_one, k, {ATTN}).graph
        assert graph.remove(g, many, {ATTN}).graph == one_by_one


@TEXT_SETTINGS
@given(layer_graphs(), st.data())
def test_replace_keeps_every_reference_and_changes_exactly_one_row(sections, data):
    text = text_of(*sections)
    doc = load_text(text)
    assume(text_writer.dump(doc.data) == text)
    g = doc.graph
    candidates = [i for i in range(1, len(g) - 1) if g.rows[i].module == ATTN and len(g.rows[i].refs()) == 1]
    assume(candidates)
    k = data.draw(st.sampled_from(candidates))
    result = graph.replace(g, k, "Other", ["swapped", 2], {ATTN})
    assert result.replaced == (k,) and result.fresh_layers == [k]
    assert [r.from_ for r in result.graph.rows] == [r.from_ for r in g.rows]
    differ = [i for i in range(len(g)) if result.graph.rows[i] != g.rows[i]]
    assert differ == [k]
    assert result.graph.rows[k] == dataclasses.replace(g.rows[k], module="Other", args=("swapped", 2))
    out = text_writer.dump(tree_edits.apply(doc, result)).splitlines()
    assert len(out) == len(text.splitlines())
    changed = [n for n, (a, b) in enumerate(zip(text.splitlines(), out, strict=True)) if a != b]
    assert len(changed) == 1 and "Other, [swapped, 2]" in out[changed[0]]
