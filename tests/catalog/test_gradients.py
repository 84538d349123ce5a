"""The one gradient rule behind every training check: each parameter a backward left without a usable gradient is
named under what is wrong with it."""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.gradients import gradient_faults


class Faulty(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Parameter(torch.ones(3))
        self.unused = nn.Parameter(torch.ones(3))  # never in the graph
        self.nan = nn.Parameter(torch.zeros(3))  # sqrt'(0) = inf
        self.zeroed = nn.Parameter(torch.ones(3))  # multiplied by 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.used + self.nan.sqrt() + 0 * self.zeroed


def test_each_parameter_is_named_under_its_fault():
    module, x = Faulty(), torch.ones(3, requires_grad=True)
    module(x).sum().backward()
    faults = gradient_faults([("input", x.grad), *((n, p.grad) for n, p in module.named_parameters())])
    assert (faults.missing, faults.non_finite, faults.zero) == (["unused"], ["nan"], ["zeroed"])
    assert faults.labelled(zero="all-zero") == [
        ("no gradient", ["unused"]),
        ("non-finite gradient", ["nan"]),
        ("all-zero", ["zeroed"]),
    ]
    assert bool(faults)


def test_healthy_gradients_are_no_fault():
    layer, x = nn.Linear(3, 2), torch.randn(4, 3, requires_grad=True)
    layer(x).square().sum().backward()
    faults = gradient_faults([("input", x.grad), *((n, p.grad) for n, p in layer.named_parameters())])
    assert not faults and faults.labelled() == []
