"""What every command shares: the error boundary, JSON output, the Rich console."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import typer
from typer.core import TyperCommand, TyperGroup

from attnsurgeon.errors import AttnSurgeonError

F = TypeVar("F", bound=Callable[..., Any])
# The position names (attnsurgeon.core.positions.POSITION_NAMES), written out here so --help imports no surgery code;
# a test keeps the two equal.
POSITIONS_HELP = (
    "heads, backbone-end, sppf, before-sppf, p3, p4, p5, every:MODULE, backbone:every:MODULE, head:every:MODULE"
)
INTERNAL_ERROR = 70  # EX_SOFTWARE


@dataclass
class _State:
    debug: bool = False


STATE = _State(debug=bool(os.environ.get("ATTNSURGEON_DEBUG")))


def print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"attnsurgeon {version('attnsurgeon')}")
        raise typer.Exit()


PIPED_WIDTH = 200  # no terminal at all (CI, captured output): do not squeeze tables into Rich's default 80


def output_width(stream: Any) -> int | None:
    """Columns to render ``stream`` for.

    ``COLUMNS`` when set (scripts, tests); the terminal's own when ``stream`` is one (Rich asks it); when piped
    (``attnsurgeon list | less``) the width of the terminal stderr still shows, so the table fits the screen it is
    read on; with no terminal anywhere, PIPED_WIDTH.
    """
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if stream.isatty():
        return None
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return PIPED_WIDTH


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=output_width(stream))


def fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def errors_to_exit(fn: F) -> F:
    """The one place errors are caught: a one-line message and the error's exit code, a traceback only with --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except AttnSurgeonError as exc:
            if STATE.debug:
                traceback.print_exc(file=sys.stderr)
            on_error = getattr(exc, "render", None)
            if callable(on_error):
                on_error()
            raise fail(" ".join(str(exc).split("\n")), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted; nothing was written", 130) from None
        except Exception as exc:
            if STATE.debug:
                traceback.print_exc(file=sys.stderr)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise fail(
                f"internal error: {exc.__class__.__name__}: {first} (rerun with --debug for the traceback)",
                INTERNAL_ERROR,
            ) from None

    return wrapper  # type: ignore[return-value]


PLUGIN_HELP = (
    "A Python file whose classes register attention modules with @register_module (attnsurgeon new-module writes "
    "one), or a plain nn.Module class as its authors wrote it: FILE.py:ClassName, or FILE.py for every class with a "
    "channel argument; repeatable. Read with ast; the file runs only when a model is built with its classes. Naming "
    "a file here also lets a model YAML list it from outside the YAML's folder. Installed packages' modules "
    "(entry-point group attnsurgeon.modules) need no flag."
)
CHANNEL_ARG_HELP = (
    "The constructor parameter of a plain nn.Module class (--plugin FILE.py:ClassName, --module timm:Class) that "
    "takes the input channels. Default: the first one named like channel, channels, in_channels, in_planes, dim, c1."
)


LAYOUT_HELP = (
    "How a plain nn.Module class (-m FILE.py:Class) takes a feature map, when not as (B, C, H, W): tokens "
    "(B, H*W, C), as vision transformers' attention does; channels-last (B, H, W, C); qkv (the tokens given three "
    "times, forward(q, k, v), for self-attention). The adapter folds the map to it and back; the YAML records it "
    "(FILE.py:Class?layout=tokens), so every process builds it the same way."
)


def channel_arg_option() -> Any:
    return typer.Option(None, "--channel-arg", help=CHANNEL_ARG_HELP, metavar="NAME")


def layout_option() -> Any:
    return typer.Option(None, "--layout", help=LAYOUT_HELP, metavar="tokens|channels-last|qkv")


def plugin_option() -> Any:
    return typer.Option([], "--plugin", help=PLUGIN_HELP, metavar="PATH.py")


def with_plugins(fn: F) -> F:
    """Give a command a repeatable ``--plugin PATH.py`` option: the files join the catalog before the command runs.

    Use it under :func:`errors_to_exit` (a broken plugin is a one-line error)::

        @errors_to_exit
        @with_plugins
        def command(...) -> None: ...

    A command that reads the paths itself declares ``plugin: list[Path] = plugin_option()``; it receives them.
    """
    # eval_str: the signature set below is read as is, so string annotations (Annotated options) are resolved here
    signature = inspect.signature(fn, eval_str=True)
    own = "plugin" in signature.parameters
    option = inspect.Parameter("plugin", inspect.Parameter.KEYWORD_ONLY, default=plugin_option(), annotation=list[Path])

    @functools.wraps(fn)
    def wrapper(*args: Any, plugin: list[Path] | None = None, **kwargs: Any) -> Any:
        refuse_unused_channel_arg(kwargs.get("channel_arg"), kwargs.get("module") or kwargs.get("name"), plugin)
        use_plugins(plugin or [], kwargs.get("channel_arg"))  # --channel-arg: of the commands that declare it
        try:
            return fn(*args, **kwargs, **({"plugin": plugin or []} if own else {}))
        finally:
            show_plugin_warnings()

    if not own:
        parameters = [*signature.parameters.values(), option]
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {**fn.__annotations__, "plugin": list[Path]}
    return wrapper  # type: ignore[return-value]


def refuse_unused_channel_arg(channel_arg: str | None, module: str | None, plugin: list[Path] | None) -> None:
    """``--channel-arg`` names a parameter of a plain class; with none on the line it would be dropped unseen."""
    if channel_arg is None:
        return
    from attnsurgeon.errors import UsageError
    from attnsurgeon.sources import named_classes

    texts = [str(p) for p in plugin or []] + ([str(module)] if module else [])
    if not any(named_classes.with_channel(t, channel_arg) != t or named_classes.is_source(t) for t in texts):
        raise UsageError(
            f"--channel-arg {channel_arg}: no plain nn.Module class on the command line to give it to; it is for "
            "-m FILE.py:Class, -m timm:Class or --plugin FILE.py:Class (catalog modules know their channel argument)"
        )


def use_plugins(paths: list[Path], channel_arg: str | None = None) -> None:
    """Add plugin files to the catalog (torch-free; a plain nn.Module class imports torch) and show the warnings of
    broken installed plugins."""
    from attnsurgeon import sources
    from attnsurgeon.catalog import REGISTRY

    if channel_arg is not None:  # only then: the plain-class sources import torch-free but cost a few ms
        from attnsurgeon.sources import named_classes

        sources.add_files([named_classes.with_channel(str(p), channel_arg) for p in paths])
    else:
        sources.add_files(paths)
    REGISTRY.specs()  # discovers installed (entry-point) plugins; a broken one is a warning, not an error
    show_plugin_warnings()


_SHOWN_WARNINGS: set[str] = set()


def show_plugin_warnings() -> None:
    from attnsurgeon.catalog import REGISTRY

    for warning in REGISTRY.plugin_warnings:
        if warning not in _SHOWN_WARNINGS:
            _SHOWN_WARNINGS.add(warning)
            console(stderr=True).print(f"[yellow]warning:[/] {esc(warning)}")


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool = True) -> Iterator[None]:
    """While a ``--json`` command works, whatever it or a library prints on stdout (Python's or the C level's, as
    torch's exporter does) goes to stderr, so stdout holds the JSON alone."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def imported_files() -> list[str]:
    """The plugin and class files this process imported (their code ran), for a report's ``imported``; imported
    here, not at the top, so --help loads nothing of the catalog."""
    from attnsurgeon.sources.file_import import imported

    return imported()


def emit_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


def fmt_int(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def fmt_delta(new: float, old: float, digits: int = 0) -> str:
    diff = new - old
    rel = f" ({diff / old * 100:+.1f}%)" if old else ""
    body = f"{diff:+,.{digits}f}" if digits else f"{int(diff):+,}"
    return body + rel


def esc(value: Any) -> str:
    """Text for Rich output: brackets such as ``[nc]`` or ``[input]`` would otherwise be read as markup and vanish."""
    from rich.markup import escape

    return escape(str(value))


def from_text(value: Any) -> str:
    """A ``from`` or args list as the YAML writes it, escaped for Rich."""
    if isinstance(value, list):
        return esc("[" + ", ".join(str(v) for v in value) + "]")
    return esc(value)


@contextlib.contextmanager
def _help_as_text(objects: list[Any]) -> Iterator[None]:
    """The help of ``objects`` (a command, its parameters, a group's commands) escaped while Typer renders it with Rich:
    help texts are plain text, and Rich would read ``[cam]`` in ``pip install 'attnsurgeon[cam]'`` as markup. Only for
    the rendering: completion and the objects themselves keep the text as written."""
    kept = [(o, o.help) for o in objects if isinstance(getattr(o, "help", None), str)]
    for o, text in kept:
        o.help = esc(text)
    try:
        yield
    finally:
        for o, text in kept:
            o.help = text


class TextHelpCommand(TyperCommand):
    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _help_as_text([self, *self.params]):
            super().format_help(ctx, formatter)


class TextHelpGroup(TyperGroup):
    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _help_as_text([self, *self.params, *self.commands.values()]):
            super().format_help(ctx, formatter)
