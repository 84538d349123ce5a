"""The layer graph of an Ultralytics model and the surgery on it. Pure: no torch, no I/O, no printing.

Layers are numbered 0..N-1 over ``backbone + head``. A ``from`` is an int or a list of ints: ``-1`` is the previous
layer, another negative number is relative to the row (``i + f``), a non-negative number is absolute. Row 0's ``-1``
is the input image (:data:`INPUT`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
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

    @property
    def fresh_layers(self) -> list[int]:
        """New indices of layers whose weights cannot come from the old model (inserted or replaced)."""
        return sorted({i.index for i in self.insertions} | set(self.replaced))


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
    targets = [after] if isinstance(after, int) else list(after)
    if not targets:
        raise SurgeryError("no --after index given")
    if rewire not in ("all", "next"):
        raise SurgeryError(f"--rewire must be 'all' or 'next', got {rewire!r}")
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise SurgeryError(f"--after {dupes[0]} is given twice; give each index once")
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
    changed = tuple(
        (new, graph.rows[old].from_, current.rows[new].from_)
        for old, new in sorted(index_map.items())
        if current.rows[new].from_ != graph.rows[old].from_
    )
    current.validate()
    return SurgeryResult(current, index_map, insertions, changed)


def _insert_one(
    graph: Graph, k: int, module: str, args: tuple[Any, ...], rewire: Rewire
) -> tuple[Graph, dict[int, int]]:
    new_index = k + 1
    moved = {j: (j if j <= k else j + 1) for j in range(len(graph))}

    def new_target(consumer: int, ref: int) -> int:
        target = resolve(consumer, ref)
        if target == k and consumer > k and (rewire == "all" or (consumer == k + 1 and ref == -1)):
            return new_index
        return target if target == INPUT else moved[target]

    rows = list(graph.rows)
    out: list[Row] = []
    for j, row in enumerate(rows):
        if j <= k:
            out.append(row)
        else:
            j_new = moved[j]
            refs = []
            for ref in row.refs():
                t = new_target(j, ref)
                refs.append(t - j_new if ref < 0 else t)  # relative stays relative, absolute stays absolute
            from_: From = refs[0] if isinstance(row.from_, int) else refs
            out.append(replace(row, from_=from_))
        if j == k:
            out.append(Row(-1, 1, module, args, row.section))
    return Graph(tuple(out)), moved
