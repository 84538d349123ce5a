"""``attnsurgeon.adopt``: a YAML written for a forked Ultralytics rewritten for plain Ultralytics with attnsurgeon,
the public API of ``attnsurgeon adopt``.

A part of the public API (:mod:`attnsurgeon.api`) in its own file to keep each under 400 lines. The plan is pure
(:mod:`attnsurgeon.adoption`); this verifies the result and writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from attnsurgeon import adoption, sizes, yamlio, yamltree
from attnsurgeon.catalog import plugins
from attnsurgeon.errors import AttnSurgeonError, NeedsAdoptionError, UsageError, VerificationError
from attnsurgeon.pipeline import DEFAULT_IMGSZ
from attnsurgeon.report import unified_diff


def adopt(
    model: str | Path,
    output: str | Path | None = None,
    force: bool = False,
    scale: str | None = None,
    imgsz: int = DEFAULT_IMGSZ,
    verify: bool = True,
    write: bool = True,
    fix_stale: bool = False,
    plugin_files: Sequence[str | Path] = (),
) -> adoption.AdoptReport:
    """Rewrite a forked-Ultralytics YAML so plain Ultralytics with attnsurgeon builds the modules it meant, verify it as
    insert verifies (build, forward at square and rectangular sizes, one training step) and write it atomically.

    ``fix_stale`` also points each stale reference (a renumbering that missed an added row, found by comparing with
    the packaged model the file derives from) at the layer it meant. ``plugin_files`` join the catalog first (as
    ``--plugin``): a fork's own module made a plugin is adopted like a catalog one, and the output lists the plugin
    files it needs under ``attnsurgeon_plugins``.

    Returns an :class:`~attnsurgeon.adoption.AdoptReport`. Nothing is written when a row cannot be mapped
    (NeedsAdoptionError) or a check fails (VerificationError); ``exc.report`` holds the report then.
    """

    sizes.check_square(imgsz)
    plugins.add_files(plugin_files)
    result = adoption.plan(model, scale, known=plugins.ultralytics_names(), fix_stale=fix_stale)
    doc = result.doc
    scales, warnings = yamlio.resolve_scales(doc, scale)
    out = (Path(output).expanduser() if output is not None else adoption.default_output(doc)) if write else None
    plugins.record(doc.data, (out or doc.path).parent, yamltree.flow_seq)  # the plugin files plain YOLO(path) loads
    if plugins.YAML_KEY in doc.data:
        result.text = adoption.with_line_endings(yamlio.dump(doc.data), *adoption.line_endings(doc.path))
    diff = unified_diff(doc.text, result.text.replace("\r\n", "\n"), str(doc.path), "adopted")
    report = adoption.AdoptReport(
        doc.path, out, result.scale, result.changes, result.unmapped, result.findings, result.text, diff,
        warnings=warnings,
    )  # fmt: skip
    if result.unmapped:
        first = result.unmapped[0]
        why = f"layer {first.layer} {first.row} cannot be adopted: {first.why}; nothing was written"
        raise _with_report(NeedsAdoptionError(f"{doc.path}: {why}"), report)
    if not result.changes:
        report.output = None  # nothing to rewrite: the file already builds as written
        return report
    if out is not None:
        if out.suffix.lower() not in (".yaml", ".yml"):
            raise UsageError(f"-o {output}: the output must be a .yaml file")
        yamlio.check_output(out, force, inputs=(doc.path,))
    if verify:
        from attnsurgeon.verify import check_model_file

        report.checks, report.params = check_model_file(
            result.new_cfg, doc.stem, scales, imgsz, result.attention_layers
        )
        failed = [c for c in report.checks if c.ok is False]
        if failed:
            message = f"check '{failed[0].name}' failed: {failed[0].detail}; nothing was written"
            raise _with_report(VerificationError(message, report.checks), report)
    if out is not None:
        yamlio.write_atomic(out, result.text)
    return report


def _with_report(exc: AttnSurgeonError, report: adoption.AdoptReport) -> AttnSurgeonError:
    report.output = None  # nothing was written
    exc.report = report  # type: ignore[attr-defined]  # the CLI shows what was found before the one-line error
    return exc
