"""The one path from an edited round-trip tree to the text of a model file, taken by every command that writes one:
a surgery (``insert``, ``remove``, ``replace``, ``augment``, a sweep's variants: :func:`surgery_text`), a copy whose
top-level keys changed (a sweep's base copy: :func:`keys_text`), ``adopt`` (:func:`adopted_text`,
:func:`adopted_with_keys`), a checkpoint's architecture (:func:`architecture_text`); and the file's own line ending
put back (:func:`with_newline`).

The input text is edited line by line (:mod:`attnsurgeon.core.yamlfile.line_layout`), every line it does not have to
change kept byte for byte (blank and whitespace-only lines, spacing inside rows, comment columns), in block and flow
style alike, and the result checked to read as the edited tree. ruamel's dump of the tree (:func:`dump`) is only the
fallback: for a block-style file whose rows the line reader does not know (a row over several lines) or whose line
edit does not read back as the tree, and for a file with no input text (a checkpoint's architecture); a flow-style
file is refused instead, since ruamel would re-flow its rows and move every comment. No torch, no printing."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from attnsurgeon.core.yamlfile import model_doc, tree_edits
from attnsurgeon.core.yamlfile.comments import index_of
from attnsurgeon.core.yamlfile.line_layout import KEY_RE, Layout, layout, newline, render
from attnsurgeon.core.yamlfile.tree_edits import flow_seq
from attnsurgeon.errors import ModelFileError


def dump(data: CommentedMap) -> str:
    """ruamel's dump of a round-trip tree: the fallback of every writer here (see the module's docstring), and how a
    new row or key is spelled (``"\n"`` line endings)."""
    buf = io.StringIO()
    model_doc.round_trip_yaml().dump(data, buf)
    return buf.getvalue()


def with_newline(text: str, newline: str) -> str:
    """``text`` (``"\n"`` line endings) with the line ending of the file it rewrites (``ModelDoc.newline``)."""
    return text.replace("\n", newline) if newline != "\n" else text


def is_flow(doc: Any) -> bool:
    """Whether ``doc`` (a model_doc.ModelDoc) has a flow-style section."""
    return layout(doc.text, str(doc.path)) is not None


def index_comments(doc: Any) -> dict[int, int]:
    """Layer -> the index its trailing comment names (:func:`comments.index_of`), read from the text's row lines in a
    flow-style file (the round-trip tree keeps no comment per row there), from the tree otherwise."""
    try:
        flow = layout(doc.text, str(doc.path))
    except ModelFileError:
        flow = None  # a flow file the line reader refuses: its rows' comments are not read
    if flow is None:
        return tree_edits.index_comments(doc.data)
    return {i: n for i, row in enumerate(flow.rows) if (n := index_of(row.comment)) is not None}


def lines_of(doc: Any) -> Layout | None:
    """``doc``'s rows as lines (a flow-style file that cannot be read so is refused); None for a block-style file the
    line reader does not know (ruamel's dump writes it)."""
    flow = layout(doc.text, str(doc.path))
    if flow is not None:
        return flow
    try:
        return layout(doc.text, str(doc.path), block=True)
    except ModelFileError:
        return None


def surgery_text(doc: Any, result: Any, data: Any) -> str:
    """The text a surgery writes: the input text with only the lines the surgery changes rewritten, checked to read
    as the edited tree ``data``; ruamel's dump of ``data`` where a block-style file cannot be edited so."""
    lay = lines_of(doc)
    if lay is None:
        return dump(data)
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
    return _checked(doc, lay, _changed_keys(_added_keys(text, lay, data), lay, data, doc.plain()), data)


def keys_text(doc: Any, data: Any) -> str:
    """``doc``'s text with the top-level keys ``data`` added or gave another value (``attnsurgeon_plugins`` named
    relative to another folder) written, every row as it was; as :func:`surgery_text` for a surgery that moves no
    row."""
    lay = lines_of(doc)
    if lay is None:
        return dump(data)
    return _checked(doc, lay, _changed_keys(_added_keys(doc.text, lay, data), lay, data, doc.plain()), data)


def _checked(doc: Any, lay: Layout, text: str, data: Any) -> str:
    """``text`` where it reads as ``data``; else ruamel's dump of ``data`` for a block-style file, a refusal for a
    flow-style one."""
    if _reads_as(text, model_doc.to_plain(data), str(doc.path), lay):
        return text
    refusal = ModelFileError(
        f"{doc.path}: this flow-style file cannot be edited line by line (the rewritten lines would not read as "
        "the edited model); nothing was written; write its rows in block style ('- [...]')"
    )
    return _fallback(doc, lay, data, refusal)


def _row_text(items: list[Any]) -> str:
    return dump(CommentedMap(row=flow_seq(items))).rstrip("\r\n")[len("row: ") :]


def _added_keys(text: str, lay: Layout, data: Any) -> str:
    """Top-level keys the surgery added to the tree (``attnsurgeon_plugins``), as the block path writes them."""
    added = [k for k in data if k not in lay.keys]
    if not added:
        return text
    dumped = {m.group(1): line for line in dump(data).splitlines() if (m := KEY_RE.match(line))}
    lines = text.splitlines(keepends=True)
    keys = list(data)
    for key in added:
        before = keys[: keys.index(key)]
        at = max((lay.keys[k] + 1 for k in before if k in lay.keys), default=0)
        at += sum(1 for k in added[: added.index(key)] if k in before)
        lines.insert(at, dumped[key] + newline(lay.lines))
    return "".join(lines)


SECTIONS = ("backbone", "head")


def _changed_keys(text: str, lay: Layout, data: Any, original: dict[str, Any]) -> str:
    """Top-level keys (not the sections) the surgery gave another value (``attnsurgeon_plugins`` named again relative to
    a new output's folder): their line rewritten as the block path writes it. The lines are the input's: ``_added_keys``
    only inserts lines after them, so a key's line is found again by its text."""
    changed = [
        k for k in data if k in lay.keys and k not in SECTIONS and model_doc.to_plain(data[k]) != original.get(k)
    ]
    if not changed:
        return text
    dumped = {m.group(1): line for line in dump(data).splitlines() if (m := KEY_RE.match(line))}
    lines = text.splitlines(keepends=True)
    for key in changed:
        at = next(i for i, line in enumerate(lines) if (m := KEY_RE.match(line)) and m.group(1) == key)
        end = at + 1
        while end < len(lines) and lines[end][:1] in (" ", "\t", "-") and lines[end].strip():
            end += 1  # a block value's lines (a list written "- a.py" below the key)
        lines[at:end] = [dumped[key] + newline(lay.lines)]
    return "".join(lines)


def _other_keys_read_as(text: str, plain: dict[str, Any], source: str) -> bool:
    """The top-level keys other than the sections read as ``plain``'s (a few lines: the sections left out)."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if KEY_RE.match(line)]
    keep: list[str] = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        key = KEY_RE.match(lines[start]).group(1)  # type: ignore[union-attr]
        if key not in SECTIONS:
            keep += lines[start:end]
    try:
        read = model_doc.to_plain(model_doc.loads("".join(keep), source)) if keep else {}
    except ModelFileError:
        return False
    return read == {k: v for k, v in plain.items() if k not in SECTIONS}


def _reads_as(text: str, plain: dict[str, Any], source: str, before: Layout | None = None) -> bool:
    """Whether ``text`` reads as ``plain``. Quick where the input's layout ``before`` is given: the rows found again
    one per layer, a comma after every flow row but a section's last, and each row read by ruamel on its own line
    (a few ms); otherwise, or where that is not so, the whole text read by ruamel (~15 ms on yolo11n, the same reader
    as every command's)."""
    if before is not None and _rows_read_as(text, plain, source) and _other_keys_read_as(text, plain, source):
        return True
    return bool(model_doc.to_plain(model_doc.loads(text, source)) == plain)


def _rows_read_as(text: str, plain: dict[str, Any], source: str) -> bool:
    try:
        after = layout(text, source, block=True)
    except ModelFileError:
        return False
    rows = [*plain["backbone"], *plain["head"]]
    if after is None or len(after.rows) != len(rows) or after.keys.keys() - set(plain):
        return False
    for j, row in enumerate(after.rows):
        last = j + 1 == len(after.rows) or after.section_of[j + 1] != after.section_of[j]
        if after.flow[after.section_of[j]] and not last and not row.between.lstrip().startswith(","):
            return False
    # every row, not only the rewritten lines: a row the line edit should have changed but left as it was reads as
    # its old self; each distinct row text is read once (rows such as nn.Upsample repeat)
    texts = list(dict.fromkeys(r.text for r in after.rows))
    try:
        read = model_doc.to_plain(model_doc.loads("\n".join(f"- {t}" for t in texts), source))
    except ModelFileError:
        return False  # a row that does not read on its own (an alias): the whole text is read instead
    if not isinstance(read, list) or len(read) != len(texts):
        return False
    value = dict(zip(texts, read, strict=True))
    return all(value[r.text] == row for r, row in zip(after.rows, rows, strict=True))


def adopted_text(doc: Any, new_graph: Any, shown: dict[int, int], data: Any) -> str:
    """``adopt``'s output: rows changed in place (no row moves), index comments that showed ``shown[i]`` renumbered
    to ``i``, every other line as it was; ruamel's dump of ``data`` where a block-style file cannot be edited so."""
    lay = lines_of(doc)
    if lay is None:
        return dump(data)
    old, new = doc.graph.rows, new_graph.rows
    changed = [i for i in range(len(old)) if (old[i].module, old[i].args) != (new[i].module, new[i].args)]
    identity = {i: i for i in range(len(old))}
    text = render(doc.text, lay, old, new, identity, {}, changed, _row_text, shown)
    if not _reads_as(text, model_doc.to_plain(data), str(doc.path)):
        return _fallback(doc, lay, data)
    return text


def adopted_with_keys(doc: Any, text: str, data: Any) -> str:
    """``adopt``'s output once keys were added to the tree after its rows were edited (``attnsurgeon_plugins``, which
    names files relative to the output's folder): ``text`` (:func:`adopted_text`'s) with the added keys' lines, every
    other line as it was."""
    try:
        lay = layout(text, str(doc.path), block=True)  # the text's own lines (ruamel's dump, where it wrote them)
    except ModelFileError:
        lay = None
    if lay is None:
        return dump(data)
    out = _added_keys(text, lay, data)  # adopt moves no row: the keys are on the lines the input has them
    if not _reads_as(out, model_doc.to_plain(data), str(doc.path)):
        return _fallback(doc, lay, data)
    return out


def _fallback(doc: Any, lay: Layout, data: Any, refusal: ModelFileError | None = None) -> str:
    """ruamel's dump of ``data`` for a block-style file the line edit cannot write; a flow-style one is refused
    (``refusal``, else adopt's)."""
    if not any(lay.flow.values()):
        return dump(data)
    raise refusal or _not_adoptable(doc)


def _not_adoptable(doc: Any) -> ModelFileError:
    return ModelFileError(
        f"{doc.path}: this flow-style file cannot be adopted line by line; nothing was written; write its rows "
        "in block style ('- [...]')"
    )


def architecture_text(cfg: dict[str, Any], header: str = "") -> str:
    """A model file with no input text, from an architecture dict (a checkpoint's): Ultralytics' layout, one
    flow-style row per layer with its index as a comment, ``header`` as the opening comment; ruamel's dump."""
    data = CommentedMap()
    index = 0
    for key, value in cfg.items():
        if key in ("yaml_file", "scale"):  # Ultralytics derives both from the file name
            continue
        if key in ("backbone", "head"):
            seq = CommentedSeq()
            for position, row in enumerate(value):
                seq.append(flow_seq(row))
                seq.yaml_add_eol_comment(f"# {index}", position, column=0)
                index += 1
            data[key] = seq
        elif key == "scales" and isinstance(value, dict):
            data[key] = CommentedMap((k, flow_seq(v)) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            data[key] = flow_seq(value)
        else:
            data[key] = value
    if header:
        data.yaml_set_start_comment(header)
    return dump(data)
