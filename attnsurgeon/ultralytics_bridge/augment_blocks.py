"""Attention inside Ultralytics' own blocks (``C3k2`` -> "C3k2-EMA"), built in plain Ultralytics from a YAML row.

An ``Augment`` row names the block, its arguments as the base model writes them, the attention and where it goes::

    - [-1, 2, Augment, [C3k2, [256, False, 0.25], EMA, [8], bottleneck]]

Ultralytics' ``parse_model`` scales only blocks it knows by class (width, depth, ``max_channels``, C3k2's switch to
C3k at m/l/x, the head's ``legacy`` flag), and computes a layer's output channels itself. So a new class could never
get exactly the base block. Instead ``attnsurgeon.ultralytics_bridge.ultra.register`` wraps ``parse_model``: the
wrapper hands
Ultralytics the base row ``[-1, 2, C3k2, [256, False, 0.25]]``, lets Ultralytics build its own block with every rule
it has, and then gives that block attention: each chosen :class:`~ultralytics.nn.modules.conv.Conv` becomes an
:class:`AttendedConv` (``attention(conv(x))``), keeping its tensors under the same state-dict keys. Nothing of
Ultralytics' block code is copied, so a change there is picked up (or fails loudly in the tests that pin these
assumptions).

Where the attention goes:

- ``bottleneck``: at the end of each residual unit's branch, before the addition: ``Bottleneck`` after ``cv2``
  (``x + attn(cv2(cv1(x)))``), ``CIB`` after the last conv of ``cv1``. Blocks without such units (``C2PSA``,
  ``C2fPSA``, ``A2C2f`` with area attention) take it in each ``PSABlock``/``ABlock`` after the FFN's last conv
  (``x + attn(ffn(x))``). Units nested in ``C3k`` (C3k2 at m/l/x, A2C2f without area attention) are included.
- ``output``: after the block's last conv (``cv2``; ``cv3`` for C3/C3k/C3x), inside the same layer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from ultralytics.nn.modules import block as ublock
from ultralytics.nn.modules.conv import Conv

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.core.augment_graph import AUGMENT_MODULE, AUGMENT_WHERE, AUGMENTABLE_BLOCKS, OUTPUT_CONV
from attnsurgeon.errors import ModuleArgsError
from attnsurgeon.ultralytics_bridge.wrappers import WRAPPERS

# Residual units and the conv that ends their residual branch (the addition follows it).
CONV_UNITS: dict[type, Callable[[nn.Module], nn.Module]] = {
    ublock.Bottleneck: lambda unit: unit.cv2,
    ublock.CIB: lambda unit: unit.cv1[-1],
}
ATTENTION_UNITS: dict[type, Callable[[nn.Module], nn.Module]] = {
    ublock.PSABlock: lambda unit: unit.ffn[-1],
    ublock.ABlock: lambda unit: unit.mlp[-1],
}


class AttendedConv(Conv):
    """Ultralytics' ``Conv`` followed by an attention module: ``attn(act(bn(conv(x))))``, fused or not.

    Made from a built ``Conv`` by :func:`attend` (its tensors keep their keys; the attention's are under ``attn.``).
    """

    attn: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(super().forward(x))

    def forward_fuse(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(super().forward_fuse(x))


@dataclass(frozen=True)
class AugmentSpec:
    """A parsed ``Augment`` row's arguments."""

    block: str
    block_args: list[Any]
    module: str
    module_args: list[Any]
    where: str

    @classmethod
    def from_args(cls, args: Any, index: int) -> AugmentSpec:
        shape = "[Block, [block args], Attention, [attention args], bottleneck|output]"
        if not isinstance(args, (list, tuple)) or len(args) != 5:
            raise ModuleArgsError(f"layer {index}: {AUGMENT_MODULE} takes {shape}, got {args!r}")
        block, block_args, module, module_args, where = args
        if block not in AUGMENTABLE_BLOCKS:
            raise ModuleArgsError(
                f"layer {index}: {AUGMENT_MODULE} cannot augment {block!r}; blocks that can: "
                f"{', '.join(AUGMENTABLE_BLOCKS)}"
            )
        if not isinstance(block_args, (list, tuple)) or not isinstance(module_args, (list, tuple)):
            raise ModuleArgsError(f"layer {index}: {AUGMENT_MODULE} takes {shape}; the args must be lists")
        if where not in AUGMENT_WHERE:
            raise ModuleArgsError(f"layer {index}: {AUGMENT_MODULE} where must be bottleneck or output, got {where!r}")
        if not isinstance(module, str):
            raise ModuleArgsError(f"layer {index}: {AUGMENT_MODULE} takes an attention module name, got {module!r}")
        return cls(str(block), list(block_args), module, list(module_args), str(where))


def build_attention(module: str, args: list[Any], channels: int) -> nn.Module:
    """A catalog module (or a wrapper such as ``IdentityInit``) at ``channels``, its args checked."""
    if module in WRAPPERS:
        return WRAPPERS[module](channels, *args)
    spec = REGISTRY.get(module)
    return REGISTRY.load_class(spec.name)(channels, *spec.check_args(args))


def attend(conv: nn.Module, module: str, args: list[Any]) -> AttendedConv:
    """Turn a built ``Conv`` into an :class:`AttendedConv` in place (same tensors, same keys); returns it."""
    if type(conv) is not Conv:
        raise ModuleArgsError(
            f"expected an Ultralytics Conv to attach {module} to, found {type(conv).__name__}; this Ultralytics "
            "version builds the block differently"
        )
    channels = int(conv.conv.out_channels)
    try:
        attention = build_attention(module, args, channels)
    except ModuleArgsError:
        raise
    except Exception as exc:
        raise ModuleArgsError(f"{module} {args} cannot be built at {channels} channels: {exc}") from exc
    conv.__class__ = AttendedConv
    conv.attn = attention
    return conv  # type: ignore[return-value]


def units(block: nn.Module) -> list[nn.Module]:
    """The convs ending each residual branch of ``block``: conv units (Bottleneck, CIB) if it has any, else its
    attention units (PSABlock, ABlock)."""
    for table in (CONV_UNITS, ATTENTION_UNITS):
        found = [end(m) for m in block.modules() for cls, end in table.items() if isinstance(m, cls)]
        if found:
            return found
    return []


def augment_block(layer: nn.Module, spec: AugmentSpec, index: int) -> list[AttendedConv]:
    """Give a built Ultralytics block attention where ``spec`` says; returns the attended convs."""
    block_cls = getattr(ublock, spec.block)
    if type(layer) is not block_cls:
        raise ModuleArgsError(f"layer {index}: expected Ultralytics' {spec.block}, built {type(layer).__name__}")
    targets = units(layer) if spec.where == "bottleneck" else [getattr(layer, OUTPUT_CONV[spec.block])]
    if not targets:
        raise ModuleArgsError(f"layer {index}: {spec.block} has no residual units here; use --where output")
    try:
        attended = [attend(conv, spec.module, spec.module_args) for conv in targets]
    except ModuleArgsError as exc:
        raise ModuleArgsError(f"layer {index} ({spec.block}, {spec.where}): {exc}") from exc
    layer.np = sum(p.numel() for p in layer.parameters())  # parse_model counted the block before the attention
    return attended


def attended_convs(layer: nn.Module) -> Iterator[tuple[str, AttendedConv]]:
    """Every attended conv inside a built layer, with its qualified name."""
    for name, module in layer.named_modules():
        if isinstance(module, AttendedConv):
            yield name, module


def attention_keys(model: nn.Module) -> set[str]:
    """State-dict keys of every attention placed inside a block (the tensors a base model does not have)."""
    keys = set()
    for prefix, module in model.named_modules():
        if isinstance(module, AttendedConv):
            keys |= {f"{prefix}.attn.{k}" for k in module.attn.state_dict()}
    return keys


def base_rows(d: dict[str, Any]) -> tuple[dict[str, Any], dict[int, AugmentSpec]]:
    """The model dict with every ``Augment`` row replaced by its base block's row, and the specs by layer index."""
    specs: dict[int, AugmentSpec] = {}
    rows = list(d.get("backbone") or []) + list(d.get("head") or [])
    for i, row in enumerate(rows):
        if isinstance(row, (list, tuple)) and len(row) == 4 and row[2] == AUGMENT_MODULE:
            specs[i] = AugmentSpec.from_args(row[3], i)
    if not specs:
        return d, specs
    out = dict(d)
    n_backbone = len(d.get("backbone") or [])
    for section, offset in (("backbone", 0), ("head", n_backbone)):
        items = [list(r) if isinstance(r, (list, tuple)) else r for r in (d.get(section) or [])]
        for j, row in enumerate(items):
            spec = specs.get(offset + j)
            if spec is not None:
                items[j] = [row[0], row[1], spec.block, copy.deepcopy(spec.block_args)]
        out[section] = items
    return out, specs


def parse_with_augment(parse_model: Callable[..., Any], d: dict[str, Any], ch: Any, verbose: bool = True) -> Any:
    """Ultralytics' ``parse_model`` on the base rows, then attention inside every ``Augment`` row's block."""
    base, specs = base_rows(d)
    model, save = parse_model(base, ch, verbose)
    for index, spec in specs.items():
        attended = augment_block(model[index], spec, index)
        if verbose:
            from ultralytics.utils import LOGGER

            added = sum(p.numel() for a in attended for p in a.attn.parameters())
            LOGGER.info(
                f"{index:>3} {spec.block} augmented with {spec.module} {spec.module_args} ({spec.where}): "
                f"{len(attended)} modules, {added:,} params"
            )
    return model, save


# This module may finish importing after ultra.register() ran (when it was the first to import Ultralytics), so it
# puts its own class on the weights_only allow-list (ULTRALYTICS_SAFE_LOAD=1).
torch.serialization.add_safe_globals([AttendedConv])
