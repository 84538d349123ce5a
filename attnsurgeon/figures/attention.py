"""``cam --attention-map``: a layer's own attention map, read from its module (no gradients).

Which modules have one, looked for inside the layer (so an ``IdentityInit`` wrapper or an ``Augment`` block's
bottlenecks count too):

- a module with an ``attention_map(x)`` method: the map it computes from its input ``x`` at the feature map's
  resolution (catalog: CBAM's spatial gate, GC's context-pooling softmax, and the self-attention weights of
  HaloAttention and CrissCrossAttention);
- Ultralytics' ``Attention``, the multi-head self-attention inside ``PSA`` and ``C2PSA``;
- failing those, a submodule whose output is a one-channel map (a spatial gate, as BAM's or scSE's).

Self-attention weights ``A[query, key]`` (a softmax over keys) are reduced to one map: the attention each position
receives, the sum over queries of ``A[q, p]``, averaged over heads. Every query's weights sum to one, so the map
is where the module draws its information from; a module that attends uniformly gives a flat map. Each map is
upsampled to the input (bilinear) and scaled to 0..1; several in one layer (an augmented block) are averaged.
"""

from __future__ import annotations

from typing import Any

from attnsurgeon.errors import UsageError
from attnsurgeon.figures.new_layers import label


def ultralytics_attention_map(module: Any, x: Any) -> Any:
    """N x H x W: the attention each position of ``x`` receives in Ultralytics' ``Attention`` (softmax over keys of
    q^T k * scale, as its forward computes it), summed over queries, averaged over heads."""
    n, _, h, w = x.shape
    qkv = module.qkv(x).view(n, module.num_heads, module.key_dim * 2 + module.head_dim, h * w)
    q, k, _ = qkv.split([module.key_dim, module.key_dim, module.head_dim], dim=2)
    attn = ((q.transpose(-2, -1) @ k) * module.scale).softmax(dim=-1)  # N heads queries keys
    return attn.sum(-2).mean(1).reshape(n, h, w)


def _map_function(sub: Any) -> Any:
    from ultralytics.nn.modules.block import Attention

    if isinstance(sub, Attention):
        return lambda x: ultralytics_attention_map(sub, x)
    own = getattr(sub, "attention_map", None)
    return own if callable(own) else None


def modules_with_maps() -> list[str]:
    """The catalog modules with an ``attention_map`` method (for the error message)."""
    from attnsurgeon.catalog import REGISTRY

    found = []
    for spec in REGISTRY.specs():
        try:
            cls = REGISTRY.load_class(spec.name)
        except Exception:  # a plugin that does not import: it has no map to show here
            continue
        if callable(getattr(cls, "attention_map", None)):
            found.append(spec.name)
    return found


def attention_maps(loaded: Any, layers: list[int], batch: Any) -> Any:
    """N x L x H x W in 0..1: each layer's own attention map (module docstring), upsampled to the input."""
    import torch
    import torch.nn.functional as F

    inputs: dict[int, list[tuple[Any, Any]]] = {i: [] for i in layers}  # layer -> (map function, its input)
    gates: dict[int, Any] = {}
    handles = []
    for i in layers:
        explicit = [(sub, fn) for sub in loaded.model.model[i].modules() if (fn := _map_function(sub)) is not None]
        for sub, fn in explicit:

            def keep(_m: Any, args: Any, i: int = i, fn: Any = fn) -> None:
                inputs[i].append((fn, args[0]))

            handles.append(sub.register_forward_pre_hook(keep))
        if explicit:
            continue
        for sub in loaded.model.model[i].modules():

            def gate(_m: Any, _inputs: Any, out: Any, i: int = i) -> None:
                if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[1] == 1:
                    gates[i] = out[:, 0]

            handles.append(sub.register_forward_hook(gate))
    try:
        with torch.no_grad():
            loaded.model(batch)
            found = {i: [m for fn, x in inputs[i] if (m := fn(x)) is not None] for i in layers}
    finally:
        for handle in handles:
            handle.remove()
    for i in layers:
        found[i] = found[i] or ([gates[i]] if i in gates else [])
    missing = [i for i in layers if not found[i]]
    if missing:
        row = loaded.graph.rows[missing[0]]
        raise UsageError(
            f"--attention-map: layer {missing[0]} ({label(row)}) of {loaded.name} computes no attention map of its "
            f"own; modules with one: {', '.join(modules_with_maps())}, Ultralytics' PSA/C2PSA, and any one-channel "
            "spatial gate; leave --attention-map out to see its Grad-CAM"
        )
    out = []
    for i in layers:
        ups = [F.interpolate(m[:, None].float(), size=batch.shape[2:], mode="bilinear", align_corners=False)[:, 0]
               for m in found[i]]  # fmt: skip
        up = torch.stack(ups).mean(0)
        low = up.amin((1, 2), keepdim=True)
        out.append((up - low) / (up.amax((1, 2), keepdim=True) - low).clamp_min(1e-12))
    return torch.stack(out, dim=1).cpu().numpy()
