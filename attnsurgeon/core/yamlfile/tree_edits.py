"""A model's round-trip tree (ruamel.yaml): the check that it holds plain values only, and row-level edits that
keep every comment and the layout.

A row's comment token holds its own trailing comment, then the lines up to the next row (blank lines, the next
section's header); inserting and removing rows moves those lines so the file reads as a person would have edited it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from attnsurgeon.core.yamlfile.comments import OWN_COMMENT, renumbered
from attnsurgeon.errors import ModelFileError

MAX_VALUES = 1_000_000  # far above any model (yolov9e: ~700 values), far below an alias bomb
_WIDTH_YAML = YAML()  # only measures how wide a flow row is written (every spelling change is width-neutral)
_WIDTH_YAML.width = 4096


def check_plain(data: Any, source: str) -> None:
    """Refuse explicit tags (``!!python/object``: a model file holds plain values only) and aliases that expand beyond
    any model (``&a [*b, *b, ...]``, the "billion laughs"): Ultralytics and attnsurgeon copy every alias out."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, TaggedScalar) or (isinstance(node, (CommentedMap, CommentedSeq)) and node.tag.value):
            tag = str(node.tag.value if isinstance(node, (CommentedMap, CommentedSeq)) else node.tag)
            tag = tag.replace("tag:yaml.org,2002:", "!!")
            raise ModelFileError(f"{source}: uses the YAML tag {tag}; a model file holds plain values only, no tags")
        if not isinstance(node, (dict, list)) or (id(node) in sizes and not children_done):
            continue
        children = list(node.values()) if isinstance(node, dict) else list(node)
        if not children_done:
            sizes[id(node)] = 0  # in progress; a cycle (an alias of its own parent) counts once
            stack.append((node, True))
            stack.extend((c, False) for c in children if isinstance(c, (dict, list, TaggedScalar)))
            continue
        sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
        if sizes[id(node)] > MAX_VALUES:
            raise ModelFileError(
                f"{source}: expands to more than {MAX_VALUES:,} values through YAML aliases (*name); a model file "
                "needs no aliases"
            )


def flow_seq(items: Sequence[Any]) -> CommentedSeq:
    """A list (nested lists too) that dumps in flow style, as Ultralytics writes rows: ``[-1, 1, SE, [16]]``."""
    seq = CommentedSeq(flow_seq(x) if isinstance(x, (list, tuple)) else x for x in items)
    seq.fa.set_flow_style()
    return seq


def comment_token(seq: CommentedSeq, position: int) -> CommentToken | None:
    entry = seq.ca.items.get(position)
    return entry[0] if entry and entry[0] is not None else None


def renumber_comment(token: CommentToken | None, old: int, new: int) -> None:
    """A trailing comment that starts with the row's old index (``# 16 (P3/8-small)``) gets the new index."""
    if token is None or old == new:
        return
    first, sep, rest = token.value.partition("\n")
    token.value = f"{renumbered(first, old, new)}{sep}{rest}"


def insert_row(seq: CommentedSeq, position: int, row: CommentedSeq, comment: str) -> None:
    # The previous row's comment token also holds the lines after it (blank lines, the next section's header):
    # the new row joins the previous row's group, so those lines now follow the new row.
    previous = comment_token(seq, position - 1)
    tail = ""
    if previous is not None:
        first, sep, tail = previous.value.partition("\n")
        previous.value = first + sep
        if not first.strip():  # the token was only blank lines: the previous row keeps no comment
            seq.ca.items.pop(position - 1, None)
    seq.insert(position, row)  # ruamel shifts the comment slots of later rows
    seq.yaml_add_eol_comment(comment, position, column=0)
    token = comment_token(seq, position)
    if token is not None:
        token.value = token.value.rstrip("\n") + "\n" + tail


def set_from(seq: CommentedSeq, position: int, from_: int | list[int]) -> None:
    """Rewrite a row's ``from``, keeping the gap before its trailing comment (ruamel keeps the comment's column, so a
    row that grows by a digit would push it right, and one that shrinks would leave two spaces)."""
    old = seq[position][0]
    seq[position][0] = flow_seq(from_) if isinstance(from_, list) else from_
    _shift_comment(seq, position, len(str(from_)) - len(str(list(old) if isinstance(old, list) else old)))


@contextmanager
def _comment_gap_kept(seq: CommentedSeq, position: int) -> Iterator[None]:
    """:func:`set_from`'s rule for any edit inside a row, measured by writing the row (slower)."""
    token = comment_token(seq, position)
    before = _flow_width(seq[position]) if token is not None else 0
    yield
    if token is not None:
        _shift_comment(seq, position, _flow_width(seq[position]) - before)


def _shift_comment(seq: CommentedSeq, position: int, delta: int) -> None:
    token = comment_token(seq, position)
    if delta and token is not None and token.start_mark is not None:
        token.start_mark = CommentMark(max(0, token.column + delta))


def _flow_width(item: CommentedSeq) -> int:
    buf = io.StringIO()
    _WIDTH_YAML.dump(CommentedMap(row=item), buf)
    return len(buf.getvalue().rstrip("\n")) - len("row: ")


def replace_row(seq: CommentedSeq, position: int, module: str, args: list[Any]) -> None:
    item = seq[position]
    old_module = str(item[2])
    with _comment_gap_kept(seq, position):
        item[2] = module
        item[3] = flow_seq(args)
    token = comment_token(seq, position)
    if token is not None:  # our own comment names the module: "# 9 SE (attnsurgeon)" -> "# 9 CBAM (attnsurgeon)"
        first, sep, rest = token.value.partition("\n")
        mark = f" {old_module} {OWN_COMMENT}"
        if first.endswith(mark):
            token.value = f"{first[: -len(mark)]} {module} {OWN_COMMENT}{sep}{rest}"


def remove_row(seq: CommentedSeq, position: int) -> None:
    # The row's comment token holds its own trailing comment, then the lines up to the next row (blank lines, the
    # next section's header): the first goes with the row, the rest now follow the previous row.
    token = comment_token(seq, position)
    tail = token.value.partition("\n")[2] if token is not None else ""
    del seq[position]  # ruamel shifts the comment slots of later rows
    if not tail:
        return
    previous = comment_token(seq, position - 1) if position > 0 else None
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
