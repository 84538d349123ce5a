"""What one backward pass left each parameter: no gradient, a non-finite one, or an exactly-zero one.

The one rule behind every training check (a catalog probe, the module contract, insert's per-layer check and the
model's train step); each words the result for its own report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch


@dataclass
class GradientFaults:
    missing: list[str] = field(default_factory=list)  # autograd never reached it: it would never train
    non_finite: list[str] = field(default_factory=list)
    zero: list[str] = field(default_factory=list)  # reached, but exactly zero on this batch

    def __bool__(self) -> bool:
        return bool(self.missing or self.non_finite or self.zero)

    def labelled(self, zero: str = "zero gradient") -> list[tuple[str, list[str]]]:
        """(what is wrong, names) for each kind found, worst first."""
        found = [("no gradient", self.missing), ("non-finite gradient", self.non_finite), (zero, self.zero)]
        return [(what, names) for what, names in found if names]


def gradient_faults(grads: Iterable[tuple[str, torch.Tensor | None]]) -> GradientFaults:
    """Sort ``(name, grad)`` pairs (``x.grad``, ``p.grad``) by what is wrong with them; the good ones are left out."""
    faults = GradientFaults()
    for name, grad in grads:
        if grad is None:
            faults.missing.append(name)
        elif not torch.isfinite(grad).all():
            faults.non_finite.append(name)
        elif grad.abs().sum() == 0:
            faults.zero.append(name)
    return faults
