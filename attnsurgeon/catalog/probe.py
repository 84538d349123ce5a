"""The module contract's checks on one built module, each failure one line a user can act on (imports torch).

A foreign class (:mod:`attnsurgeon.catalog.foreign`) is probed before it goes into a model: ``insert`` refuses a class
that fails with this line, and ``list --source`` lists the classes of a library that pass. The sizes are the
contract's (``attnsurgeon check-module`` runs these and more on any module).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

CHANNELS = 64  # a channel count a YOLO model really feeds an attention layer (n scale: 64..256)
SIZES = ((1, 1), (7, 7), (8, 8), (15, 20), (20, 20), (40, 40), (80, 80))  # 7x7: odd; 15x20: P5 of 480x640
FIRST = ((20, 20), (15, 20))  # probed first: P5 at 640, and at a 480x640 rectangular validation batch


def _dims(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def shape_problem(x: Any, y: Any) -> str:
    """What a module's output ``y`` does wrong for input ``x`` ('' when it keeps the shape)."""
    import torch

    given = _dims(x.shape)
    if not isinstance(y, torch.Tensor):
        return (
            f"returns a {type(y).__name__} for input {given}: an attention module returns one tensor shaped like its "
            "input"
        )
    if tuple(y.shape) == tuple(x.shape):
        return ""
    got = f"output {_dims(y.shape)} for input {given}"
    if y.dim() == 4 and y.shape[2:] == x.shape[2:] and y.shape[1] != x.shape[1]:
        return f"{got}: the module changes the channel count; it cannot be inserted between layers"
    if y.dim() == 4 and y.shape[1] == x.shape[1] and y.shape[2:] != x.shape[2:]:
        return f"{got}: the module changes the stride; it cannot be inserted between layers"
    return f"{got}: the module changes the shape; it cannot be inserted between layers"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text.splitlines()[0]}" if text else exc.__class__.__name__


def problem(make: Callable[[], Any], channels: int = CHANNELS, full: bool = True) -> str:
    """The first contract failure of the module ``make()`` builds on ``channels`` channels ('' when it passes):
    shape kept at every size (``full``) or at 20x20 and 15x20, finite, bfloat16, gradients to every parameter and
    to the input, eval determinism."""
    import torch

    g = torch.Generator().manual_seed(0)
    try:
        torch.manual_seed(0)
        module = make().eval()
    except Exception as exc:
        return f"cannot be built on {channels} channels: {first_line(exc)}"
    sizes = [*FIRST, *(s for s in SIZES if s not in FIRST)] if full else list(FIRST)
    for size in sizes:
        x = torch.randn(1, channels, *size, generator=g)
        try:
            with torch.no_grad():
                y = module(x)
        except Exception as exc:
            return f"fails at {size[0]}x{size[1]}: {first_line(exc)}"
        bad = shape_problem(x, y)
        if bad:
            return bad
        if not torch.isfinite(y).all():
            return f"output has NaN or Inf at {size[0]}x{size[1]}"
    x = torch.randn(2, channels, 15, 20, generator=g)
    try:
        with torch.no_grad():
            a, b = module(x), module(x)
            half = module.to(torch.bfloat16)(x.to(torch.bfloat16))
        module.float()
    except Exception as exc:
        module.float()
        return f"fails in bfloat16: {first_line(exc)}"
    if half.dtype != torch.bfloat16 or half.shape != x.shape or not torch.isfinite(half.float()).all():
        return f"returns {half.dtype} {_dims(half.shape)} (or NaN/Inf) for bfloat16 {_dims(x.shape)}"
    if not torch.equal(a, b):
        return "two eval forwards of the same input differ (not deterministic)"
    return _gradient_problem(module.train(), x.requires_grad_(True))


def _gradient_problem(module: Any, x: Any) -> str:
    from attnsurgeon.catalog.gradients import gradient_faults

    try:
        module(x).square().mean().backward()
    except Exception as exc:
        return f"fails in a training step: {first_line(exc)}"
    faults = gradient_faults(
        [("the input", x.grad), *((n, p.grad) for n, p in module.named_parameters() if p.requires_grad)]
    )
    if faults.missing:
        return f"no gradient reaches {', '.join(faults.missing[:3])}: those parameters would never train"
    if dead := faults.non_finite + faults.zero:
        return f"all-zero or non-finite gradient at {', '.join(dead[:3])}"
    return ""
