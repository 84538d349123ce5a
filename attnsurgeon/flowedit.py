"""The text a surgery writes: ruamel's dump of the edited tree for a block-style file, the input text edited line
by line (:mod:`attnsurgeon.flowstyle`) for a flow-style one. No torch, no printing."""

from __future__ import annotations

from typing import Any

from attnsurgeon import yamlio
from attnsurgeon.errors import ModelFileError
from attnsurgeon.flowstyle import KEY_RE, Layout, layout, newline, render


def is_flow(doc: Any) -> bool:
    """Whether ``doc`` (a yamlio.ModelDoc) has a flow-style section (its output is written by :func:`surgery_text`)."""
    return layout(doc.text, str(doc.path)) is not None


def surgery_text(doc: Any, result: Any, data: Any) -> str:
    """The text a surgery writes: ruamel's dump of the edited tree ``data`` for a block-style file; for a flow-style
    one, the input text with only the lines the surgery changes rewritten, checked to read as the edited tree."""
    lay = layout(doc.text, str(doc.path))
    if lay is None:
        return yamlio.dump(data)
    inserted = {ins.index: ins.after for ins in result.insertions}
    text = render(
        doc.text,
        lay,
        doc.graph.rows,
        result.graph.rows,
        result.index_map,
        inserted,
        (*result.replaced, *result.augmented),
        lambda items: _row_text(items),
    )
    text = _added_keys(text, lay, data)
    if not _reads_as(text, yamlio.to_plain(data), str(doc.path)):
        raise ModelFileError(
            f"{doc.path}: this flow-style file cannot be edited line by line (the rewritten lines would not read as "
            "the edited model); nothing was written; write its rows in block style ('- [...]')"
        )
    return text


def _row_text(items: list[Any]) -> str:
    from ruamel.yaml.comments import CommentedMap

    from attnsurgeon.yamltree import flow_seq

    return yamlio.dump(CommentedMap(row=flow_seq(items))).rstrip("\r\n")[len("row: ") :]


def _added_keys(text: str, lay: Layout, data: Any) -> str:
    """Top-level keys the surgery added to the tree (``attnsurgeon_plugins``), as the block path writes them."""
    added = [k for k in data if k not in lay.keys]
    if not added:
        return text
    dumped = {m.group(1): line for line in yamlio.dump(data).splitlines() if (m := KEY_RE.match(line))}
    lines = text.splitlines(keepends=True)
    keys = list(data)
    for key in added:
        before = keys[: keys.index(key)]
        at = max((lay.keys[k] + 1 for k in before if k in lay.keys), default=0)
        at += sum(1 for k in added[: added.index(key)] if k in before)
        lines.insert(at, dumped[key] + newline(lay.lines))
    return "".join(lines)


def _reads_as(text: str, plain: dict[str, Any], source: str) -> bool:
    """Whether ``text`` reads as ``plain``: PyYAML's C loader first (~1 ms, an Ultralytics dependency), ruamel.yaml
    (the reader of every command, ~15 ms on yolo11n) where the two YAML versions might read a value differently."""
    try:
        import yaml

        if yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) == plain:
            return True
    except Exception:  # PyYAML missing, or a value it reads otherwise: ask the exact reader
        pass
    return bool(yamlio.to_plain(yamlio.loads(text, source)) == plain)


def adopted_text(doc: Any, new_graph: Any, shown: dict[int, int], data: Any) -> str:
    """``adopt``'s output: rows changed in place (no row moves), index comments that showed ``shown[i]`` renumbered
    to ``i``; the dump of ``data`` for a block-style file."""
    lay = layout(doc.text, str(doc.path))
    if lay is None:
        return yamlio.dump(data)
    old, new = doc.graph.rows, new_graph.rows
    changed = [i for i in range(len(old)) if (old[i].module, old[i].args) != (new[i].module, new[i].args)]
    identity = {i: i for i in range(len(old))}
    text = render(doc.text, lay, old, new, identity, {}, changed, _row_text, shown)
    if not _reads_as(text, yamlio.to_plain(data), str(doc.path)):
        raise ModelFileError(
            f"{doc.path}: this flow-style file cannot be adopted line by line; nothing was written; write its rows "
            "in block style ('- [...]')"
        )
    return text
