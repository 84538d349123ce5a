"""``attnsurgeon.adopt``: a YAML written for a forked Ultralytics rewritten for plain Ultralytics with attnsurgeon,
the public API of ``attnsurgeon adopt``.

The plan is pure (:mod:`attnsurgeon.ops.adopt_plan`); this verifies the result and writes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attnsurgeon import sources
from attnsurgeon.catalog import name_rules
from attnsurgeon.core import publish, yolo_repos
from attnsurgeon.core.report import unified_diff
from attnsurgeon.core.yamlfile import model_doc, text_writer, tree_edits
from attnsurgeon.errors import AttnSurgeonError, ModelFileError, NeedsAdoptionError, UsageError, VerificationError
from attnsurgeon.ops import adopt_plan, fork_rows
from attnsurgeon.ops.adopt_plan import AdoptPlan, AdoptReport
from attnsurgeon.ops.run_options import RunOptions, resolve
from attnsurgeon.sources import file_import, plugins, recorded

# adopt rewrites a whole file: no module is chosen, no opt-in checks run
ADOPT_OPTIONS = ("output", "force", "scale", "imgsz", "verify", "write", "dry_run", "plugin_files")


def adopt(
    model: str | Path,
    *,
    fix_stale: bool = False,
    where: str | None = None,
    fork: str | Path | None = None,
    options: RunOptions | None = None,
    **keywords: Any,
) -> AdoptReport:
    """Rewrite a forked-Ultralytics YAML so plain Ultralytics with attnsurgeon builds the modules it meant, verify it as
    insert verifies (build, forward at square and rectangular sizes, one training step) and write it atomically.

    ``fix_stale`` also points each stale reference (a renumbering that missed an added row, found by comparing with
    the packaged model the file derives from) at the layer it meant. A fork block named after its attention
    (``C2f_EMA``) becomes an ``Augment`` row: ``where`` (bottleneck/output) places the attention, else ``fork`` (the
    fork's source folder or file, read with ``ast``, never run) decides, else bottleneck is assumed. With ``fork``,
    a block named after a class the fork defines (``C2f_Attention``) uses that class as the module (``FILE.py:Class``,
    the definition the block's own file or imports name), and the attention keeps the literal args the fork builds it
    with. Verification builds the written YAML, which imports the files of the classes it names (``imported`` in
    the report); without verification no file of the fork runs. ``plugin_files`` join the catalog first (as
    ``--plugin``): a fork's own module made a plugin is adopted like a catalog one, and the output lists the plugin
    files it needs under ``attnsurgeon_plugins``.

    ``options`` (or keyword arguments): ``output``, ``force``, ``scale``, ``imgsz``, ``verify``, ``write``,
    ``dry_run`` (as ``write=False``), ``plugin_files``, as for :func:`~attnsurgeon.ops.surgery.insert`.

    Returns an :class:`~attnsurgeon.ops.adopt_plan.AdoptReport`. Nothing is written when a row cannot be mapped
    (NeedsAdoptionError) or a check fails (VerificationError); ``exc.report`` holds the report then.
    """
    opts = resolve(options, keywords, "adopt", ADOPT_OPTIONS)
    output, force = opts.output, opts.force
    write = opts.write and not opts.dry_run  # a dry run: the report's diff, nothing written
    sources.add_files(opts.plugin_files)
    result = adopt_plan.plan(model, opts.scale, name_rules.ultralytics_names(), fix_stale, where, fork)
    scales, report = _report(result, opts, write)
    _refuse_unadoptable(result, report, opts.verify)
    out = report.output
    if out is not None:
        if out.suffix.lower() not in (".yaml", ".yml"):
            raise UsageError(f"-o {output}: the output must be a .yaml file")
        publish.check_output(out, force, inputs=(result.doc.path,))
    if not result.changes:  # nothing to rewrite: the file already builds as written (or only its repository does)
        return _unchanged(result, report, opts)
    if opts.verify:
        _verify(result, report, scales, opts.imgsz)
    if out is not None:
        publish.publish(out, result.text, force=force)
    report.imported = file_import.imported()
    return report


def _report(result: AdoptPlan, opts: RunOptions, write: bool) -> tuple[list[str], AdoptReport]:
    """The scales to verify at, and the report of the plan: its output path, the plugin files the output lists, the
    diff."""
    output, scale = opts.output, opts.scale
    doc = result.doc
    scales, warnings = model_doc.resolve_scales(doc, scale)
    out = (Path(output).expanduser() if output is not None else adopt_plan.default_output(doc)) if write else None
    warnings += recorded.record(doc.data, (out or doc.path).parent, tree_edits.flow_seq)  # what plain YOLO(path) loads
    if plugins.YAML_KEY in doc.data:  # the one key added to the rows adopt_plan.plan wrote (a flow file: line by line)
        text = text_writer.adopted_with_keys(doc, result.text.replace("\r\n", "\n"), doc.data)
        result.text = adopt_plan.with_line_endings(text, *adopt_plan.line_endings(doc))
    diff = unified_diff(doc.text, result.text.replace("\r\n", "\n"), str(doc.path), "adopted")
    report = AdoptReport(
        doc.path, out, result.scale, result.changes, result.unmapped, result.findings, result.text, diff,
        warnings=warnings,
    )  # fmt: skip
    return scales, report


def _refuse_unadoptable(result: AdoptPlan, report: AdoptReport, verify: bool) -> None:
    """A row that cannot be mapped, or a file only its YOLO repository builds (when verifying), stops adopt; the latter
    is a warning without verification."""
    doc = result.doc
    if result.unmapped:
        first = result.unmapped[0]
        why = f"layer {first.layer} {first.row} cannot be adopted: {first.why}; nothing was written"
        raise _with_report(NeedsAdoptionError(f"{doc.path}: {why}"), report)
    repo = yolo_repos.unbuildable(adopt_plan.graph_of(result.new_cfg), result.new_cfg)
    if repo and verify:  # a YOLOv5/v7/v9-repository file: one line naming it, never a TypeError from a build
        raise _with_report(ModelFileError(yolo_repos.message(str(doc.path), repo)), report)
    if repo:
        report.warnings.append(yolo_repos.message(doc.path.name, repo, edited=True))
        report.repository = yolo_repos.origin(repo)[0]


def _unchanged(result: AdoptPlan, report: AdoptReport, opts: RunOptions) -> AdoptReport:
    """Nothing to rewrite: no output, unless ``-o`` was given (a script's next step reads it): then a copy."""
    out, output, force = report.output, opts.output, opts.force
    if out is None or output is None:
        report.output = None
        return report
    publish.publish(out, result.text, force=force)  # an explicit -o: a script's next step reads it
    report.warnings.append(f"nothing to change: {out} is a copy of {result.doc.path}")
    return report


def _verify(result: AdoptPlan, report: AdoptReport, scales: list[str], imgsz: int) -> None:
    """Check the adopted file as insert checks its output; a failed check stops adopt (nothing written)."""
    from attnsurgeon.checks.verify import check_model_file

    # a plain class (a fork's own, FILE.py:Class) is imported here, as verifying asks, and held to the contract
    # (its first failure in one line) before a build
    for spec, values in adopt_plan.foreign_rows(result):
        try:
            sources.refuse_plain(spec, values)
        except AttnSurgeonError as exc:
            raise _with_report(fork_rows.unusable(result, spec, exc), report) from None

    report.checks, report.params = check_model_file(
        result.new_cfg, result.doc.stem, scales, imgsz, result.attention_layers
    )
    failed = [c for c in report.checks if c.ok is False]
    if failed:
        message = f"check '{failed[0].name}' failed: {failed[0].detail}; nothing was written"
        raise _with_report(VerificationError(message, report.checks), report)


def _with_report(exc: AttnSurgeonError, report: AdoptReport) -> AttnSurgeonError:
    report.output = None  # nothing was written
    report.imported = file_import.imported()
    exc.report = report  # type: ignore[attr-defined]  # the CLI shows what was found before the one-line error
    return exc
