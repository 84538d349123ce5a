"""``attnsurgeon.augment``: attention inside a block (C3k2 -> "C3k2-EMA"), the public API of ``attnsurgeon augment``.

A part of the public API (:mod:`attnsurgeon.ops.surgery`) in its own file to keep each under 400 lines. It makes the
pure
surgery (:func:`attnsurgeon.core.augment_graph.augment`) and hands it to :mod:`attnsurgeon.ops.pipeline`, which builds,
checks, costs and writes, the same way for YAMLs and checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnsurgeon.catalog import ModuleSpec
from attnsurgeon.core import augment_graph, positions
from attnsurgeon.core.graph import Graph, SurgeryResult
from attnsurgeon.core.report import SurgeryReport
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.ops import loading, pipeline
from attnsurgeon.ops.run_options import RunOptions
from attnsurgeon.ops.surgery import Positions, module_args, surgery_row


def augment_label(blocks: Sequence[str], module: str, where: str) -> str:
    """What the default output name adds to the stem: ``C3k2_EMA`` (``yolo11n-C3k2_EMA.yaml``), the blocks in index
    order, ``_out`` when the attention sits on the block's output."""
    return f"{'_'.join(dict.fromkeys(blocks))}_{module}{'_out' if where == 'output' else ''}"


def _augment_edit(
    graph: Graph,
    module: str,
    at: Positions,
    args: Sequence[Any] | str | None,
    where: str,
    identity_init: bool,
) -> pipeline.Edit:
    spec, values = module_args(module, args)
    resolved = positions.resolve(graph, at, "--at")
    name, row_args = surgery_row(spec, values, identity_init)
    result = augment_graph.augment(graph, resolved.indices, name, row_args, where=where)  # type: ignore[arg-type]
    blocks = [graph.rows[i].module for i in result.augmented]
    inside = ", ".join(f"layer {i} {b}" for i, b in zip(result.augmented, blocks, strict=True))
    summary = f"{spec.name} {values}{' (identity-initialised)' if identity_init else ''} inside {inside} ({where})"
    return pipeline.Edit(
        "augment",
        result,
        augment_label(blocks, spec.name, where),
        summary,
        spec=spec,
        args=values,
        identity_init=identity_init,
        positions={name: list(indices) for name, indices in resolved.names.items()},
    )


def plan_augment(
    model: str | Path,
    module: str,
    at: Positions,
    args: Sequence[Any] | str | None = None,
    where: str = "bottleneck",
    identity_init: bool = False,
) -> tuple[model_doc.ModelDoc, ModuleSpec, list[Any], SurgeryResult]:
    """The torch-free part of augment on a YAML: load, check the module and its args, rewrite the rows."""
    doc = loading.load_checked(model)  # as augment() loads it: recorded plugins added, a forked file refused
    edit = _augment_edit(doc.graph, module, at, args, where, identity_init)
    assert edit.spec is not None
    return doc, edit.spec, edit.args, edit.result


def augment(
    model: str | Path,
    module: str,
    at: Positions,
    args: Sequence[Any] | str | None = None,
    *,
    where: str = "bottleneck",
    options: RunOptions | None = None,
    **keywords: Any,
) -> SurgeryReport:
    """Give the block at each index or named position in ``at`` (``6``, ``every:C3k2``, ``backbone:every:C2f``)
    attention inside; verify and write the new YAML (or checkpoint).

    ``where="bottleneck"``: in each residual unit of the block, before the addition; ``"output"``: after the block's
    last conv. No row moves; the block keeps Ultralytics' channels and repeats at every scale, and on a ``.pt`` every
    trained tensor of it. The report's ``augmented`` and ``attention`` say where and how much attention went in.
    Raises an :class:`~attnsurgeon.errors.AttnSurgeonError` subclass for every bad input or failed check; nothing is
    written unless every check passed. ``options`` (or keyword arguments) as for
    :func:`~attnsurgeon.ops.surgery.insert`.
    """
    opts, source = pipeline.begin(model, options, keywords, "augment", check_module=lambda: module_args(module, args))
    edit = _augment_edit(source.graph, module, at, args, where, opts.identity_init)
    return pipeline.execute(source, edit, opts)
