"""``augment`` on the layer graph: the row of a block becomes an ``Augment`` row, nothing else changes. Pure: no torch,
no I/O, no printing.

``[from, n, C3k2, [256, False, 0.25]]`` becomes ``[from, n, Augment, [C3k2, [256, False, 0.25], EMA, [8], where]]``;
:mod:`attnsurgeon.ultralytics_bridge.augment_blocks` builds it in Ultralytics as Ultralytics' own block with attention
inside.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Literal

from attnsurgeon.core.graph import Graph, Row, SurgeryResult
from attnsurgeon.errors import SurgeryError

AUGMENT_MODULE = "Augment"  # the row: [from, n, Augment, [Block, [block args], Attention, [attention args], where]]
# Blocks whose residual units or final convolution can take attention (attnsurgeon.ultralytics_bridge.augment_blocks
# knows how).
AUGMENTABLE_BLOCKS = ("C2f", "C3k2", "C3", "C3k", "C3x", "C2fCIB", "C2fPSA", "C2PSA", "A2C2f")
AUGMENT_WHERE = ("bottleneck", "output")
Where = Literal["bottleneck", "output"]
# The block's last convolution, whose output is the block's output (``--where output`` attends to it; a fork's
# forward applying its attention to it is read as that placement).
OUTPUT_CONV: dict[str, str] = {
    "C2f": "cv2",
    "C3k2": "cv2",
    "C2fCIB": "cv2",
    "C2fPSA": "cv2",
    "C2PSA": "cv2",
    "A2C2f": "cv2",
    "C3": "cv3",
    "C3k": "cv3",
    "C3x": "cv3",
}


def augmented_block(row: Row) -> str | None:
    """The Ultralytics block an ``Augment`` row builds (``C3k2``), or None for any other row."""
    if row.module == AUGMENT_MODULE and row.args and isinstance(row.args[0], str):
        return str(row.args[0])
    return None


def augment_info(row: Row) -> dict[str, Any] | None:
    """What an ``Augment`` row says (block, its args, the attention, its args, where), or None for any other row.
    An ``IdentityInit`` wrapper is looked through: ``[IdentityInit, [EMA, [8]]]`` is EMA [8] with identity_init."""
    block = augmented_block(row)
    if block is None or len(row.args) != 5:
        return None
    _, block_args, module, args, where = row.args
    inner = module == "IdentityInit" and len(args) == 2
    return {
        "block": block,
        "block_args": list(block_args),
        "module": args[0] if inner else module,
        "args": list(args[1] if inner else args),
        "identity_init": inner,
        "where": where,
    }


def check_augment_target(graph: Graph, at: int) -> None:
    """Raise SurgeryError unless the block at row ``at`` can take attention inside."""
    last = len(graph) - 1
    if isinstance(at, bool) or not isinstance(at, int):
        raise SurgeryError(f"--at must be a layer index, got {at!r}")
    if not 0 <= at <= last:
        raise SurgeryError(f"--at {at} is outside the model, which has layers 0 to {last}")
    row = graph.rows[at]
    blocks = ", ".join(AUGMENTABLE_BLOCKS)
    inner = augmented_block(row)
    if inner is not None:
        raise SurgeryError(
            f"--at {at} is already augmented ({inner} with {row.args[2] if len(row.args) > 2 else '?'}); "
            "augment the original model instead"
        )
    if row.module not in AUGMENTABLE_BLOCKS:
        candidates = [str(j) for j, r in enumerate(graph.rows) if r.module in AUGMENTABLE_BLOCKS]
        here = f"; in this model: layers {', '.join(candidates)}" if candidates else "; this model has none"
        raise SurgeryError(f"--at {at} is {row.module}, which cannot be augmented; blocks that can: {blocks}{here}")


def augment(
    graph: Graph,
    at: int | Iterable[int],
    module: str,
    args: Sequence[Any] = (),
    where: Where = "bottleneck",
) -> SurgeryResult:
    """Give the block at each index in ``at`` attention inside: its row becomes
    ``[from, n, Augment, [Block, [block args], module, [args], where]]``. No row moves, no reference changes."""
    targets = [at] if isinstance(at, int) else list(at)
    if not targets:
        raise SurgeryError("no --at index given")
    if where not in AUGMENT_WHERE:
        raise SurgeryError(f"--where must be one of {', '.join(AUGMENT_WHERE)}, got {where!r}")
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise SurgeryError(f"--at {dupes[0]} is given twice; give each index once")
    for t in targets:
        check_augment_target(graph, t)
    rows = list(graph.rows)
    for t in targets:
        row = rows[t]
        rows[t] = replace(row, module=AUGMENT_MODULE, args=(row.module, list(row.args), module, list(args), where))
    return SurgeryResult(Graph(tuple(rows)), {i: i for i in range(len(graph))}, (), augmented=tuple(sorted(targets)))
