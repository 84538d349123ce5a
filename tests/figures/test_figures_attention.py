"""cam --attention-map on self-attention: each module's map is finite, has its input feature map's shape, and equals
the attention each position receives computed by hand (loops over queries and keys) from the module's own q and k;
through cam, a C2PSA layer of a plain yolo11n gives its panel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attnsurgeon.figures import attention

N, C, H, W = 2, 16, 3, 4


@pytest.fixture
def x(one_thread):
    torch.manual_seed(0)
    return torch.randn(N, C, H, W)


def _check(found, expected):
    assert found.shape == (N, H, W) and torch.isfinite(found).all()
    assert torch.allclose(found, torch.from_numpy(np.asarray(expected, dtype=np.float32)), atol=1e-5)


def _received(logits):
    """Per key position, the sum over queries of the softmax (over keys) of their logits: {query: {key: logit}}."""
    got = {}
    for keys in logits.values():
        top = max(keys.values())
        total = sum(math.exp(v - top) for v in keys.values())
        for key, v in keys.items():
            got[key] = got.get(key, 0.0) + math.exp(v - top) / total
    return [[got.get((r, c), 0.0) for c in range(W)] for r in range(H)]


def test_ultralytics_psa_attention(x):
    from ultralytics.nn.modules.block import Attention

    module = Attention(C, num_heads=2).eval()
    found = attention.ultralytics_attention_map(module, x)
    qkv = module.qkv(x).detach().reshape(N, 2, -1, H * W)  # per head: key_dim q rows, key_dim k rows, then v
    kd, pixels = module.key_dim, [(r, c) for r in range(H) for c in range(W)]
    expected = []
    for n in range(N):
        heads = []
        for h in range(2):
            q, k = qkv[n, h, :kd], qkv[n, h, kd : 2 * kd]
            logits = {p: {t: float(q[:, i] @ k[:, j]) * kd**-0.5 for j, t in enumerate(pixels)} for i, p in
                      enumerate(pixels)}  # fmt: skip
            heads.append(_received(logits))
        expected.append(np.mean(heads, axis=0))
    _check(found, expected)


def test_criss_cross_attention(x):
    from attnsurgeon.catalog.modules.criss_cross_attention import CrissCrossAttention

    module = CrissCrossAttention(C).eval()
    found = module.attention_map(x).detach()
    q, k = module.query_conv(x).detach(), module.key_conv(x).detach()
    expected = []
    for n in range(N):
        logits = {}
        for r in range(H):
            for c in range(W):
                keys = [(r2, c) for r2 in range(H)] + [(r, c2) for c2 in range(W) if c2 != c]  # its column and row
                logits[(r, c)] = {t: float(q[n, :, r, c] @ k[n, :, t[0], t[1]]) for t in keys}
        expected.append(_received(logits))
    _check(found, expected)


def test_halo_attention(x):
    """Each block's queries attend to the block and a halo of one pixel around it, clipped to the image."""
    from attnsurgeon.catalog.modules.halo_attention import HaloAttention

    module = HaloAttention(C, block_size=2, halo_size=1, dim_head=4, heads=2).eval()
    found = module.attention_map(x).detach()
    weights = module.attention_weights(x).detach()  # N heads blocks block^2 window^2, the module's own softmax
    expected = np.zeros((N, H, W))
    blocks_w = math.ceil(W / 2)
    for n in range(N):
        for b in range(weights.shape[2]):
            top, left = (b // blocks_w) * 2, (b % blocks_w) * 2  # the block's corner; its window starts 1 before
            queries = [i for i in range(4) if top + i // 2 < H and left + i % 2 < W]  # not the padding row
            for kpos in range(16):
                r, c = top - 1 + kpos // 4, left - 1 + kpos % 4
                if 0 <= r < H and 0 <= c < W:
                    expected[n, r, c] += float(weights[n, :, b, queries, kpos].sum(-1).mean())
    _check(found, expected)
    assert np.allclose(expected.sum((1, 2)), H * W, atol=1e-4)  # every real query's weights sum to one


def test_gc_pooling_weights(x):
    from attnsurgeon.catalog.modules.gc import GC

    module = GC(C).eval()
    found = module.attention_map(x).detach()
    logits = module.conv_mask(x).detach()[:, 0]
    expected = [np.exp(v - v.max()) / np.exp(v - v.max()).sum() for v in logits.numpy()]
    _check(found, expected)
    assert GC(C, pooling="avg").attention_map(x) is None


def test_cam_shows_a_c2psa_layers_own_attention(tmp_path, one_thread):
    from PIL import Image
    from ultralytics import YOLO

    from attnsurgeon.figures import cam as cam_mod
    from attnsurgeon.ultralytics_bridge import ultra

    with ultra.quiet():
        YOLO("yolo11n.yaml").save(tmp_path / "base.pt")
    img = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(img)
    r = cam_mod.cam(tmp_path / "base.pt", tmp_path / "base.pt", [img], tmp_path / "o", method="eigencam", layer="10",
                    imgsz=64, attention_map=True)  # fmt: skip
    own = r.maps[0]["attention"]
    assert own.shape == (64, 64) and np.isfinite(own).all()
    assert r.maps[0]["layers"][0]["variant_layers"] == [10]
    assert np.asarray(Image.open(r.files[0])).shape[1] == 4 * 64 + 3 * 4  # image | base | variant | attention
    # random weights: activations ~1e-7, so q.k ~1e-14 and the softmax is uniform: a flat map, said so
    assert own.max() == own.min()
    assert "base.pt: the attention map is constant on a.png (the module attends uniformly there" in r.warnings[-1]
