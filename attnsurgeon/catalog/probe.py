"""The module contract's checks on one built module, proportionate to the model it goes into (imports torch).

A foreign class (:mod:`attnsurgeon.sources.adapter`) is probed before it goes into a model: ``insert``
refuses a class
that breaks the model at the sizes the model meets, naming every failure, worst first; a failure only at smaller
sizes is a warning naming the smallest size that works. ``list --source`` lists the classes of a library that pass.

The sizes a YOLO model meets at ``imgsz`` 640 (every attention layer sits at P3, P4 or P5): 80x80, 40x40 and 20x20,
60x80, 30x40 and 15x20 for a 480x640 rectangular validation batch, and 32x32, 16x16, 8x8 in the 256x256 pass that
finds the strides. Smaller sizes (1x1, 7x7, ...) are met only at a smaller ``imgsz``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

CHANNELS = 64  # a channel count a YOLO model really feeds an attention layer (n scale: 64..256)
OTHER_WIDTH = 96  # a second width: a class that only works at one width (a hard-coded default) is caught
MODEL_SIZES = ((20, 20), (15, 20), (8, 8), (40, 40), (30, 40), (16, 16), (32, 32), (80, 80), (60, 80))
SMALL_SIZES = ((1, 1), (1, 2), (2, 2), (4, 4), (7, 7))  # met only below imgsz 256: a failure here is a warning
SIZES = ((1, 1), (7, 7), (8, 8), (15, 20), (20, 20), (40, 40), (80, 80))  # the catalog contract's (check-module)
FIRST = ((20, 20), (15, 20))  # probed first: P5 at 640, and at a 480x640 rectangular validation batch
# Ranks of a failure, worst first: it cannot be built; it breaks the forward at a size the model meets; numbers go
# wrong (bfloat16, batch dependence, nondeterminism); training goes wrong (a dead parameter).
BUILD, FORWARD, NUMBERS, TRAINING = range(4)


@dataclass
class Probe:
    """What the probe found: ``refusals`` (rank, line) break the model; ``warnings`` do not (a size it never meets
    at ``imgsz`` 640, a gradient that is zero only at initialisation)."""

    refusals: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        """Every refusal in one line, worst first ('' when it passes)."""
        return "; ".join(text for _, text in sorted(self.refusals, key=lambda r: r[0]))


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
    """Every failure of the module ``make()`` builds that breaks a model, worst first, in one line ('' when it
    passes); ``full`` False probes only 20x20 and 15x20 (a cheap screen)."""
    return run(make, channels, full).line()


def run(make: Callable[[], Any], channels: int = CHANNELS, full: bool = True,
        widths: Callable[[int], Any] | None = None) -> Probe:  # fmt: skip
    """Probe the module ``make()`` builds on ``channels`` channels: the shape kept and finite at every size the
    model meets (``full``), bfloat16, one image's output independent of the rest of its batch in eval, eval
    determinism, and a gradient to every parameter that stays alive after an optimizer step. ``widths(c)`` builds
    it on ``c`` channels, to check a second width."""
    import torch

    found = Probe()
    try:
        torch.manual_seed(0)
        module = make().eval()
    except Exception as exc:
        found.refusals.append((BUILD, f"cannot be built on {channels} channels: {first_line(exc)}"))
        return found
    _sizes(module, channels, MODEL_SIZES if full else FIRST, found)
    if full:
        _small_sizes(module, channels, found)
        if widths is not None and not found.refusals:  # another width says more only where this one works
            _other_width(widths, found)
    if any(rank <= FORWARD for rank, _ in found.refusals):
        return found  # numbers and training of a module whose forward breaks say nothing more
    x = torch.randn(2, channels, 15, 20, generator=torch.Generator().manual_seed(1))
    _numbers(module, x, found)
    _training(module.train(), x.clone().requires_grad_(True), found)
    return found


def forward_problem(module: Any, channels: int, size: tuple[int, int], seed: int = 0) -> str:
    """What goes wrong in one forward of ``module`` on a ``channels`` x ``size`` input ('' when nothing)."""
    import torch

    x = torch.randn(1, channels, *size, generator=torch.Generator().manual_seed(seed))
    try:
        with torch.no_grad():
            y = module(x)
    except Exception as exc:
        return f"fails at {size[0]}x{size[1]}: {first_line(exc)}"
    bad = shape_problem(x, y)
    if bad:
        return bad
    return "" if torch.isfinite(y).all() else f"output has NaN or Inf at {size[0]}x{size[1]}"


def _sizes(module: Any, channels: int, sizes: Sequence[tuple[int, int]], found: Probe) -> None:
    seen: set[str] = set()
    for size in sizes:
        why = forward_problem(module, channels, size)
        kind = re.sub(r"\d+(x\d+)+", "", why)  # one line per kind of failure, at the first size it shows
        if why and kind not in seen:
            seen.add(kind)
            found.refusals.append((FORWARD, why))


def _small_sizes(module: Any, channels: int, found: Probe) -> None:
    """Sizes met only below ``imgsz`` 256: a failure is a warning naming the smallest size that works."""
    failing = [(s, why) for s in SMALL_SIZES if (why := forward_problem(module, channels, s))]
    if not failing:
        return
    working = [s for s in (*SMALL_SIZES, *sorted(MODEL_SIZES)) if s not in dict(failing)]
    smallest = f"{working[0][0]}x{working[0][1]}" if working else "none"
    why = failing[0][1]
    found.warnings.append(
        f"fails below the sizes a model meets at imgsz 640 ({why}); the smallest size that works is {smallest}, so "
        "train and validate at an imgsz that keeps every feature map at least that large"
    )


def _other_width(widths: Callable[[int], Any], found: Probe) -> None:
    try:
        module = widths(OTHER_WIDTH).eval()
    except Exception as exc:
        found.refusals.append((BUILD, f"cannot be built on {OTHER_WIDTH} channels: {first_line(exc)}"))
        return
    why = forward_problem(module, OTHER_WIDTH, (20, 20))
    if why:
        found.refusals.append((FORWARD, f"on {OTHER_WIDTH} channels: {why}"))


def second_image_changed(x: Any) -> Any:
    """``x`` (a batch of two) with its second image replaced: what batch independence feeds the module."""
    import torch

    other = x.clone()
    other[1] = torch.randn(other[1].shape, generator=torch.Generator().manual_seed(2))
    return other


def batch_moved(first: Any, changed: Any) -> float:
    """How far image 0's output moved (``first`` vs ``changed``, the outputs of :func:`second_image_changed`'s two
    batches) beyond rounding; 0.0 when it did not."""
    import torch

    scale = float(first[0].abs().max()) or 1.0
    if torch.allclose(first[0], changed[0], rtol=1e-4, atol=1e-5 * scale):
        return 0.0
    return float((first[0] - changed[0]).abs().max())


def _numbers(module: Any, x: Any, found: Probe) -> None:
    """bfloat16, eval determinism, and batch independence: one image's output must not change with its batch."""
    import torch

    other = second_image_changed(x)
    try:
        with torch.no_grad():
            a, b, mixed = module(x), module(x), module(other)
            half = module.to(torch.bfloat16)(x.to(torch.bfloat16))
        module.float()
    except Exception as exc:
        module.float()
        found.refusals.append((NUMBERS, f"fails in bfloat16: {first_line(exc)}"))
        return
    if half.dtype != torch.bfloat16 or half.shape != x.shape or not torch.isfinite(half.float()).all():
        found.refusals.append((NUMBERS, f"returns {half.dtype} {_dims(half.shape)} (or NaN/Inf) for bfloat16 "
                                        f"{_dims(x.shape)}"))  # fmt: skip
    if not torch.equal(a, b):
        found.refusals.append((NUMBERS, "two eval forwards of the same input differ (not deterministic)"))
    if batch_moved(a, mixed):
        found.refusals.append(
            (NUMBERS, "in eval, one image's output changes with the other images of its batch (a softmax or a "
                      "statistic over the batch axis?): a detector's predictions must not depend on its batch")
        )  # fmt: skip


def _training(module: Any, x: Any, found: Probe) -> None:
    """A gradient reaches every parameter and the input; one that is exactly zero must come alive after one optimizer
    step (a gate initialised to zero, as some references do), else the parameter is dead."""
    import torch

    from attnsurgeon.catalog.gradients import gradient_faults

    def step() -> Any:
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).square().mean().backward()
        return gradient_faults(
            [("the input", x.grad), *((n, p.grad) for n, p in module.named_parameters() if p.requires_grad)]
        )

    try:
        faults = step()
        if faults.zero and not (faults.missing or faults.non_finite):
            torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=0.1).step()
            after = step()
            dead = [n for n in faults.zero if n in after.zero]
            if not dead:
                names = ", ".join(faults.zero[:3])
                found.warnings.append(f"zero gradient at initialisation only ({names}): alive after one step")
            faults.zero = dead
    except Exception as exc:
        found.refusals.append((TRAINING, f"fails in a training step: {first_line(exc)}"))
        return
    if faults.missing:
        names = ", ".join(faults.missing[:3])
        found.refusals.append((TRAINING, f"no gradient reaches {names}: those parameters would never train"))
    if faults.non_finite:
        found.refusals.append((TRAINING, f"non-finite gradient at {', '.join(faults.non_finite[:3])}"))
    if faults.zero:
        found.refusals.append(
            (TRAINING, f"exactly zero gradient at {', '.join(faults.zero[:3])}, before and after an optimizer step: "
                       "a dead parameter")
        )  # fmt: skip
