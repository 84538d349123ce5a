"""One model pipeline for every surgery and both input kinds: the source opened (:mod:`attnsurgeon.ops.loading`),
then build base and new, check, cost, write.

Every command that edits a model (insert, and the commands built the same way) makes its pure surgery on the layer
graph (:mod:`attnsurgeon.core.graph`) and hands it here as an :class:`Edit`. The pipeline does the rest the same way
for a YAML and for an Ultralytics checkpoint:

- YAML: the rows are applied to the round-trip tree (comments and layout kept), the base and new models are built at
  each requested scale and checked, and the new YAML is written atomically.
- Checkpoint: the new architecture is built at the checkpoint's scale, every trained tensor is moved to its layer's
  new index, the copy is checked, and the ``.pt`` and its ``.yaml`` are written together (both or neither).

``dry_run`` computes everything (and verifies unless told not to) but writes nothing: the report carries the unified
diff of the YAML and, for a checkpoint, the layer map. Nothing is written when a check fails. Torch is imported only
when a model is built, so ``verify=False`` on a YAML stays fast.
"""

from __future__ import annotations

import copy
import dataclasses
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnsurgeon import errors, sources
from attnsurgeon.catalog import ModuleSpec
from attnsurgeon.checks.opt_in import requested_checks
from attnsurgeon.core import publish
from attnsurgeon.core.graph import Graph, SurgeryResult
from attnsurgeon.core.progress import Progress
from attnsurgeon.core.report import Check, ModelCost, SurgeryReport, augmented_rows, changed_rows, unified_diff
from attnsurgeon.core.yamlfile import model_doc, text_writer, tree_edits
from attnsurgeon.errors import AttnSurgeonError, CheckpointError, ModelFileError, UsageError, VerificationError
from attnsurgeon.ops import loading
from attnsurgeon.ops.loading import Source
from attnsurgeon.ops.run_options import RunOptions, resolve
from attnsurgeon.sources import file_import, recorded


def begin(
    model: str | Path,
    options: RunOptions | None,
    keywords: dict[str, Any],
    command: str,
    accepted: Sequence[str] | None = None,
    check_module: Callable[[], object] | None = None,
) -> tuple[RunOptions, Source]:
    """What every surgery does first: its options (``options=`` with its keyword arguments on top), the plugin files
    joined, the module and the opt-in checks checked before a checkpoint is read, then the source opened."""
    opts = resolve(options, keywords, command, accepted)
    sources.add_files(opts.plugin_files)
    if check_module is not None:
        check_module()  # a bad name or argument fails before a checkpoint is read
    requested_checks(opts.checks, opts.verify)
    return opts, loading.open_source(model)


@dataclass
class Edit:
    """A pure surgery and what the report and the output say about it."""

    operation: str  # "insert", "remove", "replace", ...
    result: SurgeryResult
    label: str  # what the default output name adds to the input stem: the module name, "no8", ...
    summary: str  # one line for the checkpoint's YAML header: "SE [16] inserted after layer 8"
    spec: ModuleSpec | None = None  # the catalog module the surgery adds, if any
    args: list[Any] = field(default_factory=list)
    identity_init: bool = False
    rewire: str = "all"
    positions: dict[str, list[int]] = field(default_factory=dict)  # named position -> indices it resolved to

    def record(self, source: Path) -> dict[str, Any]:
        """What an output checkpoint stores about the surgery under its ``attnsurgeon`` key."""
        result = self.result
        return {
            "source": source.name,
            "operation": self.operation,
            "module": self.spec.name if self.spec else None,
            "args": copy.deepcopy(self.args),
            "identity_init": self.identity_init,
            "inserted": [{"after": i.after, "index": i.index} for i in result.insertions],
            "removed": list(result.removed),
            "replaced": list(result.replaced),
            "augmented": list(result.augmented),
            "index_map": dict(result.index_map),
        }


def execute(source: Source, edit: Edit, options: RunOptions) -> SurgeryReport:
    """Apply ``edit`` to ``source``, verify the result, and write it (unless ``options.write`` is False or
    ``options.dry_run``).

    Raises an :class:`~attnsurgeon.errors.AttnSurgeonError` subclass for every bad input or failed check; nothing is
    written unless every check passed. ``options.checks``: opt-in checks on ``options.device``
    (:mod:`attnsurgeon.checks.opt_in`).
    """
    probed = loading.refuse_new_rows(source, edit, options.verify)  # a plugin breaking the contract, args no module
    opts = dataclasses.replace(options, checks=requested_checks(options.checks, options.verify))
    run = _execute_checkpoint if source.kind == "checkpoint" else _execute_yaml
    report = run(source, edit, opts, opts.step)
    report.warnings += probed
    report.imported = file_import.imported()
    return report


# --------------------------------------------------------------------------------------------------------------------
# YAML


def output_path(doc: model_doc.ModelDoc, label: str, output: str | Path | None) -> Path:
    """``-o`` as given (a .yaml), else ``<input stem>-<label>.yaml`` beside the input (cwd for a packaged name)."""
    if output is not None:
        path = Path(output).expanduser()
        if path.suffix.lower() not in (".yaml", ".yml"):
            raise UsageError(f"-o {output}: the output must be a .yaml file")
        return path
    name = f"{doc.stem}-{label}.yaml"
    return Path(name) if doc.packaged else doc.path.parent / name


def _scale_name_warning(out: Path, wanted: str, builds_at: str) -> str:
    better = model_doc.with_scale(out.stem, wanted)
    hint = f"; name it {better}{out.suffix}" if better else " (put the scale letter in the name)"
    name_scale = model_doc.guess_scale(out)
    what = f"scale letter {name_scale!r}" if name_scale else "no scale letter"
    return (
        f"{out.name} has {what} in its name, so Ultralytics will build it at scale {builds_at!r}, not {wanted!r}{hint}"
    )


def _check_output(path: Path, force: bool, inputs: tuple[Path, ...], dry_run: bool, warnings: list[str]) -> None:
    if not dry_run:
        publish.check_output(path, force, inputs)
    elif path.exists() and not force:
        warnings.append(f"{path} exists: the real run needs --force or another -o path")


def _execute_yaml(source: Source, edit: Edit, opts: RunOptions, step: Progress) -> SurgeryReport:
    doc = source.doc
    assert doc is not None
    scales, warnings = model_doc.resolve_scales(doc, opts.scale)
    out = output_path(doc, edit.label, opts.output) if opts.write or opts.dry_run else None
    if out is not None:
        _check_output(out, opts.force, (doc.path,), opts.dry_run, warnings)
        wanted = scales[0]
        builds_at = model_doc.guess_scale(out) or (doc.scales[0] if doc.scales else "")
        if wanted and builds_at != wanted and opts.scale != "all":
            warnings.append(_scale_name_warning(out, wanted, builds_at))
    base_cfg = doc.plain()
    old_graph, old_text = doc.graph, doc.text
    new_data = tree_edits.apply(doc, edit.result, in_place=True)
    warnings += recorded.record(new_data, (out or doc.path).parent, tree_edits.flow_seq)  # read in every process
    text = text_writer.surgery_text(doc, edit.result, new_data)
    report = _new_report(source, edit, old_graph, out, text, warnings, opts.dry_run)
    if opts.dry_run:
        report.diff = unified_diff(old_text, text, str(doc.path), str(out or "<output>"))
    if opts.verify:
        new_cfg = model_doc.to_plain(new_data)
        if edit.result.fresh_layers:
            from attnsurgeon.checks.verify import check_liveness

            report.checks.append(check_liveness(edit.result.graph, edit.result.fresh_layers))
        for chosen in scales:
            tag = f" [{chosen}]" if len(scales) > 1 else ""
            cost = _verify_yaml_scale(report, edit, base_cfg, new_cfg, doc.stem, chosen, tag, opts, step)
            if cost is None:
                break
            report.costs[chosen] = cost
        report.raise_if_failed()
    if out is not None and opts.write and not opts.dry_run:
        step(f"writing {out.name}")
        publish.publish(out, text_writer.with_newline(text, doc.newline), force=opts.force)  # a CRLF input stays CRLF
    return report


def _verify_yaml_scale(
    report: SurgeryReport,
    edit: Edit,
    base_cfg: dict[str, Any],
    new_cfg: dict[str, Any],
    stem: str,
    scale: str,
    tag: str,
    opts: RunOptions,
    step: Progress,
) -> tuple[ModelCost, ModelCost] | None:
    """Build base and new at one scale and check the new one; the pair of costs, or None after a failed check."""
    from attnsurgeon.checks import verify
    from attnsurgeon.ultralytics_bridge import ultra

    at = f" at {scale}" if scale else ""
    step(f"building {stem}{at}")
    try:
        base = ultra.build_model(base_cfg, scale or None, f"{stem}.yaml")
    except Exception as exc:
        raise ModelFileError(
            f"{report.source}: the input model itself does not build at scale {scale!r}: {errors.first_line(exc)}"
        ) from exc
    step(f"building {stem}-{edit.label}{at}")
    try:
        new = ultra.build_model(new_cfg, scale or None, f"{stem}-{edit.label}.yaml", seed=0)
    except Exception as exc:
        report.checks.append(Check("build" + tag, False, errors.first_line(exc)))
        return None
    report.checks.append(Check("build" + tag, True, f"{len(new.model)} layers at scale {scale or '-'}"))
    if edit.result.augmented:
        kept, report.attention[scale] = verify.check_block_kept(base, new, edit.result.augmented, tag)
        report.checks.append(kept)
    report.checks.extend(verify.check_new_model(new, edit.result.learning_layers, _hints(edit), opts.imgsz, tag, step))
    _run_extra_checks(report, new, edit, opts, tag, step)
    if any(c.ok is False for c in report.checks):
        return None
    return _costs(base, new, scale, opts.imgsz, report, step)


# --------------------------------------------------------------------------------------------------------------------
# Checkpoint


def _execute_checkpoint(source: Source, edit: Edit, opts: RunOptions, step: Progress) -> SurgeryReport:
    from attnsurgeon.ultralytics_bridge import checkpoints

    ckpt, result = source.checkpoint, edit.result
    warnings: list[str] = []
    out, yaml_out = _checkpoint_outputs(source, edit, opts, warnings)
    cfg = checkpoints.new_config(ckpt, result.graph, yaml_out.name)
    warnings += recorded.record(cfg, yaml_out.parent)  # the plugin files its rows need, for YOLO(yaml) in any process
    base = ckpt.model.float()  # load_checkpoint's own copy; the file is never touched
    new = _build_checkpoint(source, cfg, yaml_out, base, step)
    stats, dropped = _move_weights(source, edit, base, new, step)
    name_scale = model_doc.guess_scale(yaml_out)
    if ckpt.scale and cfg.get("scales") and name_scale != ckpt.scale:
        what = f"scale letter {name_scale!r}" if name_scale else "no scale letter"
        warnings.append(
            f"{yaml_out.name} has {what} in its name, so YOLO('{yaml_out.name}') builds it at another scale than "
            f"the checkpoint's {ckpt.scale!r}; YOLO('{out.name}') is unaffected"
        )
    header = (
        f"{yaml_out.name}: the architecture of {out.name}, written by attnsurgeon\n"
        f"{source.path.name} with {edit.summary}"
    )
    text = text_writer.architecture_text(cfg, header)
    report = _new_report(
        source, edit, source.graph, out if opts.write or opts.dry_run else None, text, warnings, opts.dry_run
    )
    if opts.dry_run:
        report.diff = unified_diff(
            text_writer.architecture_text(ckpt.cfg), text, f"{source.path.name} (architecture)", yaml_out.name
        )
        report.layer_map = {"index_map": dict(result.index_map), "fresh": result.fresh_layers, "dropped": dropped}
    if opts.verify:
        _verify_checkpoint(report, edit, base, new, stats, ckpt.scale, opts, step)
    if opts.write and not opts.dry_run:  # the .pt and its .yaml: both or neither
        import torch

        buffer = io.BytesIO()
        torch.save(checkpoints.checkpoint_dict(ckpt, new, edit.record(source.path)), buffer)
        step(f"writing {out.name}")
        publish.publish_all([(yaml_out, text), (out, buffer.getvalue())], force=opts.force)
    return report


def _checkpoint_outputs(source: Source, edit: Edit, opts: RunOptions, warnings: list[str]) -> tuple[Path, Path]:
    """The output ``.pt`` and the ``.yaml`` beside it, both free to write (or a warning on a dry run)."""
    default = source.path.with_name(f"{source.stem}-{edit.label}.pt")
    out = Path(opts.output).expanduser() if opts.output is not None else default
    if out.suffix.lower() != ".pt":
        raise UsageError(f"-o {out}: the output of a checkpoint surgery must be a .pt file (the YAML goes beside it)")
    yaml_out = out.with_suffix(".yaml")
    if opts.write or opts.dry_run:
        for path in (out, yaml_out):
            _check_output(path, opts.force, (source.path,), opts.dry_run, warnings)
    ckpt = source.checkpoint
    if opts.scale not in (None, ckpt.scale):
        raise UsageError(f"--scale does not apply to a checkpoint ({source.path.name} is scale {ckpt.scale or '-'!r})")
    return out, yaml_out


def _build_checkpoint(source: Source, cfg: dict[str, Any], yaml_out: Path, base: Any, step: Progress) -> Any:
    """The new architecture at the checkpoint's scale, of the checkpoint's model class; a failed build is a check."""
    from attnsurgeon.ultralytics_bridge import ultra

    step(f"building {yaml_out.stem}")
    try:
        new = ultra.build_model(cfg, source.checkpoint.scale or None, yaml_out.name, seed=0)
    except AttnSurgeonError:
        raise
    except Exception as exc:
        detail = errors.first_line(exc)
        raise VerificationError(
            f"check 'build' failed: {detail}; nothing was written", [Check("build", False, detail)]
        ) from exc
    if type(new) is not type(base):
        raise CheckpointError(
            f"{source.path}: the architecture rebuilds as {type(new).__name__}, but the checkpoint holds a "
            f"{type(base).__name__}"
        )
    return new


def _move_weights(source: Source, edit: Edit, base: Any, new: Any, step: Progress) -> tuple[Any, list[int]]:
    """Every trained tensor moved to its layer's new index (the class names, task, transforms too); the statistics
    and the old layers dropped (removed, or replaced)."""
    from attnsurgeon.ops import weights
    from attnsurgeon.ultralytics_bridge import augment_blocks

    result = edit.result
    inverse = {new_i: old for old, new_i in result.index_map.items()}
    dropped = [*result.removed, *(inverse[i] for i in result.replaced if i in inverse)]
    step("moving weights")
    try:
        fresh_keys = augment_blocks.attention_keys(new)  # attention inside augmented blocks: the only new tensors
        stats = weights.move_weights(base, new, result.index_map, result.fresh_layers, dropped, fresh_keys)
    except CheckpointError as exc:
        raise CheckpointError(f"{source.path}: {exc}") from exc
    for attr in ("names", "task", "transforms"):
        if attr in vars(base):
            setattr(new, attr, copy.deepcopy(getattr(base, attr)))
    return stats, dropped


def _verify_checkpoint(
    report: SurgeryReport, edit: Edit, base: Any, new: Any, stats: Any, scale: str, opts: RunOptions, step: Progress
) -> None:
    """The checks of the new model (the identity check with ``identity_init``), then its costs at ``scale``."""
    from attnsurgeon.checks import verify
    from attnsurgeon.ops import weights

    result = edit.result
    report.checks.append(Check("weights moved", True, stats.describe()))
    if result.augmented:
        kept, report.attention[scale] = verify.check_block_kept(base, new, result.augmented, "")
        report.checks.append(kept)
    learning = result.learning_layers
    report.checks.extend(verify.check_new_model(new, learning, _hints(edit), opts.imgsz, "", step, True))
    if edit.identity_init and not result.replaced:  # a replaced layer computed something: no original to equal
        step("comparing with the original")
        report.checks.append(weights.identity_check(base, new))
    _run_extra_checks(report, new, edit, opts, "", step)
    report.raise_if_failed()
    report.costs[scale] = _costs(base, new, scale, opts.imgsz, report, step)


# --------------------------------------------------------------------------------------------------------------------
# Shared by both kinds


def _new_report(
    source: Source, edit: Edit, old_graph: Graph, out: Path | None, text: str, warnings: list[str], dry_run: bool
) -> SurgeryReport:
    result = edit.result
    return SurgeryReport(
        output=out,
        source=source.path,
        module=edit.spec.name if edit.spec else "",
        args=edit.args,
        rewire=edit.rewire,
        inserted=[{"after": i.after, "index": i.index} for i in result.insertions],
        changed=changed_rows(old_graph, result),
        warnings=warnings,
        yaml_text=text,
        operation=edit.operation,
        removed=list(result.removed),
        replaced=list(result.replaced),
        positions=dict(edit.positions),
        dry_run=dry_run,
        augmented=augmented_rows(old_graph, result),
    )


def _costs(
    base: Any, new: Any, scale: str, imgsz: int, report: SurgeryReport, step: Progress
) -> tuple[ModelCost, ModelCost]:
    from attnsurgeon.costs.flops import comparable_gflops, count_params

    step("counting GFLOPs")
    base_g, new_g = comparable_gflops(base, new, imgsz)
    if new_g.fallback:  # comparable_gflops counts both the same way
        report.warnings.append(f"GFLOPs: {new_g.source}")
    return (
        ModelCost(scale, count_params(base), base_g.value, base_g.source),
        ModelCost(scale, count_params(new), new_g.value, new_g.source),
    )


def _run_extra_checks(report: SurgeryReport, new: Any, edit: Edit, opts: RunOptions, tag: str, step: Progress) -> None:
    if opts.checks and not any(c.ok is False for c in report.checks):  # on copies, once the default checks passed
        from attnsurgeon.checks.opt_in import run_extra_checks

        report.checks += run_extra_checks(new, opts.checks, opts.imgsz, opts.device, _hints(edit), tag, step)


def _hints(edit: Edit) -> dict[int, str]:
    """What a failure in a layer the surgery made should add: the module's documented constraints."""
    spec = edit.spec
    hint = f"{spec.name} constraints: {'; '.join(spec.constraints)}" if spec and spec.constraints else ""
    return dict.fromkeys(edit.result.fresh_layers, hint) if hint else {}
