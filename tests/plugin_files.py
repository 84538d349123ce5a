"""Modules a test registers as a user would: ``register_module``'s paper fields for a class defined in place, and
the source of a plugin file. A module of its own, not the conftest: the rooms' conftests share the name
``conftest``, so ``from conftest import ...`` would get whichever one pytest loaded last."""

from __future__ import annotations


def module_meta(**extra):
    """register_module's paper fields for a module a test defines in place (``@register_module(**module_meta())``)."""
    return dict(
        category="spatial",
        paper="test",
        venue="test",
        year=2024,
        link="https://example.org",
        reference="https://example.org",
        **extra,
    )


PLUGIN_HEADER = '''"""A plugin written by a test."""

import torch
from attnsurgeon.catalog import register_module
from attnsurgeon.catalog.base import AttentionModule

'''
PLUGIN_META = (
    'category="channel", paper="Squeeze-and-Excitation Networks", venue="CVPR", year=2018, '
    'link="https://arxiv.org/abs/1709.01507", reference="https://github.com/hujie-frank/SENet"'
)


def gate_plugin(
    name: str = "TestGate", extra: str = "", init: str = "c1: int, reduction: int = 4", body: str = ""
) -> str:
    """Source of a plugin file registering one channel-gate module (``body`` replaces the forward's return)."""
    return (
        PLUGIN_HEADER
        + f'''
@register_module({PLUGIN_META}{extra})
class {name}(AttentionModule):
    """A channel gate from pooled features."""

    def __init__(self, {init}) -> None:
        super().__init__()
        c1 = locals().get("c1", 8)
        self.fc = torch.nn.Conv2d(c1, c1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        {body or "return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))"}
'''
    )
