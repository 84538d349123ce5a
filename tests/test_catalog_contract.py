"""The module contract of docs/architecture.md, checked for every registry entry (a new module is tested once
registered)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.catalog.registry import RESERVED_ATTRIBUTES

NAMES = REGISTRY.names()
SIZES = [(1, 1), (7, 7), (8, 8), (15, 20), (20, 20), (40, 40), (80, 80)]
# Channel counts a YOLO model really feeds an attention layer (n scale: 64..256, s: 128..512).
CHANNELS = 64


def build(name: str, c1: int = CHANNELS) -> torch.nn.Module:
    torch.manual_seed(0)
    return REGISTRY.load_class(name)(c1)


def test_registry_is_not_empty():
    assert len(NAMES) >= 2


@pytest.mark.parametrize("name", NAMES)
def test_source_view_equals_runtime_view(name):
    """list/info read specs from source without torch; the imported class must register the same spec."""
    cls = REGISTRY.load_class(name)
    assert cls.spec == REGISTRY.get(name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_shape_preserved(name, batch, size):
    module = build(name).eval()
    x = torch.randn(batch, CHANNELS, *size)
    with torch.no_grad():
        y = module(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_gets_a_gradient(name):
    module = build(name).train()
    x = torch.randn(2, CHANNELS, 15, 20, requires_grad=True)
    module(x).square().mean().backward()
    missing = [n for n, p in module.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"
    dead = [n for n, p in module.named_parameters() if p.grad.abs().sum() == 0]
    assert not dead, f"parameters with an all-zero gradient: {dead}"


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_cpu(name):
    module = build(name).to(torch.bfloat16).eval()
    x = torch.randn(1, CHANNELS, 15, 20, dtype=torch.bfloat16)
    with torch.no_grad():
        y = module(x)
    assert y.dtype == torch.bfloat16 and y.shape == x.shape
    assert torch.isfinite(y.float()).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="float16 is checked on CUDA only")
@pytest.mark.parametrize("name", NAMES)
def test_float16_cuda(name):
    module = build(name).cuda().half().eval()
    x = torch.randn(2, CHANNELS, 15, 20, device="cuda", dtype=torch.half)
    with torch.no_grad():
        y = module(x)
    assert y.dtype == torch.half and torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_no_reserved_attribute_names(name):
    """parse_model writes i, f, type and np on every layer; a module must not own those names."""
    module = build(name)
    clashes = [
        n
        for n, _ in [*module.named_parameters(), *module.named_modules(), *module.named_buffers()]
        if set(n.split(".")) & RESERVED_ATTRIBUTES
    ]
    own = RESERVED_ATTRIBUTES & set(vars(module))
    assert not clashes and not own, f"{clashes or own} collide with attributes Ultralytics sets"


@pytest.mark.parametrize("name", NAMES)
def test_default_args_match_signature(name):
    spec = REGISTRY.get(name)
    assert spec.check_args(spec.defaults()) == spec.defaults()
    assert spec.paper and spec.link.startswith("http") and spec.reference.startswith("http") and spec.year > 2000


@pytest.mark.skipif(
    not (importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime")),
    reason="onnx/onnxruntime not installed (pip install attnsurgeon[export])",
)
@pytest.mark.parametrize("name", NAMES)
def test_onnx_export_matches_torch(name, tmp_path):
    import numpy as np
    import onnxruntime as ort

    module = build(name).eval()
    x = torch.randn(1, CHANNELS, 20, 20)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(module, (x,), str(path), opset_version=17, input_names=["x"], output_names=["y"], dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y_onnx,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        y = module(x).numpy()
    np.testing.assert_allclose(y_onnx, y, atol=1e-4, rtol=1e-4)
