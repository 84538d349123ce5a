"""Which layers of a model are new: torch-free, shared by ``show --plot`` (what to highlight) and ``cam`` (which
layers to look at, and where the base model has the same place).

Two ways to tell. On one model alone (:func:`attention_rows`): the rows that build an attention module (a catalog
or plugin module, an ``IdentityInit`` wrapper, an ``Augment`` block). Between a base and a variant
(:func:`new_rows`): the variant's rows that the base does not have, found by aligning the two row lists on
(module, args, repeats), so a row ``insert`` added, one ``replace`` changed and one ``augment`` turned into an
``Augment`` block are new, while rows that only moved (their ``from`` renumbered) are not.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from attnsurgeon.core.augment_graph import AUGMENT_MODULE, augment_info
from attnsurgeon.core.graph import Graph, Row

WRAPPERS = frozenset({"IdentityInit"})


def label(row: Row) -> str:
    """The module as a figure names it: ``C3k2+EMA`` for an Augment block, ``SE`` for ``IdentityInit [SE, ...]``."""
    info = augment_info(row)
    if info:
        return f"{info['block']}+{info['module']}"
    if row.module in WRAPPERS and row.args and isinstance(row.args[0], str):
        return str(row.args[0])
    return row.module


def attention_rows(graph: Graph, extra: Iterable[int] = ()) -> list[int]:
    """Rows that build attention (catalog/plugin module, IdentityInit, Augment), plus the indices in ``extra``."""
    from attnsurgeon.catalog import REGISTRY

    found = {
        i
        for i, row in enumerate(graph.rows)
        if row.module in WRAPPERS or row.module == AUGMENT_MODULE or REGISTRY.find(row.module) is not None
    }
    return sorted(found | set(extra))


def _signature(row: Row) -> tuple[str, str, int]:
    return (row.module, repr(row.args), row.repeats)


def correspondence(base: Graph, variant: Graph) -> tuple[list[int], dict[int, int]]:
    """(new rows of ``variant``, variant index -> the base index at the same place, for every variant row).

    A new row's place in the base is the row it replaced (``replace``/``augment``) or, for an inserted row, the
    base row it was inserted after (its input in a splice)."""
    matcher = difflib.SequenceMatcher(None, [_signature(r) for r in base.rows], [_signature(r) for r in variant.rows],
                                      autojunk=False)  # fmt: skip
    new: list[int] = []
    place: dict[int, int] = {}
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for offset, j in enumerate(range(j1, j2)):
            if tag == "equal":
                place[j] = i1 + offset
                continue
            new.append(j)
            if tag == "replace" and i1 + offset < i2:
                place[j] = i1 + offset
            else:
                place[j] = max(i1 - 1, 0) if tag != "replace" else i2 - 1
    return new, place


def new_rows(base: Graph, variant: Graph) -> list[int]:
    """The variant's rows the base does not have (inserted, replaced, augmented)."""
    return correspondence(base, variant)[0]
