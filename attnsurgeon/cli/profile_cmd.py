"""``attnsurgeon profile``: params, GFLOPs, exact FLOPs, latency, throughput, memory; per layer; against a base."""

from __future__ import annotations

from typing import Annotated, Any

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._common import console, emit_json, errors_to_exit, esc, fmt_int, imported_files, with_plugins
from attnsurgeon.cli._status_line import progress
from attnsurgeon.cli._tables import Col, Row, fit_table
from attnsurgeon.core.sizes import DEFAULT_IMGSZ

# Every figure whole; the share bar takes the room left (cut, never wrapped).
LAYER_COLUMNS = (
    Col("idx", "right", key=True),
    Col("module", key=True),
    Col("params", "right", key=True),
    Col("GFLOPs", "right", key=True),
    Col("ms", "right", key=True),
    Col("share", "right", key=True),
    Col("", cut=True),
)


def register(app: typer.Typer) -> None:
    app.command(
        "profile",
        help="Measure a model as Ultralytics deploys it (fused, eval): params, GFLOPs (as model.info() prints), "
        "exact FLOPs at the real input size, latency (median, p90, spread), throughput and peak CUDA memory; "
        "--layers per layer, --compare against a base model.",
    )(profile)


# profile's options, in the order --help lists them.
ProfileModelArg = Annotated[
    str,
    typer.Argument(
        autocompletion=_complete.models,
        help="Model YAML path, packaged Ultralytics name (yolo11n.yaml) or Ultralytics .pt checkpoint.",
    ),
]
ProfileDeviceOpt = Annotated[
    str,
    typer.Option("--device", "-d", autocompletion=_complete.devices, help="cpu, cuda, cuda:N or a CUDA index N."),
]
ProfileImgszOpt = Annotated[str, typer.Option("--imgsz", help="Image size: 640, or height,width like 480,640.")]
BatchOpt = Annotated[int, typer.Option("--batch", "-b", help="Images per forward pass (throughput counts them).")]
HalfOpt = Annotated[bool, typer.Option("--half", help="float16 inference (CUDA only).")]
RunsOpt = Annotated[
    int | None,
    typer.Option("--runs", help="Timed runs after warm-up. Default: up to 50 within a few seconds (at least 5)."),
]
CompareOpt = Annotated[
    str | None,
    typer.Option(
        "--compare",
        autocompletion=_complete.models,
        help="Base model to set side by side (YAML, packaged name or .pt), same settings.",
    ),
]
LayersOpt = Annotated[bool, typer.Option("--layers", help="Per-layer table: params, GFLOPs, ms and share of time.")]
ProfileScaleOpt = Annotated[
    str | None,
    typer.Option(
        "--scale",
        autocompletion=_complete.scales,
        help="Scale to build a YAML at (n/s/m/l/x). Default: the one in the file name.",
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Also export with Ultralytics to onnx, torchscript, openvino or ncnn (cached) and time it in its "
        "runtime, loaded as yolo predict loads it, beside the PyTorch figures (CPU; needs attnsurgeon[deploy]).",
    ),
]
ProfileJsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")]


@errors_to_exit
@with_plugins
def profile(
    model: ProfileModelArg,
    device: ProfileDeviceOpt = "cpu",
    imgsz: ProfileImgszOpt = str(DEFAULT_IMGSZ),
    batch: BatchOpt = 1,
    half: HalfOpt = False,
    runs: RunsOpt = None,
    compare: CompareOpt = None,
    layers: LayersOpt = False,
    scale: ProfileScaleOpt = None,
    format: FormatOpt = None,
    as_json: ProfileJsonOpt = False,
) -> None:
    from attnsurgeon.ops import profile as prof

    specs = [model] if compare is None else [model, compare]
    with progress(enabled=not as_json) as step:
        reports = prof.profile(
            specs, device=device, imgsz=imgsz, batch=batch, half=half, runs=runs, layers=layers, scale=scale,
            progress=step, format=format,
        )  # fmt: skip
    new = reports[0]
    base = reports[1] if compare is not None else None
    if as_json:
        _emit_json(new, base)
    else:
        _render(new, base)


def _emit_json(new: Any, base: Any | None) -> None:
    from attnsurgeon.ops import profile as prof

    payload = new.as_dict()
    if base is not None:
        payload["compare"] = {"base": base.as_dict(), "delta": prof.compare(new, base)}
    emit_json({**payload, "imported": imported_files()})  # the plugin and class files building it ran


def _gflops(value: float) -> str:
    """3 decimals, or 2 significant digits for what would round to 0.000 (an SE layer is ~1e-5 GFLOPs)."""
    if value == 0 or abs(value) >= 0.001:
        return f"{value:.3f}"
    return f"{value:.1e}"


def _pct(part: float, whole: float) -> str:
    share = part / whole * 100 if whole else 0.0
    return f"{share:.1f}%" if share == 0 or share >= 0.1 else f"{share:.1g}%"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.1f}"


def _rows(report: Any) -> list[tuple[str, float | None, str]]:
    """(label, number for differences, text) per figure."""
    lat = report.latency
    mem = report.memory_mb
    rows = _exported_rows(report)
    return [
        ("params", report.params, fmt_int(report.params)),
        ("GFLOPs (Ultralytics)", report.gflops.value, f"{report.gflops.value:.2f}"),
        ("GFLOPs (exact)", report.gflops_exact, f"{report.gflops_exact:.4f}"),
        ("latency median (ms)", lat.median, _ms(lat.median)),
        ("latency p90 (ms)", lat.p90, _ms(lat.p90)),
        ("range (ms)", None, f"{_ms(min(lat.samples_ms))}–{_ms(max(lat.samples_ms))}"),
        ("IQR (ms)", None, _ms(lat.iqr)),
        ("throughput (img/s)", report.throughput, f"{report.throughput:.1f}"),
        ("peak memory (MiB)", mem, "- (CUDA only)" if mem is None else f"{mem:.1f}"),
        *rows,
    ]


def _exported_rows(report: Any) -> list[tuple[str, float | None, str]]:
    """--format: the exported model's latency in its runtime."""
    lat = report.exported_latency
    if lat is None:
        return []
    fmt = report.exported.format
    throughput = report.batch / (lat.median / 1e3) if lat.median > 0 else float("inf")
    return [
        (f"{fmt} latency median (ms)", lat.median, _ms(lat.median)),
        (f"{fmt} latency p90 (ms)", lat.p90, _ms(lat.p90)),
        (f"{fmt} throughput (img/s)", throughput, f"{throughput:.1f}"),
    ]


def _delta(new: float | None, old: float | None, label: str) -> tuple[str, str]:
    if new is None or old is None:
        return "", ""
    diff = new - old
    if label == "params":
        text = f"{int(diff):+,}"
    elif label.startswith("latency"):
        text = f"{diff:+.2f}"
    elif label.startswith("GFLOPs") and diff and abs(diff) < 0.001:
        text = f"{diff:+.2e}"
    else:
        text = f"{diff:+.3f}" if abs(diff) < 10 else f"{diff:+,.1f}"
    pct = diff / old * 100 if old else None
    rel = "" if pct is None else f"{pct:+.1f}%" if pct == 0 or abs(pct) >= 0.1 else f"{pct:+.1g}%"
    return text, rel


def _render(new: Any, base: Any | None) -> None:
    from attnsurgeon.ops.profile import NOT_COUNTED

    out = console()
    err = console(stderr=True)
    for report in (new, base):
        for warning in report.warnings if report is not None else ():
            err.print(f"[yellow]warning:[/] {esc(report.model)}: {esc(warning)}")
    h, w = new.imgsz
    where = f"{new.device} ({new.device_name})"
    if new.device == "cpu":
        where += f", {new.threads} thread{'s' * (new.threads != 1)}"
    out.print(
        f"{where} · imgsz {h}x{w} · batch {new.batch} · {new.dtype} · "
        f"{'fused, ' if new.fused else ''}eval · {new.latency.runs} timed runs after {new.latency.warmup} warm-up"
    )
    if base is None:
        columns = (Col("", key=True), Col(esc(new.model), "right"))
        rows = [Row((label, text)) for label, _, text in _rows(new)]
        title = None  # the column header names the model
    else:
        columns = (Col("", key=True), *(Col(h, "right", key=True) for h in ("base", "new", "Δ", "Δ%")))
        rows = [
            Row((label, btext, ntext, *_delta(nv, bv, label)))
            for (label, nv, ntext), (_, bv, btext) in zip(_rows(new), _rows(base), strict=True)
        ]
        title = esc(f"{new.model} (new) vs {base.model} (base)")
    out.print(fit_table(out, columns, rows, title=title)[0])
    out.print(
        "[dim]GFLOPs (Ultralytics): what model.info() prints (batch 1). GFLOPs (exact): 2 × multiply-accumulates per "
        f"image at the real size, counted by torch on the deployed model; not counted: {NOT_COUNTED}.[/]"
    )
    if new.exported is not None:
        e = new.exported
        out.print(
            f"[dim]{e.format}: exported by Ultralytics at {h}x{w}, run by {e.runtime} {e.version} through AutoBackend "
            f"(as yolo predict loads it) in {e.precision}, {e.threads} thread{'s' * (e.threads != 1)}; "
            f"{'cached' if e.cached else 'exported now, cached'}: {esc(e.path)}[/]"
        )
    if new.layers is not None:
        _render_layers(new, out)


def _render_layers(report: Any, out: Any) -> None:
    rows = [
        Row(
            (
                str(layer.index),
                esc(_layer_label(layer)),
                fmt_int(layer.params),
                _gflops(layer.flops / 1e9),
                "-" if layer.ms is None else f"{layer.ms:.2f}",
                "-" if layer.share is None else f"{(layer.share or 0.0) * 100:.1f}%",
                "█" * round((layer.share or 0.0) * 40),
            ),
            style="bold magenta" if layer.attention or layer.inside else None,
        )
        for layer in report.layers
    ]
    title = esc(f"{report.model}: per layer (★ inserted attention, ◆ attention inside the block)")
    out.print(fit_table(out, LAYER_COLUMNS, rows, title=title)[0])
    attention = [layer for layer in report.layers if layer.attention]
    if attention:
        ms = sum(layer.ms or 0.0 for layer in attention)
        share = sum(layer.share or 0.0 for layer in attention)
        flops = sum(layer.flops for layer in attention)
        total = sum(layer.flops for layer in report.layers) or 1
        params = sum(layer.params for layer in attention)
        out.print(
            f"inserted attention ({len(attention)} layer{'s' * (len(attention) > 1)}): {ms:.2f} ms "
            f"({_pct(share, 1)} of layer time), {_gflops(flops / 1e9)} GFLOPs ({_pct(flops, total)}), "
            f"{params:,} params ({_pct(params, report.params)})"
        )
    _render_inside(report, out)
    out.print("[dim]Per-layer ms are medians over hooked runs (hooks add a little overhead); share is of their sum.[/]")


def _render_inside(report: Any, out: Any) -> None:
    """What the attention inside augmented blocks costs, out of the blocks' totals."""
    blocks = [layer for layer in report.layers if layer.inside]
    if not blocks:
        return
    total_ms = sum(layer.ms or 0.0 for layer in report.layers) or 1.0
    total_flops = sum(layer.flops for layer in report.layers) or 1
    for layer in blocks:
        inside = layer.inside
        ms = inside["ms"] or 0.0
        out.print(
            f"layer {layer.index}: {inside['count']} {inside['module']} inside {layer.module}: {ms:.2f} ms "
            f"({_pct(ms, layer.ms or 1.0)} of the block, {_pct(ms, total_ms)} of layer time), "
            f"{_gflops(inside['flops'] / 1e9)} GFLOPs ({_pct(inside['flops'], total_flops)}), "
            f"{inside['params']:,} params ({_pct(inside['params'], layer.params)} of the block)"
        )


def _layer_label(layer: Any) -> str:
    """``★ SE`` for an inserted attention layer, ``◆ C3k2+EMA×2`` for a block with attention inside."""
    if layer.inside:
        return f"◆ {layer.module}+{layer.inside['module']}×{layer.inside['count']}"
    return ("★ " if layer.attention else "") + layer.module
