"""``attnsurgeon sweep``: every module x position made, checked, costed (and trained), in one table and plots."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._common import errors_to_exit, fail, with_plugins
from attnsurgeon.cli._sweep_view import progress_bar, render_result, render_warnings
from attnsurgeon.core.sizes import DEFAULT_IMGSZ

FAILED_EXIT = 9  # as VerificationError: some variant failed a check or its training
PARETO_AXES = ("gflops", "latency_ms", "params")


def register(app: typer.Typer) -> None:
    app.command(
        "sweep",
        help="Make every variant (module x position x args), verify and cost each (params, GFLOPs, exact FLOPs, "
        "latency), optionally train each with Ultralytics (--train), and compare them: results.csv/json, a table "
        "with the Pareto-optimal variants marked, plots. A rerun skips what is done.",
    )(sweep)


# sweep's options, in the order --help lists them.
SweepModelArg = Annotated[
    str,
    typer.Argument(
        autocompletion=_complete.models, help="Model YAML path or packaged Ultralytics name (yolo11n.yaml)."
    ),
]
ModulesOpt = Annotated[
    str, typer.Option("--modules", "-m", help="Catalog modules: SE,CBAM,EMA | all | category:channel (mixable).")
]
SweepAtOpt = Annotated[
    list[str],
    typer.Option(
        "--at",
        "-a",
        help="Positions: layer indices (8,10), 4+6+8 for one variant with three layers, or named "
        "positions (heads, sppf, every:C3k2) where available; repeatable.",
    ),
]
OutputOpt = Annotated[
    Path, typer.Option("--output", "-o", help="Directory for the variants' YAMLs, results and plots.")
]
OpOpt = Annotated[
    str,
    typer.Option(
        "--op",
        help="insert: a layer after the position; augment: attention inside "
        "the block at the position (where this version has augment).",
    ),
]
ArgsGridOpt = Annotated[
    list[str],
    typer.Option(
        "--args-grid", help='Hyper-parameter sets per module, e.g. "SE=[8]|[16]"; repeatable. Default: defaults.'
    ),
]
SweepScaleOpt = Annotated[
    str | None,
    typer.Option(
        "--scale", autocompletion=_complete.scales, help="Scale n/s/m/l/x. Default: the one in the file name."
    ),
]
SweepImgszOpt = Annotated[int, typer.Option("--imgsz", help="Square image size for checks and costs (and training).")]
DevicesOpt = Annotated[
    str,
    typer.Option(
        "--device",
        "-d",
        help="cpu, cuda, N; training: several, 0,1,2,3 (one "
        "variant per device at a time). Costs are measured on the first.",
    ),
]
SweepChecksOpt = Annotated[
    str,
    typer.Option(
        "--checks",
        help="layer: insert's checks on each new layer at the shapes "
        "it sees in the model (fast); model: insert's whole-model checks.",
    ),
]
LatencyOpt = Annotated[
    str,
    typer.Option(
        "--latency", help="delta: base latency + the new layers timed alone; full: every variant timed whole."
    ),
]
RunsOpt = Annotated[
    int | None,
    typer.Option(
        "--runs",
        help="Timed runs of the base (and of each variant with --latency full). Default: as many as fit in about a "
        "second (the base), as profile does (--latency full).",
    ),
]
TrainOpt = Annotated[Path | None, typer.Option("--train", help="Ultralytics data.yaml: train every variant on it.")]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="Training epochs per variant.")]
BatchOpt = Annotated[int, typer.Option("--batch", "-b", help="Training batch size.")]
TrainImgszOpt = Annotated[int | None, typer.Option("--train-imgsz", help="Training image size. Default: --imgsz.")]
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        "--weights",
        help="Start every variant from this .pt (checkpoint surgery), the base included, so the comparison is fair.",
    ),
]
SweepIdentityInitOpt = Annotated[
    bool,
    typer.Option("--identity-init/--no-identity-init", help="With --weights: new layers start as the identity."),
]
FormatsOpt = Annotated[
    str | None,
    typer.Option(
        "--formats",
        help="Also export every variant to these formats (onnx,torchscript,openvino,ncnn), check it there and time "
        "it in the runtime against the base's export: pass/fail and latency ratio per format.",
    ),
]
RetryFailedOpt = Annotated[bool, typer.Option("--retry-failed", help="Redo rows that failed in an earlier run.")]
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        help="Train on Ray Tune, one trial per variant: 'local' starts a "
        "local Ray, or give a cluster address (auto, ray://host:10001).",
    ),
]
GpusPerTrialOpt = Annotated[float, typer.Option("--gpus-per-trial", help="Ray: GPUs per trial.")]
CpusPerTrialOpt = Annotated[float, typer.Option("--cpus-per-trial", help="Ray: CPUs per trial.")]
AshaOpt = Annotated[bool, typer.Option("--asha", help="Ray: stop weak trials early (ASHA on mAP50-95).")]
SortOpt = Annotated[
    str | None,
    typer.Option(
        "--sort",
        help="Sort by params, gflops, gflops_exact, latency_ms, mAP50, mAP50-95, precision, recall. "
        "Default: mAP50-95 once trained, else gflops.",
    ),
]
ParetoOpt = Annotated[
    str,
    typer.Option("--pareto", help="Cost axis of the Pareto front against mAP50-95: gflops, latency_ms or params."),
]
MarkdownOpt = Annotated[bool, typer.Option("--markdown", help="Print the table as Markdown (for papers and READMEs).")]
PlotsOpt = Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots into OUTPUT/plots.")]
SweepJsonOpt = Annotated[bool, typer.Option("--json", help="Print the rows as JSON; progress as plain lines.")]


@errors_to_exit
@with_plugins
def sweep(
    model: SweepModelArg,
    modules: ModulesOpt,
    at: SweepAtOpt,
    output: OutputOpt,
    op: OpOpt = "insert",
    args_grid: ArgsGridOpt = [],  # noqa: B006 (Typer hands every call a list of its own)
    scale: SweepScaleOpt = None,
    imgsz: SweepImgszOpt = DEFAULT_IMGSZ,
    device: DevicesOpt = "cpu",
    checks: SweepChecksOpt = "layer",
    latency: LatencyOpt = "delta",
    runs: RunsOpt = None,
    train: TrainOpt = None,
    epochs: EpochsOpt = 1,
    batch: BatchOpt = 16,
    train_imgsz: TrainImgszOpt = None,
    weights: WeightsOpt = None,
    identity_init: SweepIdentityInitOpt = True,
    formats: FormatsOpt = None,
    retry_failed: RetryFailedOpt = False,
    ray: RayOpt = None,
    gpus_per_trial: GpusPerTrialOpt = 0.0,
    cpus_per_trial: CpusPerTrialOpt = 1.0,
    asha: AshaOpt = False,
    sort: SortOpt = None,
    pareto: ParetoOpt = "gflops",
    markdown: MarkdownOpt = False,
    plots: PlotsOpt = True,
    as_json: SweepJsonOpt = False,
) -> None:
    from attnsurgeon.sweeps import runner as sweep_mod

    _check_choices(sort, pareto)
    job = sweep_mod.start(
        sweep_mod.SweepPlan(
            model, modules, at, output, op=op, args_grid=args_grid, scale=scale, imgsz=imgsz,
            device=device.split(",")[0], checks=checks, latency=latency, runs=runs, train=train, epochs=epochs,
            batch=batch, train_imgsz=train_imgsz, train_device=device if train is not None else None, weights=weights,
            identity_init=identity_init, formats=formats,
        )
    )  # fmt: skip
    render_warnings(job.warnings)
    with _kept_when_interrupted(job), progress_bar(plain=as_json) as step:
        sweep_mod.run(job, retry_failed, _ray_value(ray), gpus_per_trial, cpus_per_trial, asha, step)
    rows = job.rows()
    render_result(job, rows, _write_plots(job, rows) if plots else [], sort, pareto, markdown, as_json)
    _fail_if_any_failed(job.failed, len(rows))


def _check_choices(sort: str | None, pareto: str) -> None:
    """--sort and --pareto name a metric the rows have, before any variant is made."""
    from attnsurgeon.sweeps.store import METRICS

    for value, option, allowed in ((sort, "--sort", METRICS), (pareto, "--pareto", PARETO_AXES)):
        if value is not None and value not in allowed:
            raise fail(f"{option} {value!r}: use one of {', '.join(allowed)}", 2)


def _ray_value(ray: str | None) -> str | bool | None:
    if ray is None:
        return None
    return True if ray.strip().lower() in ("", "local") else ray


@contextlib.contextmanager
def _kept_when_interrupted(job: Any) -> Iterator[None]:
    """Ctrl-C: say how many rows are kept (a rerun goes on from them) and exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        kept = len(job.rows())
        raise fail(
            f"interrupted; {kept} row(s) kept in {job.directory / 'results.csv'}; rerun to finish", 130
        ) from None


def _write_plots(job: Any, rows: list[dict[str, Any]]) -> list[Path]:
    from attnsurgeon.sweeps.plot import write_plots

    return write_plots(rows, job.directory)


def _fail_if_any_failed(failed: list[dict[str, Any]], total: int) -> None:
    if failed:
        names = ", ".join(r["name"] for r in failed[:5]) + (" ..." if len(failed) > 5 else "")
        raise fail(f"{len(failed)} of {total} variants failed ({names}); see the reason column", FAILED_EXIT)
