"""Rows and their comments in the round-trip tree, edited in place, and the packaged models as layer graphs.

``adopt`` rewrites rows (module and args) and index comments; the diagnosis reads index comments and compares a
file with the models that ship with Ultralytics. No torch, no printing.
"""

from __future__ import annotations

import functools
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from attnsurgeon.core.graph import Graph
from attnsurgeon.core.yamlfile import comments, tree_edits
from attnsurgeon.core.yamlfile.model_doc import _section_slots, packaged_models_dir
from attnsurgeon.errors import SurgeryError


def row_slot(data: CommentedMap, index: int) -> tuple[CommentedSeq, int]:
    """The section list holding layer ``index`` and its position there."""
    section, pos = _section_slots(data)[index]
    return data[section], pos


def set_row(data: CommentedMap, index: int, module: str, args: list[Any]) -> None:
    """Change a row's module and args in place; its ``from``, repeats, flow style, comment and the gap before the
    comment stay."""
    tree_edits.replace_row(*row_slot(data, index), module, args)


def set_from(data: CommentedMap, index: int, from_: int | list[int]) -> None:
    """Change a row's ``from`` in place (flow style and the gap before its comment kept)."""
    tree_edits.set_from(*row_slot(data, index), from_)


def index_comments(data: CommentedMap) -> dict[int, int]:
    """Layer -> the index its trailing comment names (:func:`comments.index_of`: ``# 16 (P3/8-small)`` -> 16; not
    ``# 2 heads``)."""
    out = {}
    for index in range(len(_section_slots(data))):
        token = tree_edits.comment_token(*row_slot(data, index))
        written = comments.index_of(token.value.partition("\n")[0]) if token is not None else None
        if written is not None:
            out[index] = written
    return out


def renumber_index_comment(data: CommentedMap, index: int, old: int) -> None:
    """Make layer ``index``'s trailing comment start with ``index`` instead of ``old``."""
    tree_edits.renumber_comment(tree_edits.comment_token(*row_slot(data, index)), old, index)


@functools.lru_cache(maxsize=1)
def packaged_graphs() -> tuple[tuple[str, Graph], ...]:
    """(file name, layer graph) of every model YAML that ships with Ultralytics (read once per process)."""
    import yaml  # PyYAML (an Ultralytics dependency): its C loader reads the ~70 files 15x faster than ruamel

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    folder = packaged_models_dir()
    out = []
    for path in sorted(folder.rglob("*.yaml")) if folder is not None else ():
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        try:
            out.append((path.name, Graph.from_sections(data["backbone"], data["head"])))
        except (KeyError, TypeError, SurgeryError):
            continue  # not a model layout this tool reads
    return tuple(out)
