"""insert, remove and replace (and insert on a checkpoint): the surgeries of the public API, the CLI a thin shell.

>>> import attnsurgeon
>>> report = attnsurgeon.insert("yolo11n.yaml", "SE", after=8, output="yolo11n-SE.yaml")  # doctest: +SKIP
>>> report.new["params"] - report.base["params"]  # doctest: +SKIP

Each command is one function that makes its pure surgery on the layer graph and hands it to
:mod:`attnsurgeon.ops.pipeline`, which builds, checks, costs and writes, the same way for YAMLs and checkpoints. Nothing
here imports torch until a model has to be built, so ``insert(..., verify=False)`` on a YAML stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnsurgeon import sources
from attnsurgeon.catalog import REGISTRY, ModuleSpec
from attnsurgeon.core import graph as graph_mod
from attnsurgeon.core import positions
from attnsurgeon.core.report import InsertReport, SurgeryReport
from attnsurgeon.core.sizes import DEFAULT_IMGSZ
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.errors import ModelFileError, ModuleArgsError, UsageError
from attnsurgeon.ops import loading, pipeline
from attnsurgeon.ops.run_options import WITHOUT_NEW_LAYER, RunOptions, resolve

__all__ = [
    "DEFAULT_IMGSZ",
    "InsertReport",
    "RunOptions",
    "SurgeryReport",
    "insert",
    "insert_checkpoint",
    "plan_insert",
    "remove",
    "replace",
]
Positions = int | str | Sequence[int | str]  # layer indices and position names (attnsurgeon.core.positions)


def parse_args_text(text: str | None) -> list[Any] | None:
    """``--args "[2, 1]"`` (YAML flow) -> [2, 1]; a bare ``2, 1`` works too."""
    if text is None:
        return None
    stripped = text.strip()
    if not stripped:
        return []
    if not stripped.startswith("["):
        stripped = f"[{stripped}]"
    try:
        value = model_doc.to_plain(model_doc.loads(stripped, "--args"))
    except ModelFileError as exc:
        raise ModuleArgsError(f'--args {text!r} is not a YAML list like "[2, 1]": {exc}') from exc
    if not isinstance(value, list):
        raise ModuleArgsError(f'--args {text!r} is not a list; write it like "[2, 1]"')
    return value


def module_args(module: str, args: Sequence[Any] | str | None) -> tuple[ModuleSpec, list[Any]]:
    """The catalog entry and its hyper-parameters (``--args`` text, a list, or None for the defaults), checked."""
    spec = sources.resolve(module)
    values = parse_args_text(args) if isinstance(args, str) or args is None else list(args)
    return spec, spec.check_args(spec.defaults() if values is None else values)


def surgery_row(spec: ModuleSpec, values: list[Any], identity_init: bool) -> tuple[str, list[Any]]:
    """Module name and args of the inserted row; identity_init wraps the module: [IdentityInit, [SE, [16]]]
    (attnsurgeon.ultralytics_bridge.wrappers)."""
    return ("IdentityInit", [spec.name, values]) if identity_init else (spec.name, values)


def _insert_edit(
    graph: graph_mod.Graph,
    module: str,
    after: Positions,
    args: Sequence[Any] | str | None,
    rewire: str,
    identity_init: bool,
) -> pipeline.Edit:
    spec, values = module_args(module, args)
    name, row_args = surgery_row(spec, values, identity_init)
    resolved = positions.resolve(graph, after, "--after")
    result = graph_mod.insert(graph, resolved.indices, name, row_args, rewire=rewire)  # type: ignore[arg-type]
    where = ", ".join(str(i.after) for i in result.insertions)
    plural = "s" if len(result.insertions) > 1 else ""
    summary = (
        f"{spec.name} {values}{' (identity-initialised)' if identity_init else ''} inserted after layer{plural} {where}"
    )
    return pipeline.Edit(
        "insert", result, spec.name, summary, spec=spec, args=values, identity_init=identity_init, rewire=rewire,
        positions=_named(resolved),
    )  # fmt: skip


def plan_insert(
    model: str | Path,
    module: str,
    after: Positions,
    args: Sequence[Any] | str | None = None,
    rewire: str = "all",
    identity_init: bool = False,
) -> tuple[model_doc.ModelDoc, ModuleSpec, list[Any], graph_mod.SurgeryResult]:
    """The torch-free part of insert on a YAML: load, check the module and its args, do the surgery on the graph."""
    doc = loading.load_checked(model)
    edit = _insert_edit(doc.graph, module, after, args, rewire, identity_init)
    assert edit.spec is not None
    loading.refuse_placed(edit.result.graph, doc.plain(), doc.stem, edit.result.fresh_layers)
    return doc, edit.spec, edit.args, edit.result


def insert(
    model: str | Path,
    module: str,
    after: Positions,
    args: Sequence[Any] | str | None = None,
    *,
    rewire: str = "all",
    options: RunOptions | None = None,
    **keywords: Any,
) -> SurgeryReport:
    """Insert ``module`` after each layer index in ``after``; verify and write the new YAML (or checkpoint).

    ``model`` is a YAML path, a packaged name or an Ultralytics ``.pt`` checkpoint (then every trained weight moves to
    its new index, and the new YAML is written beside the output ``.pt``). ``options`` (or the same names as keyword
    arguments: ``output``, ``force``, ``scale``, ``imgsz``, ``verify``, ``write``, ``dry_run``, ``identity_init``,
    ``checks``, ``device``, ``plugin_files``, ``progress``; see :class:`~attnsurgeon.ops.run_options.RunOptions`)
    say what
    to write and how to verify. ``identity_init`` wraps the module so the new layer starts as the identity;
    ``dry_run`` writes nothing and puts the diff in the report; ``checks`` adds opt-in checks (``"export,half,val"``
    or ``"all"``, see :mod:`attnsurgeon.checks.opt_in`), run on ``device``; ``plugin_files`` join the catalog first
    (as ``--plugin``) and the output lists them under ``attnsurgeon_plugins``. Raises an
    :class:`~attnsurgeon.errors.AttnSurgeonError` subclass for every bad input or failed check; nothing is written
    unless every check passed.
    """
    opts, source = pipeline.begin(model, options, keywords, "insert", check_module=lambda: module_args(module, args))
    edit = _insert_edit(source.graph, module, after, args, rewire, opts.identity_init)
    return pipeline.execute(source, edit, opts)


def insert_checkpoint(
    model: str | Path,
    module: str,
    after: Positions,
    args: Sequence[Any] | str | None = None,
    *,
    rewire: str = "all",
    options: RunOptions | None = None,
    **keywords: Any,
) -> SurgeryReport:
    """:func:`insert` on an Ultralytics ``.pt`` checkpoint (refuses anything else).

    Writes ``output`` (default ``<stem>-<Module>.pt`` beside the input) and the new architecture as the same name
    with ``.yaml``, both or neither. Nothing is written unless every check passed; the input is never modified.
    """
    opts = resolve(options, keywords, "insert_checkpoint")
    if not loading.is_checkpoint(model):
        raise UsageError(f"{model}: insert_checkpoint takes an Ultralytics .pt checkpoint; use insert for a YAML")
    return insert(model, module, after, args, rewire=rewire, options=opts)


# --------------------------------------------------------------------------------------------------------------------
# remove, replace


def _named(resolved: positions.Resolved) -> dict[str, list[int]]:
    return {name: list(indices) for name, indices in resolved.names.items()}


def _removed_label(removed: Sequence[int]) -> str:
    """What the default output name adds: ``no9``, ``no3+6+9``; beyond three layers only how many."""
    return "no" + "+".join(map(str, removed)) if len(removed) <= 3 else f"no{len(removed)}layers"


def remove(model: str | Path, at: Positions, *, options: RunOptions | None = None, **keywords: Any) -> SurgeryReport:
    """Take out the layer at each index or named position in ``at``; verify and write like :func:`insert`.

    A removed layer must read one layer and keep its shape (a catalog module, ``IdentityInit``, ``nn.Identity``, ...);
    every reader of it reads its input instead, and every other layer is renumbered: the exact inverse of ``insert``.
    On a checkpoint every other trained tensor keeps its value at its new index. The default output is
    ``<stem>-no<K>.yaml`` (or ``.pt``). ``options`` (or keyword arguments) as for :func:`insert`, without
    ``identity_init``.
    """
    opts, source = pipeline.begin(model, options, keywords, "remove", WITHOUT_NEW_LAYER)
    resolved = positions.resolve(source.graph, at, "--at")
    result = graph_mod.remove(source.graph, resolved.indices, REGISTRY.shape_keeping_modules())
    rows = ", ".join(f"{k} ({source.graph.rows[k].module})" for k in result.removed)
    edit = pipeline.Edit(
        "remove",
        result,
        _removed_label(result.removed),
        f"layer{'s' if len(result.removed) > 1 else ''} {rows} removed",
        positions=_named(resolved),
    )
    return pipeline.execute(source, edit, opts)


def replace(
    model: str | Path,
    at: Positions,
    module: str,
    args: Sequence[Any] | str | None = None,
    *,
    options: RunOptions | None = None,
    **keywords: Any,
) -> SurgeryReport:
    """Swap the attention layer at each index or named position in ``at`` for ``module``; no reference moves.

    The replaced layer starts fresh (as the identity with ``identity_init``); on a checkpoint every other trained
    tensor keeps its value. Verifies and writes like :func:`insert`; the default output is ``<stem>-<Module>.yaml``.
    ``options`` (or keyword arguments) as for :func:`insert`.
    """
    opts, source = pipeline.begin(model, options, keywords, "replace", check_module=lambda: module_args(module, args))
    identity_init = opts.identity_init
    spec, values = module_args(module, args)
    resolved = positions.resolve(source.graph, at, "--at")
    name, row_args = surgery_row(spec, values, identity_init)
    result = graph_mod.replace(source.graph, resolved.indices, name, row_args, REGISTRY.shape_keeping_modules())
    old = ", ".join(f"{k} ({source.graph.rows[k].module})" for k in result.replaced)
    init = " (identity-initialised)" if identity_init else ""
    edit = pipeline.Edit(
        "replace",
        result,
        spec.name,
        f"layer{'s' if len(result.replaced) > 1 else ''} {old} replaced by {spec.name} {values}{init}",
        spec=spec,
        args=values,
        identity_init=identity_init,
        positions=_named(resolved),
    )
    return pipeline.execute(source, edit, opts)
