"""Every edit of a model's round-trip tree (ruamel.yaml), made in place so that each comment and the layout stay:
a surgery's rows spliced in (:func:`apply`: rows rewired, replaced, removed, inserted, index comments renumbered)
and ``adopt``'s edits of single layers (:func:`set_row`, :func:`set_from`, :func:`renumber_index_comment`), with the
index comments read back (:func:`index_comments`). Turning an edited tree into text is
:mod:`attnsurgeon.core.yamlfile.text_writer`'s. No torch, no printing.

Rows are addressed two ways: by layer index over both sections (what ``adopt`` edits, where no row moves), and,
inside a surgery, by section list and position (the private helpers below), since indices move as rows come and go.
A row's comment token holds its own trailing comment, then the lines up to the next row (blank lines, the next
section's header); inserting and removing rows moves those lines so the file reads as a person would have edited it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from attnsurgeon.core.graph import SurgeryResult
from attnsurgeon.core.yamlfile import comments
from attnsurgeon.core.yamlfile.comments import OWN_COMMENT, renumbered
from attnsurgeon.core.yamlfile.model_doc import ModelDoc, copy_tree

_WIDTH_YAML = YAML()  # only measures how wide a flow row is written (every spelling change is width-neutral)
_WIDTH_YAML.width = 4096


def flow_seq(items: Sequence[Any]) -> CommentedSeq:
    """A list (nested lists too) that dumps in flow style, as Ultralytics writes rows: ``[-1, 1, SE, [16]]``."""
    seq = CommentedSeq(flow_seq(x) if isinstance(x, (list, tuple)) else x for x in items)
    seq.fa.set_flow_style()
    return seq


# --------------------------------------------------------------------------------------------------------------------
# A surgery spliced into the tree


def _section_slots(data: CommentedMap) -> list[tuple[str, int]]:
    return [(s, j) for s in ("backbone", "head") for j in range(len(data[s]))]


def apply(doc: ModelDoc, result: SurgeryResult, in_place: bool = False) -> CommentedMap:
    """The surgery's rows spliced into the round-trip tree, everything else untouched.

    Works on a fresh copy of ``doc`` unless ``in_place`` (then ``doc.data`` is the result and ``doc`` is spent).
    """
    data = doc.data if in_place else copy_tree(doc)
    old_slots = _section_slots(data)
    old_len = len(old_slots)
    new_graph = result.graph
    inverse = {new: old for old, new in result.index_map.items()}

    # 1. rewrite 'from' of moved/rewired rows in place (keeps the row's flow style and comment) and index comments
    for old in range(old_len):
        if old not in result.index_map:
            continue  # removed below
        new = result.index_map[old]
        section, pos = old_slots[old]
        new_from = new_graph.rows[new].from_
        if new_from != doc.graph.rows[old].from_:
            _rewire(data[section], pos, list(new_from) if isinstance(new_from, list) else new_from)
        _renumber_comment(_comment_token(data[section], pos), old, new)

    # 2. replaced and augmented rows: module and args change, the row keeps its place, 'from' and comment
    for new in (*result.replaced, *result.augmented):
        section, pos = old_slots[inverse[new]]
        _replace_row(data[section], pos, new_graph.rows[new].module, list(new_graph.rows[new].args))

    # 3. removed rows go, with their own comment line; the lines after it (blank lines, a section header) stay
    if result.removed and result.insertions:
        raise ValueError("a surgery result either removes or inserts rows, not both")
    for old in sorted(result.removed, reverse=True):
        section, pos = old_slots[old]
        _remove_row(data[section], pos)

    # 4. splice the new rows in, from the bottom so earlier positions stay valid
    for ins in sorted(result.insertions, key=lambda x: x.index, reverse=True):
        section, pos = old_slots[inverse[ins.index - 1]]
        seq = data[section]
        row = flow_seq([-1, 1, ins.module, list(ins.args)])
        _insert_row(seq, pos + 1, row, f"# {ins.index} {ins.module} {OWN_COMMENT}")
    return data


# --------------------------------------------------------------------------------------------------------------------
# One layer, addressed by its index (what adopt edits)


def _row_slot(data: CommentedMap, index: int) -> tuple[CommentedSeq, int]:
    """The section list holding layer ``index`` and its position there."""
    section, pos = _section_slots(data)[index]
    return data[section], pos


def set_row(data: CommentedMap, index: int, module: str, args: list[Any]) -> None:
    """Change a row's module and args in place; its ``from``, repeats, flow style, comment and the gap before the
    comment stay."""
    _replace_row(*_row_slot(data, index), module, args)


def set_from(data: CommentedMap, index: int, from_: int | list[int]) -> None:
    """Change a row's ``from`` in place (flow style and the gap before its comment kept)."""
    _rewire(*_row_slot(data, index), from_)


def index_comments(data: CommentedMap) -> dict[int, int]:
    """Layer -> the index its trailing comment names (:func:`comments.index_of`: ``# 16 (P3/8-small)`` -> 16; not
    ``# 2 heads``)."""
    out = {}
    for index in range(len(_section_slots(data))):
        token = _comment_token(*_row_slot(data, index))
        written = comments.index_of(token.value.partition("\n")[0]) if token is not None else None
        if written is not None:
            out[index] = written
    return out


def renumber_index_comment(data: CommentedMap, index: int, old: int) -> None:
    """Make layer ``index``'s trailing comment start with ``index`` instead of ``old``."""
    _renumber_comment(_comment_token(*_row_slot(data, index)), old, index)


# --------------------------------------------------------------------------------------------------------------------
# One row, addressed by its section list and position


def _comment_token(seq: CommentedSeq, position: int) -> CommentToken | None:
    entry = seq.ca.items.get(position)
    return entry[0] if entry and entry[0] is not None else None


def _renumber_comment(token: CommentToken | None, old: int, new: int) -> None:
    """A trailing comment that starts with the row's old index (``# 16 (P3/8-small)``) gets the new index."""
    if token is None or old == new:
        return
    first, sep, rest = token.value.partition("\n")
    token.value = f"{renumbered(first, old, new)}{sep}{rest}"


def _insert_row(seq: CommentedSeq, position: int, row: CommentedSeq, comment: str) -> None:
    # The previous row's comment token also holds the lines after it (blank lines, the next section's header):
    # the new row joins the previous row's group, so those lines now follow the new row.
    previous = _comment_token(seq, position - 1)
    tail = ""
    if previous is not None:
        first, sep, tail = previous.value.partition("\n")
        previous.value = first + sep
        if not first.strip():  # the token was only blank lines: the previous row keeps no comment
            seq.ca.items.pop(position - 1, None)
    seq.insert(position, row)  # ruamel shifts the comment slots of later rows
    seq.yaml_add_eol_comment(comment, position, column=0)
    token = _comment_token(seq, position)
    if token is not None:
        token.value = token.value.rstrip("\n") + "\n" + tail


def _rewire(seq: CommentedSeq, position: int, from_: int | list[int]) -> None:
    """Rewrite a row's ``from``, keeping the gap before its trailing comment (ruamel keeps the comment's column, so a
    row that grows by a digit would push it right, and one that shrinks would leave two spaces)."""
    old = seq[position][0]
    seq[position][0] = flow_seq(from_) if isinstance(from_, list) else from_
    _shift_comment(seq, position, len(str(from_)) - len(str(list(old) if isinstance(old, list) else old)))


@contextmanager
def _comment_gap_kept(seq: CommentedSeq, position: int) -> Iterator[None]:
    """:func:`_rewire`'s rule for any edit inside a row, measured by writing the row (slower)."""
    token = _comment_token(seq, position)
    before = _flow_width(seq[position]) if token is not None else 0
    yield
    if token is not None:
        _shift_comment(seq, position, _flow_width(seq[position]) - before)


def _shift_comment(seq: CommentedSeq, position: int, delta: int) -> None:
    token = _comment_token(seq, position)
    if delta and token is not None and token.start_mark is not None:
        token.start_mark = CommentMark(max(0, token.column + delta))


def _flow_width(item: CommentedSeq) -> int:
    buf = io.StringIO()
    _WIDTH_YAML.dump(CommentedMap(row=item), buf)
    return len(buf.getvalue().rstrip("\n")) - len("row: ")


def _replace_row(seq: CommentedSeq, position: int, module: str, args: list[Any]) -> None:
    item = seq[position]
    old_module = str(item[2])
    with _comment_gap_kept(seq, position):
        item[2] = module
        item[3] = flow_seq(args)
    token = _comment_token(seq, position)
    if token is not None:  # our own comment names the module: "# 9 SE (attnsurgeon)" -> "# 9 CBAM (attnsurgeon)"
        first, sep, rest = token.value.partition("\n")
        mark = f" {old_module} {OWN_COMMENT}"
        if first.endswith(mark):
            token.value = f"{first[: -len(mark)]} {module} {OWN_COMMENT}{sep}{rest}"


def _remove_row(seq: CommentedSeq, position: int) -> None:
    # The row's comment token holds its own trailing comment, then the lines up to the next row (blank lines, the
    # next section's header): the first goes with the row, the rest now follow the previous row.
    token = _comment_token(seq, position)
    tail = token.value.partition("\n")[2] if token is not None else ""
    del seq[position]  # ruamel shifts the comment slots of later rows
    if not tail:
        return
    previous = _comment_token(seq, position - 1) if position > 0 else None
    if previous is not None:
        previous.value = previous.value + ("" if previous.value.endswith("\n") else "\n") + tail
    elif position > 0:
        seq.ca.items.setdefault(position - 1, [None, None, None, None])[0] = CommentToken("\n" + tail, CommentMark(0))
    elif seq:  # the first row of its section: the lines go before the new first row, as the section's own
        tokens = [
            CommentToken(f"{line.strip()}\n" if line.strip() else "\n", CommentMark(2 if line.strip() else 0))
            for line in tail.splitlines()
        ]
        if seq.ca.comment and seq.ca.comment[1] is not None:
            seq.ca.comment[1].extend(tokens)  # after the lines already there (the list ruamel reads them from)
        else:
            seq.ca.comment = [None, tokens]
