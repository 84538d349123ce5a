"""The layer graph of an Ultralytics model and the surgery on it. Pure: no torch, no I/O, no printing.

Layers are numbered 0..N-1 over ``backbone + head``. A ``from`` is an int or a list of ints: ``-1`` is the previous
layer, another negative number is relative to the row (``i + f``), a non-negative number is absolute. Row 0's ``-1``
is the input image (:data:`INPUT`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from attnsurgeon.errors import SurgeryError

INPUT = -1  # absolute target of row 0's ``-1``: the input image
From = int | list[int]
Rewire = Literal["all", "next"]

# Modules whose output is not a single feature map another layer could attend over: heads (their output is
# predictions), CBLinear (a tuple of tensors for CBFuse), Index (picks from a list, used after multi-output layers),
# ImagePoolingAttn (text embeddings).
NON_FEATURE_MAP_MODULES = frozenset(
    {
        "Detect",
        "Segment",
        "Segment26",
        "Pose",
        "Pose26",
        "OBB",
        "OBB26",
        "Classify",
        "v10Detect",
        "WorldDetect",
        "YOLOEDetect",
        "YOLOESegment",
        "YOLOESegment26",
        "RTDETRDecoder",
        "Depth",
        "SemanticSegment",
        "LRPCHead",
        "CBLinear",
        "Index",
        "ImagePoolingAttn",
    }
)
# Modules whose output has their single input's shape whatever their args (Ultralytics infers their channels from the
# input, and none of them resizes): a layer of these can be removed, or replaced by an attention layer. The graph knows
# no catalog: ``REGISTRY.shape_keeping_modules()`` (catalog/registry.py) is this set plus the catalog's names, and every
# command passes it.
SHAPE_KEEPING_MODULES = frozenset(
    {
        "IdentityInit",
        "AIFI",
        "nn.Identity",
        "nn.BatchNorm2d",
        "nn.Dropout",
        "nn.Dropout2d",
        "nn.ReLU",
        "nn.SiLU",
        "nn.GELU",
        "nn.Hardswish",
        "nn.Sigmoid",
    }
)


@dataclass(frozen=True)
class Row:
    """One layer as the YAML writes it: ``[from, repeats, module, args]``, plus the section it sits in."""

    from_: From
    repeats: int
    module: str
    args: tuple[Any, ...]
    section: str  # "backbone" or "head"

    def refs(self) -> list[int]:
        return [self.from_] if isinstance(self.from_, int) else list(self.from_)


def resolve(index: int, ref: int) -> int:
    """Absolute target of a reference written in row ``index`` (``INPUT`` for row 0's ``-1``)."""
    return index + ref if ref < 0 else ref


@dataclass(frozen=True)
class Graph:
    rows: tuple[Row, ...]

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def from_sections(cls, backbone: Sequence[Sequence[Any]], head: Sequence[Sequence[Any]]) -> Graph:
        rows = []
        for section, items in (("backbone", backbone), ("head", head)):
            for j, item in enumerate(items):
                rows.append(_row_from_list(item, section, len(rows), j))
        return cls(tuple(rows))

    def absolute(self, index: int) -> list[int]:
        """The absolute indices row ``index`` reads (``INPUT`` for the image)."""
        return [resolve(index, r) for r in self.rows[index].refs()]

    def consumers(self, index: int) -> list[int]:
        """Rows that read the output of row ``index``."""
        return [j for j in range(index + 1, len(self.rows)) if index in self.absolute(j)]

    def outputs(self) -> list[int]:
        """Inputs of the last layer (the head), i.e. the feature maps the model predicts from."""
        return [t for t in self.absolute(len(self.rows) - 1) if t != INPUT]

    def reaches(self, source: int, target: int) -> bool:
        """Whether the output of ``source`` flows into ``target`` along references."""
        frontier, seen = [target], set()
        while frontier:
            node = frontier.pop()
            if node == source:
                return True
            if node in seen or node < 0:
                continue
            seen.add(node)
            frontier.extend(t for t in self.absolute(node) if t >= source)
        return False

    def validate(self) -> None:
        """Every reference points at an earlier row (or the input for row 0)."""
        for i, _row in enumerate(self.rows):
            for t in self.absolute(i):
                if not (t < i and (t >= 0 or (t == INPUT and i == 0))):
                    raise SurgeryError(
                        f"layer {i} reads layer {t}, which is not an earlier layer (from {self.rows[i].from_!r})"
                    )


def _row_from_list(item: Sequence[Any], section: str, index: int, position: int) -> Row:
    where = f"{section} row {position} (layer {index})"
    if not isinstance(item, (list, tuple)) or len(item) != 4:
        raise SurgeryError(f"{where} must be [from, repeats, module, args], got {item!r}")
    from_, repeats, module, args = item
    if isinstance(from_, bool) or not (
        isinstance(from_, int)
        or (
            isinstance(from_, (list, tuple))
            and from_
            and all(isinstance(x, int) and not isinstance(x, bool) for x in from_)
        )
    ):
        raise SurgeryError(f"{where}: 'from' must be an int or a list of ints, got {from_!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise SurgeryError(f"{where}: repeats must be a positive int, got {repeats!r}")
    if not isinstance(module, str) or not module:
        raise SurgeryError(f"{where}: module must be a name, got {module!r}")
    if not isinstance(args, (list, tuple)):
        raise SurgeryError(f"{where}: args must be a list, got {args!r}")
    return Row(from_ if isinstance(from_, int) else list(from_), repeats, module, tuple(args), section)


@dataclass(frozen=True)
class Insertion:
    """What one ``insert`` did: where the new layer is and how old indices moved."""

    after: int  # index in the input graph
    index: int  # index of the new layer in the output graph
    module: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class SurgeryResult:
    """A new graph and how it relates to the old one; shared by every surgery (insert, remove, replace, ...)."""

    graph: Graph
    index_map: dict[int, int]  # old row index -> new row index (a removed row has no entry)
    insertions: tuple[Insertion, ...]
    changed: tuple[tuple[int, From, From], ...] = field(default=())  # (new index, old from, new from)
    removed: tuple[int, ...] = ()  # old indices of removed rows
    replaced: tuple[int, ...] = ()  # new indices of rows whose module or args changed in place
    augmented: tuple[int, ...] = ()  # new indices of blocks given attention inside: their own tensors stay

    @property
    def fresh_layers(self) -> list[int]:
        """New indices of layers whose weights cannot come from the old model (inserted or replaced)."""
        return sorted({i.index for i in self.insertions} | set(self.replaced))

    @property
    def learning_layers(self) -> list[int]:
        """New indices of layers whose every parameter must learn: the fresh ones and the augmented blocks."""
        return sorted({*self.fresh_layers, *self.augmented})


def check_target(graph: Graph, after: int) -> None:
    """Raise SurgeryError unless an attention layer can be inserted after row ``after``."""
    last = len(graph) - 1
    if isinstance(after, bool) or not isinstance(after, int):
        raise SurgeryError(f"--after must be a layer index, got {after!r}")
    if after < 0:
        raise SurgeryError(f"--after {after} is negative; use a layer index from 0 to {last - 1}")
    if after > last:
        raise SurgeryError(f"--after {after} is outside the model, which has layers 0 to {last}; use 0 to {last - 1}")
    row = graph.rows[after]
    if after == last:
        raise SurgeryError(
            f"--after {after} is the head ({row.module}), the last layer; attention goes after a feature map, "
            f"0 to {last - 1}"
        )
    if row.module in NON_FEATURE_MAP_MODULES or (row.module == "TorchVision" and len(row.args) > 5 and row.args[5]):
        raise SurgeryError(
            f"--after {after} is {row.module}, whose output is not a single feature map; pick a layer that "
            f"outputs one (e.g. {_nearest_feature_map(graph, after)})"
        )
    if row.module == "nn.Flatten" or row.module.startswith("nn.Linear"):
        raise SurgeryError(f"--after {after} is {row.module}, whose output is not a feature map")


def _nearest_feature_map(graph: Graph, index: int) -> str:
    for j in sorted(range(len(graph) - 1), key=lambda j: abs(j - index)):
        if graph.rows[j].module not in NON_FEATURE_MAP_MODULES:
            return f"layer {j}, {graph.rows[j].module}"
    return "none found"


def insert(
    graph: Graph,
    after: int | Iterable[int],
    module: str,
    args: Sequence[Any] = (),
    rewire: Rewire = "all",
) -> SurgeryResult:
    """Splice a new layer ``[-1, 1, module, args]`` after each index in ``after`` (indices of ``graph``).

    With ``rewire="all"`` every later reference to the target now reads the new layer; with ``"next"`` only the
    sequential successor's ``-1`` does. Several indices give the same result as inserting one by one from the
    highest down.
    """
    targets = _targets(after, "--after")
    if rewire not in ("all", "next"):
        raise SurgeryError(f"--rewire must be 'all' or 'next', got {rewire!r}")
    for t in targets:
        check_target(graph, t)

    current = graph
    index_map = {i: i for i in range(len(graph))}
    for t in sorted(targets, reverse=True):
        current, step = _insert_one(current, t, module, tuple(args), rewire)
        index_map = {old: step[new] for old, new in index_map.items()}
    insertions = tuple(
        Insertion(after=t, index=index_map[t] + 1, module=module, args=tuple(args)) for t in sorted(targets)
    )
    current.validate()
    return SurgeryResult(current, index_map, insertions, _changed(graph, current, index_map))


def _insert_one(
    graph: Graph, k: int, module: str, args: tuple[Any, ...], rewire: Rewire
) -> tuple[Graph, dict[int, int]]:
    moved = {j: (j if j <= k else j + 1) for j in range(len(graph))}
    out: list[Row] = list(graph.rows[: k + 1])
    out.append(Row(-1, 1, module, args, graph.rows[k].section))
    for j in range(k + 1, len(graph)):
        row = graph.rows[j]

        def new_target(target: int, ref: int, j: int = j) -> int:
            if target == k and (rewire == "all" or (j == k + 1 and ref == -1)):
                return k + 1  # the attention output replaces layer k for this reader
            return target if target == INPUT else moved[target]

        out.append(_rewrite_refs(row, j, moved[j], new_target))
    return Graph(tuple(out)), moved


def check_shape_keeping(graph: Graph, at: int, option: str, shape_keeping: Collection[str] = ()) -> None:
    """Raise SurgeryError unless row ``at`` reads one earlier layer and outputs that layer's shape."""
    last = len(graph) - 1
    if isinstance(at, bool) or not isinstance(at, int):
        raise SurgeryError(f"{option} must be a layer index, got {at!r}")
    if not 0 <= at <= last:
        raise SurgeryError(f"{option} {at} is outside the model, which has layers 0 to {last}")
    row = graph.rows[at]
    if at == last:
        raise SurgeryError(
            f"{option} {at} is the head ({row.module}), the last layer; it cannot be taken out or replaced"
        )
    if len(row.refs()) != 1:
        raise SurgeryError(
            f"{option} {at} is {row.module}, which reads {len(row.refs())} layers ({row.from_!r}); only a layer "
            "with a single input can be taken out or replaced"
        )
    if graph.absolute(at)[0] == INPUT:
        raise SurgeryError(f"{option} {at} is {row.module}, which reads the input image; no layer could take its place")
    if row.module not in SHAPE_KEEPING_MODULES and row.module not in shape_keeping:
        raise SurgeryError(
            f"{option} {at} is {row.module}, which may change channels or stride; only a layer that keeps its "
            "input's shape (an attention module, IdentityInit, nn.Identity) can be taken out or replaced"
        )


def _targets(at: int | Iterable[int], option: str) -> list[int]:
    targets = [at] if isinstance(at, int) else list(at)
    if not targets:
        raise SurgeryError(f"no {option} index given")
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise SurgeryError(f"{option} {dupes[0]} is given twice; give each index once")
    return targets


def remove(graph: Graph, at: int | Iterable[int], shape_keeping: Collection[str] = ()) -> SurgeryResult:
    """Take out each row in ``at`` (indices of ``graph``): every reader of a removed row reads its input instead.

    The exact inverse of :func:`insert`: inserting after k then removing k+1 gives ``graph`` back. ``shape_keeping``
    names modules besides :data:`SHAPE_KEEPING_MODULES` whose output has their input's shape (the catalog's).
    """
    targets = _targets(at, "--at")
    for t in targets:
        check_shape_keeping(graph, t, "--at", shape_keeping)
    current = graph
    index_map = {i: i for i in range(len(graph))}
    for t in sorted(targets, reverse=True):
        current, step = _remove_one(current, t)
        index_map = {old: step[new] for old, new in index_map.items() if new in step}
    current.validate()
    return SurgeryResult(current, index_map, (), _changed(graph, current, index_map), removed=tuple(sorted(targets)))


def replace(
    graph: Graph, at: int | Iterable[int], module: str, args: Sequence[Any] = (), shape_keeping: Collection[str] = ()
) -> SurgeryResult:
    """Swap the module and args of each shape-keeping row in ``at``; no reference moves."""
    targets = _targets(at, "--at")
    for t in targets:
        check_shape_keeping(graph, t, "--at", shape_keeping)
    rows = list(graph.rows)
    for t in targets:
        rows[t] = dataclasses.replace(rows[t], module=module, args=tuple(args))
    return SurgeryResult(Graph(tuple(rows)), {i: i for i in range(len(graph))}, (), replaced=tuple(sorted(targets)))


def _changed(old: Graph, new: Graph, index_map: dict[int, int]) -> tuple[tuple[int, From, From], ...]:
    return tuple(
        (n, old.rows[o].from_, new.rows[n].from_)
        for o, n in sorted(index_map.items())
        if new.rows[n].from_ != old.rows[o].from_
    )


def _rewrite_refs(row: Row, j: int, j_new: int, new_target: Callable[[int, int], int]) -> Row:
    """Row ``j`` moved to ``j_new``, each reference's target mapped by ``new_target(target, ref)``; relative stays
    relative, absolute stays absolute."""
    refs = []
    for ref in row.refs():
        t = new_target(resolve(j, ref), ref)
        refs.append(t - j_new if ref < 0 else t)
    return dataclasses.replace(row, from_=refs[0] if isinstance(row.from_, int) else refs)


def _remove_one(graph: Graph, k: int) -> tuple[Graph, dict[int, int]]:
    source = graph.absolute(k)[0]
    moved = {j: (j if j < k else j - 1) for j in range(len(graph)) if j != k}

    def new_target(t: int, ref: int) -> int:
        return moved[source if t == k else t] if t != INPUT else t

    out = [row if j < k else _rewrite_refs(row, j, moved[j], new_target) for j, row in enumerate(graph.rows) if j != k]
    return Graph(tuple(out)), moved
