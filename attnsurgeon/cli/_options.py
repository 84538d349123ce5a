"""The options every model-editing command shares, declared once, and the one object they become.

``insert``, ``remove``, ``replace``, ``augment`` and ``adopt`` take the same ``-o``, ``--force``, ``--scale``,
``--imgsz``, ``--no-verify``, ``--checks``, ``--device``, ``--dry-run``, ``--identity-init`` and ``--json``; each is an
``Annotated`` type here, and :func:`run_options` turns what was given into the frozen
:class:`~attnsurgeon.ops.run_options.RunOptions` the API and the pipeline take.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._report_view import AT_HELP, CHECKS_DEVICE_HELP, CHECKS_HELP, DRY_RUN_HELP, MODEL_HELP, SCALE_HELP
from attnsurgeon.core.sizes import DEFAULT_IMGSZ

if TYPE_CHECKING:
    from attnsurgeon.ops.run_options import RunOptions

F = TypeVar("F", bound=Callable[..., Any])


ModelArg = Annotated[str, typer.Argument(autocompletion=_complete.models, help=MODEL_HELP)]
ModuleOpt = Annotated[
    str,
    typer.Option(
        "--module",
        "-m",
        autocompletion=_complete.modules,
        help="Catalog module name ('attnsurgeon list' shows them), or a plain nn.Module class as its authors wrote "
        "it: FILE.py:ClassName, timm:CbamModule, ultralytics:CBAM ('attnsurgeon list --source timm').",
    ),
]
ArgsOpt = Annotated[
    str | None,
    typer.Option(
        "--args",
        help='Module hyper-parameters as a YAML list, e.g. "[2, 1]"; a plain nn.Module class also takes them by '
        'keyword, "{reduction: 8, kernel_size: 7}" or "[8, {kernel_size: 7}]". Default: the module defaults.',
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite the output file if it exists.")]
IdentityInitOpt = Annotated[
    bool,
    typer.Option(
        "--identity-init",
        help="Start the new layer as the identity: the row becomes [IdentityInit, [Module, args]], "
        "x + gamma * (M(x) - x) with gamma = 0, so a checkpoint's outputs are unchanged until training moves gamma.",
    ),
]
ScaleOpt = Annotated[str | None, typer.Option("--scale", autocompletion=_complete.scales_or_all, help=SCALE_HELP)]
ImgszOpt = Annotated[int, typer.Option("--imgsz", help="Square image size for the checks and GFLOPs.")]
NoVerifyOpt = Annotated[
    bool, typer.Option("--no-verify", help="Skip building and checking the model (no torch import).")
]
ChecksOpt = Annotated[str | None, typer.Option("--checks", autocompletion=_complete.checks, help=CHECKS_HELP)]
DeviceOpt = Annotated[str, typer.Option("--device", autocompletion=_complete.devices, help=CHECKS_DEVICE_HELP)]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help=DRY_RUN_HELP)]
AtOpt = Annotated[list[str], typer.Option("--at", autocompletion=_complete.positions, help=AT_HELP)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")]


# The shared options in the order --help lists them; each maps to a RunOptions field (no_verify: verify=False).
SHARED: dict[str, tuple[Any, Any]] = {
    "force": (ForceOpt, False),
    "identity_init": (IdentityInitOpt, False),
    "scale": (ScaleOpt, None),
    "imgsz": (ImgszOpt, DEFAULT_IMGSZ),
    "no_verify": (NoVerifyOpt, False),
    "checks": (ChecksOpt, None),
    "device": (DeviceOpt, "cpu"),
    "dry_run": (DryRunOpt, False),
}


def with_run_options(output_default: str, *names: str, output_help: str | None = None) -> Callable[[F], F]:
    """Give a command ``-o`` and the shared options ``names`` (all of :data:`SHARED` when none are named), and hand
    it one ``options: RunOptions`` built from them instead; the command's own parameters stay as declared.

    The options take the place of the command's ``options`` parameter in ``--help``.
    """
    chosen = names or tuple(SHARED)
    output_type = Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help=output_help or f"Output YAML, or .pt for a checkpoint (default: {output_default})."
        ),
    ]
    added = [inspect.Parameter("output", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=output_type)]
    added += [
        inspect.Parameter(
            name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=SHARED[name][1], annotation=SHARED[name][0]
        )
        for name in chosen
    ]

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)
        params = list(signature.parameters.values())
        at = [p.name for p in params].index("options")
        params[at : at + 1] = added

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in ("output", *chosen)}
            return fn(*args, options=run_options(**given), **kwargs)

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def run_options(*, no_verify: bool = False, **fields: Any) -> RunOptions:
    """The options object of one command line (``--no-verify`` is ``verify=False``)."""
    from attnsurgeon.ops.run_options import RunOptions

    return RunOptions(verify=not no_verify, **fields)
