"""Moving a checkpoint's trained tensors onto a modified model: an old->new layer index map in, a state dict out.

Layer ``model.{old}.`` becomes ``model.{new}.`` through the surgery's index map. Every original tensor must find a home
of the same shape; the layers the surgery made (inserted or replaced) keep their fresh initialisation, or start as the
identity (:class:`attnsurgeon.ultralytics_bridge.wrappers.IdentityInit`), which :func:`max_output_difference` proves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from attnsurgeon.core.report import Check
from attnsurgeon.errors import CheckpointError

IDENTITY_TOLERANCE = 1e-5  # max |Δ| between original and identity-initialised outputs
IDENTITY_CHECK_SIZE = 320
_LAYER_KEY = re.compile(r"^model\.(\d+)\.(.+)$")


@dataclass
class MoveStats:
    """What :func:`move_weights` did."""

    moved: int  # original tensors copied into the new model
    renumbered: int  # of those, how many changed layer index
    fresh: int  # tensors of the layers the surgery made, left as initialised

    def describe(self) -> str:
        return (
            f"{self.moved} original tensors carried over ({self.renumbered} to a new layer index); "
            f"{self.fresh} new tensors freshly initialised"
        )


# --------------------------------------------------------------------------------------------------------------------
# Moving weights


def _new_key(key: str, index_map: dict[int, int]) -> str | None:
    match = _LAYER_KEY.match(key)
    if not match:
        return key
    old = int(match.group(1))
    if old not in index_map:
        return None
    return f"model.{index_map[old]}.{match.group(2)}"


def _in_layers(key: str, layers: set[int]) -> bool:
    match = _LAYER_KEY.match(key)
    return bool(match) and int(match.group(1)) in layers


def _examples(keys: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def move_weights(
    old: Any,
    new: Any,
    index_map: dict[int, int],
    new_layers: Iterable[int],
    dropped: Iterable[int] = (),
    fresh_keys: Iterable[str] = (),
) -> MoveStats:
    """Copy every tensor of ``old`` into ``new`` at its layer's new index; ``new_layers`` keep their initialisation.

    Strict: every original tensor outside the ``dropped`` layers (old indices the surgery removed or replaced) needs a
    tensor of the same shape at its new key, and every tensor of ``new`` outside ``new_layers`` and ``fresh_keys``
    (attention inside an augmented block, whose own tensors keep their keys) needs an original. Raises
    :class:`CheckpointError` naming the keys otherwise.
    """
    import torch

    inserted = set(new_layers)
    discarded = set(dropped)
    old_sd = old.state_dict()
    new_sd = new.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    homeless, mismatched = [], []
    renumbered = 0
    for key, value in old_sd.items():
        if _in_layers(key, discarded):
            continue
        target = _new_key(key, index_map)
        if target is None or target not in new_sd:
            homeless.append(key)
        elif tuple(new_sd[target].shape) != tuple(value.shape):
            mismatched.append(f"{key} {tuple(value.shape)} -> {target} {tuple(new_sd[target].shape)}")
        else:
            mapped[target] = value
            renumbered += target != key
    fresh_set = set(fresh_keys)
    missing = [k for k in new_sd if k not in mapped and not _in_layers(k, inserted) and k not in fresh_set]
    if homeless or mismatched or missing:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensors the architecture needs are missing: {_examples(missing)}")
        if homeless:
            parts.append(f"{len(homeless)} tensors have no place in the architecture: {_examples(homeless)}")
        if mismatched:
            parts.append(f"{len(mismatched)} tensors have another shape: {_examples(mismatched)}")
        fused = any(k.endswith(".conv.bias") for k in homeless) and any(".bn." in k for k in missing)
        hint = "; the model looks fused (model.fuse()), save it unfused" if fused else ""
        raise CheckpointError(f"the checkpoint's weights do not fit its own architecture: {'; '.join(parts)}{hint}")
    result = new.load_state_dict({**new_sd, **mapped}, strict=True)
    del result
    fresh = sum(1 for k in new_sd if _in_layers(k, inserted) or k in fresh_set)
    return MoveStats(moved=len(mapped), renumbered=renumbered, fresh=fresh)


# --------------------------------------------------------------------------------------------------------------------
# Checks


def max_output_difference(a: Any, b: Any, size: int = IDENTITY_CHECK_SIZE) -> float:
    """Max |Δ| between two models' eval outputs on the same random image (float32, CPU or their device)."""
    import torch

    from attnsurgeon.checks.verify import flatten_tensors
    from attnsurgeon.ultralytics_bridge import ultra

    device = next(a.parameters()).device
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, ultra.input_channels(a), size, size, generator=g).to(device)
    outputs = []
    for model in (a, b):
        model.eval()
        with torch.inference_mode():
            outputs.append(flatten_tensors(model(x)))
    if len(outputs[0]) != len(outputs[1]):
        return float("inf")
    diffs = [(p.float() - q.float()).abs().max().item() for p, q in zip(*outputs, strict=True) if p.numel()]
    return max(diffs, default=0.0)


def identity_check(base: Any, new: Any) -> Check:
    """The identity-initialised model computes what the original did (max |Δ| of their outputs)."""
    diff = max_output_difference(base, new)
    ok = diff <= IDENTITY_TOLERANCE
    return Check(
        "identity at init",
        ok,
        f"outputs equal the original's: max |Δ| {diff:.2e} at {IDENTITY_CHECK_SIZE}x{IDENTITY_CHECK_SIZE}"
        if ok
        else f"outputs differ from the original's by up to {diff:.2e} (> {IDENTITY_TOLERANCE:g})",
    )
