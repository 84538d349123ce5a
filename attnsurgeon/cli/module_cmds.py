"""``attnsurgeon new-module`` and ``attnsurgeon check-module``: bring your own attention module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from attnsurgeon.cli._common import (
    channel_arg_option,
    console,
    emit_json,
    errors_to_exit,
    esc,
    plugin_option,
    stdout_to_stderr,
    with_plugins,
)
from attnsurgeon.cli._options import ArgsOpt


def register(app: typer.Typer) -> None:
    app.command(
        "new-module",
        help="Write a new attention module (a plugin file that already meets the module contract) and its test "
        "from attnsurgeon's template; never overwrites. Prints the next three commands.",
    )(new_module)
    app.command(
        "check-module",
        help="Run the module contract on a catalog or plugin module: shape kept over sizes and batches, float32 "
        "and bfloat16, gradients, eval determinism, reserved names, inside yolo11n at n and s (build, forward, "
        "train), ONNX parity, cost at C=256, 20x20. Exits non-zero when a check fails.",
    )(check_module)


@errors_to_exit
def new_module(
    name: str = typer.Argument(..., help="Class name of the new module, e.g. MyAttention."),
    directory: Path = typer.Option(Path("."), "--dir", "-d", help="Folder to write the two files into."),
    category: str = typer.Option(
        "channel",
        "--category",
        "-c",
        help="channel, spatial, channel+spatial, self-attention or convolutional attention.",
    ),
) -> None:
    from attnsurgeon.ops import scaffold as api

    made = api.new_module(name, directory, category)
    out = console()
    out.print(f"wrote [bold]{esc(made.module_file)}[/] and [bold]{esc(made.test_file)}[/]")
    out.print("next: edit forward() and the metadata, then run")
    for command in made.next_commands():
        out.print(f"  {esc(command)}")


@errors_to_exit
@with_plugins
def check_module(
    name: str | None = typer.Argument(
        None,
        help="Module name or alias, or a plain nn.Module class: FILE.py:ClassName, timm:CbamModule. Default: every "
        "module the --plugin files register.",
    ),
    no_models: bool = typer.Option(
        False, "--no-models", help="Skip the checks that build and train yolo11n (the slowest)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    plugin: list[Path] = plugin_option(),
    channel_arg: str | None = channel_arg_option(),
    args: ArgsOpt = None,
) -> None:
    from attnsurgeon.errors import UsageError, VerificationError
    from attnsurgeon.ops import scaffold as api
    from attnsurgeon.ops.surgery import parse_args_text
    from attnsurgeon.sources import named_classes

    with_channel = [named_classes.with_channel(str(p), channel_arg) for p in plugin]
    names = [named_classes.with_channel(name, channel_arg)] if name else api.plugin_module_names(with_channel)
    if not names:
        raise UsageError("name a module (attnsurgeon check-module SE) or give a plugin (--plugin my_module.py)")
    values = parse_args_text(args)
    results: dict[str, list[Any]] = {}
    for module in names:
        # --json: stdout is the JSON alone; what an exporter prints (a graph dump) goes to stderr
        with _status(f"checking {module}", enabled=not as_json), stdout_to_stderr(as_json):
            results[module] = api.check_module(module, models=not no_models, args=values)
    failed = [(m, c) for m, checks in results.items() for c in checks if c.ok is False]
    if as_json:
        emit_json({m: [c.as_dict() for c in checks] for m, checks in results.items()})
    else:
        for module, checks in results.items():
            _render(module, checks)
    if failed:
        module, first = failed[0]
        raise VerificationError(f"{len(failed)} check(s) failed; first: {module} {first.name}: {first.detail}")


def _status(text: str, enabled: bool) -> Any:
    import contextlib

    err = console(stderr=True)
    return err.status(text) if enabled and err.is_terminal else contextlib.nullcontext()


def _render(module: str, checks: list[Any]) -> None:
    from rich.table import Table

    passed = sum(c.ok is True for c in checks)
    failed = sum(c.ok is False for c in checks)
    table = Table(
        title=f"{esc(module)}: {passed} passed, {failed} failed, {len(checks) - passed - failed} skipped",
        title_justify="left",
    )
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("detail")
    for c in checks:
        mark = "[green]pass[/]" if c.ok else "[yellow]skip[/]" if c.ok is None else "[red]FAIL[/]"
        table.add_row(esc(c.name), mark, esc(c.detail))
    console().print(table)
