"""Diagnosis of a model YAML: what a hand-edited or forked file gets wrong. Pure: no torch, no I/O, no printing.

- ``args``: a catalog row whose args cannot be what the module means at that place (a channel count where a
  hyper-parameter is expected, a reduction not below the input channels, an even kernel, too many args, a short
  row the forks read differently). These block every command: the model would build as a different module.
- ``dead``: a layer whose output never reaches the head.
- ``stale``: a reference whose target changed meaning compared with the packaged model the file derives from.
- ``comment``: an index comment (``# 16 ...``) that no longer matches its row.
- ``scale-name``: a scale the file asks for that Ultralytics will override from the file name.

Every finding says what to do.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from attnsurgeon.catalog import REGISTRY, ModuleSpec
from attnsurgeon.catalog.argcheck import CHANNEL_CAUSE, Problem, describe_limits, format_flow
from attnsurgeon.catalog.registry import IDENTITY_INIT
from attnsurgeon.core.augment_graph import AUGMENT_MODULE
from attnsurgeon.core.channels import BASE_MODULES, layer_channels, scale_factors
from attnsurgeon.core.graph import INPUT, Graph, Row
from attnsurgeon.core.scales import scale_names
from attnsurgeon.core.yamlfile.model_doc import guess_scale

FORK_CAUSE = "written in a forked Ultralytics' argument order"


@dataclass(frozen=True)
class Finding:
    kind: str  # args | dead | stale | comment | scale-name
    layer: int | None
    message: str  # one line: what is wrong and what to do
    blocking: bool = False  # the file needs `attnsurgeon adopt` before anything builds it

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layer": self.layer, "message": self.message, "blocking": self.blocking}


def row_text(row: Row) -> str:
    """A row as a YAML file writes it: ``[-1, 1, CBAM, [16, 7]]``."""
    return f"[{format_flow([row.from_])[1:-1]}, {row.repeats}, {row.module}, {format_flow(row.args)}]"


def catalog_row(row: Row) -> tuple[ModuleSpec, list[Any]] | None:
    """The catalog entry and hyper-parameters a row builds (inside an IdentityInit or Augment row too), or None."""
    at = 0 if row.module == IDENTITY_INIT else 2 if row.module == AUGMENT_MODULE else None
    if at is not None:
        name = row.args[at] if len(row.args) > at else None
        inner = row.args[at + 1] if len(row.args) > at + 1 and isinstance(row.args[at + 1], (list, tuple)) else []
        spec = REGISTRY.find(name) if isinstance(name, str) else None
        return (spec, list(inner)) if spec is not None else None
    spec = REGISTRY.find(row.module)
    return (spec, list(row.args)) if spec is not None else None


def input_channels(graph: Graph, index: int, views: Sequence[Sequence[int | None]]) -> list[int]:
    """The channel counts of row ``index``'s single input in each view (as written, at a scale...), deduplicated."""
    refs = graph.absolute(index)
    if len(refs) != 1 or refs[0] == INPUT:
        return []
    return list(dict.fromkeys(c for view in views if (c := view[refs[0]]) is not None))


def arg_problems(
    graph: Graph, written: Sequence[int | None], scaled: Sequence[int | None]
) -> list[tuple[int, Problem]]:
    """(layer, problem) for every catalog row whose args cannot be what its module means there."""
    out = []
    for i, row in enumerate(graph.rows):
        found = catalog_row(row)
        if found is None:
            continue
        spec, values = found
        refs = graph.absolute(i)
        if row.module == AUGMENT_MODULE:  # the attention sits inside the block, on channels the YAML does not show
            out.extend((i, p) for p in spec.problems_at(values, None))
            continue
        c1 = scaled[refs[0]] if len(refs) == 1 and refs[0] != INPUT else None
        out.extend((i, p) for p in spec.problems_at(values, c1, input_channels(graph, i, (written, scaled))))
    return out


def args_findings(
    graph: Graph, written: Sequence[int | None], scaled: Sequence[int | None], scale: str, fix: str
) -> list[Finding]:
    out = []
    for i, problem in arg_problems(graph, written, scaled):
        spec, _ = catalog_row(graph.rows[i])  # type: ignore[misc]
        if problem.channel_like or problem.fork_order:
            advice = f"likely cause: {CHANNEL_CAUSE if problem.channel_like else FORK_CAUSE}; fix: {fix}"
        else:
            ranges = "; ".join(f"{a.name}: {describe_limits(a)}" for a in spec.args if a.limits)
            advice = f"fix: give a value the module takes ({ranges or 'see attnsurgeon info ' + spec.name})"
        refs = graph.absolute(i)
        known = len(refs) == 1 and refs[0] != INPUT and scaled[refs[0]] is not None
        at = f" at scale {scale}" if scale else ""
        place = f"input channels {scaled[refs[0]]}{at}, {written[refs[0]]} as written; " if known else ""
        out.append(
            Finding(
                "args",
                i,
                f"layer {i} {row_text(graph.rows[i])}: {problem.text} ({place}signature {spec.signature()}); {advice}",
                blocking=True,
            )
        )
    return out


# Layers whose output reaches the head outside the 'from' graph: WorldModel feeds ImagePoolingAttn's output to
# WorldDetect as text features.
SIDE_OUTPUT_MODULES = frozenset({"ImagePoolingAttn"})


def dead_layers(graph: Graph) -> list[Finding]:
    last = len(graph) - 1
    out = []
    for i in range(last):
        if graph.rows[i].module not in SIDE_OUTPUT_MODULES and not graph.reaches(i, last):
            readers = graph.consumers(i)
            what = "nothing reads it" if not readers else f"only layers {readers} read it, and they are dead too"
            out.append(
                Finding(
                    "dead",
                    i,
                    f"layer {i} ({graph.rows[i].module}) never reaches the head ({graph.rows[last].module}): "
                    f"{what}; make the next layer read it (a renumbering probably skipped it) or remove it",
                )
            )
    return out


# --------------------------------------------------------------------------------------------------------------------
# Stale renumbering: compare with the packaged model the file derives from


def _spliced(row: Row) -> bool:
    """Whether a row looks spliced into a packaged model (an attention layer): it reads only the previous layer and
    keeps the channels; a row that fuses, resizes or widens is another architecture (yolov8-p2 is not yolov8)."""
    return row.from_ == -1 and row.module not in BASE_MODULES and row.module not in ("Concat", "nn.Upsample")


def derivation(graph: Graph, references: Sequence[tuple[str, Graph]]) -> tuple[str, Graph, dict[int, int]] | None:
    """The packaged model whose rows appear in order in ``graph`` with only spliced rows added (the fewest), and
    its old -> new index map. None when the file is a packaged model or derives from none."""
    names = [r.module for r in graph.rows]
    if any(ref == graph for _, ref in references):
        return None
    best: tuple[int, str, Graph, dict[int, int]] | None = None
    for name, ref in references:
        extra = len(graph) - len(ref)
        if extra <= 0 or ref.rows[-1].module != graph.rows[-1].module or (best and extra >= best[0]):
            continue
        matcher = difflib.SequenceMatcher(None, [r.module for r in ref.rows], names, autojunk=False)
        blocks = matcher.get_matching_blocks()
        if sum(b.size for b in blocks) != len(ref):
            continue
        mapping = {b.a + k: b.b + k for b in blocks for k in range(b.size)}
        added = set(range(len(graph))) - set(mapping.values())
        if all(_spliced(graph.rows[i]) for i in added):
            best = (extra, name, ref, mapping)
    return None if best is None else best[1:]  # type: ignore[return-value]


@dataclass(frozen=True)
class StaleRef:
    """A reference that reads another layer than the packaged model the file derives from reads there."""

    layer: int
    slot: int  # position in the row's ``from`` list (0 for a single int)
    target: int  # the layer it reads
    model: str  # the packaged model's file name
    packaged: int  # the layer that input is in the packaged model
    meant: int  # that layer's index here
    after: int  # the last row added right after ``meant`` (``meant`` when none): where insert's default rewire reads


def stale_refs(graph: Graph, found: tuple[str, Graph, dict[int, int]] | None) -> list[StaleRef]:
    """The stale references of ``graph`` given its :func:`derivation` (None: it derives from no packaged model)."""
    if found is None:
        return []
    name, ref, mapping = found
    added = set(range(len(graph))) - set(mapping.values())
    out = []
    for old, new in sorted(mapping.items()):
        pairs = zip(ref.absolute(old), graph.absolute(new), strict=False)
        for slot, (ref_target, target) in enumerate(pairs):
            if ref_target == INPUT:
                continue
            allowed = [mapping[ref_target]]
            while allowed[-1] + 1 in added and allowed[-1] + 1 < new:  # rows added right after it (attention)
                allowed.append(allowed[-1] + 1)
            if target not in allowed:
                out.append(StaleRef(new, slot, target, name, ref_target, allowed[0], allowed[-1]))
    return out


def stale_references(graph: Graph, references: Sequence[tuple[str, Graph]]) -> list[Finding]:
    out = []
    for s in stale_refs(graph, derivation(graph, references)):
        also = f" (or {s.after}, the {graph.rows[s.after].module} added after it)" if s.after != s.meant else ""
        reads = f"layer {s.layer} ({graph.rows[s.layer].module}) reads layer {s.target} ({graph.rows[s.target].module})"
        out.append(
            Finding(
                "stale",
                s.layer,
                f"{reads}, but in {s.model} this input is layer {s.packaged} ({graph.rows[s.meant].module}), which "
                f"is layer {s.meant} here: a renumbering after an added row missed it; write {s.meant}{also}",
            )
        )
    return out


def comment_findings(graph: Graph, comments: dict[int, int]) -> list[Finding]:
    out = []
    for index, written in sorted(comments.items()):
        if written != index and written < len(graph) + 8:  # a plausible layer index, not "# 1024 channels"
            out.append(
                Finding(
                    "comment",
                    index,
                    f"layer {index} ({graph.rows[index].module}) has the index comment '# {written}'; renumber it to "
                    f"{index}",
                )
            )
    return out


_SCALE_TOKEN = re.compile(r"(?:^|[-_.])([nslmx])(?:$|[-_.])")


def scale_name_findings(stem: str, name_scale: str, scales: Sequence[str], written_scale: Any) -> list[Finding]:
    """A scale the file asks for (a ``scale:`` key, a lone letter in the name) that Ultralytics overrides."""
    builds_at = name_scale or (scales[0] if scales else "")
    out = []
    if written_scale is not None and str(written_scale) != builds_at and scales:
        out.append(
            Finding(
                "scale-name",
                None,
                f"the file says 'scale: {written_scale}', but Ultralytics reads the scale from the file name and "
                f"builds {stem} at scale {builds_at!r}; put the letter after the version in the name "
                f"(e.g. yolov8{written_scale}-...yaml) and drop the 'scale:' key",
            )
        )
    lone = _SCALE_TOKEN.search(stem)
    letter = lone.group(1) if lone else ""
    if not name_scale and letter and len(scales) > 1 and letter != builds_at:
        out.append(
            Finding(
                "scale-name",
                None,
                f"{stem}: Ultralytics reads the scale only right after the version number (yolov8{letter}-...), so "
                f"the {letter!r} in this name is ignored and it builds at scale {builds_at!r}; rename the file",
            )
        )
    return out


def channel_views(graph: Graph, data: dict[str, Any], scale: str) -> tuple[list[int | None], list[int | None]]:
    """Output channels per layer as written and at ``scale``."""
    channels = data.get("channels", 3)
    width, cap = scale_factors(data, scale)
    return layer_channels(graph, input_channels=channels), layer_channels(graph, width, cap, channels)


def diagnose(
    graph: Graph,
    data: dict[str, Any],
    stem: str,
    scale: str,
    comments: dict[int, int],
    references: Sequence[tuple[str, Graph]],
    fix: str,
) -> list[Finding]:
    """Every finding for a model file; ``scale`` is the one it builds at, ``fix`` the command that adopts it."""
    written, scaled = channel_views(graph, data, scale)
    scales = scale_names(data)
    return [
        *args_findings(graph, written, scaled, scale, fix),
        *dead_layers(graph),
        *stale_references(graph, references),
        *comment_findings(graph, comments),
        *scale_name_findings(stem, guess_scale(stem), scales, data.get("scale")),
    ]
