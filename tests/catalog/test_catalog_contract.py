"""The module contract, checked for every registry entry with the same code ``attnsurgeon check-module`` runs
(attnsurgeon.checks.contract); a new module is tested once registered. In-model checks: test_catalog_models.py."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.checks import contract
from attnsurgeon.core.report import Check

NAMES = REGISTRY.names()


def passed(check) -> None:
    """The check ran and passed: a skipped check (``ok`` None) is not a pass, as ``check-module`` reports it."""
    assert check.ok is True, f"{check.name}: {check.detail or 'skipped'}"


def test_a_skipped_check_is_not_a_pass():
    with pytest.raises(AssertionError, match=r"float16 \(cuda\): skipped: no CUDA device here"):
        passed(Check("float16 (cuda)", None, "skipped: no CUDA device here"))


def test_only_what_this_machine_lacks_is_skipped():
    """On a CPU-only machine the CUDA float16 check is the one skipped; ONNX parity is skipped only without
    onnx/onnxruntime. Every other check of the contract runs (the tests above require ``ok is True``)."""
    spec = REGISTRY.get("SE")
    half = contract.check_dtype(spec, torch.float16, "cuda")
    if torch.cuda.is_available():
        assert half.ok is True, half.detail
    else:
        assert (half.ok, half.detail) == (None, "skipped: no CUDA device here")
    onnx = contract.check_onnx(spec)
    installed = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
    assert onnx.ok is (True if installed else None), onnx.detail


def test_registry_is_not_empty():
    assert len(NAMES) >= 30


@pytest.mark.parametrize("name", NAMES)
def test_metadata_defaults_and_source_view(name):
    """list/info read specs from source without torch; the imported class must register the same spec."""
    passed(contract.check_metadata(REGISTRY.get(name)))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", contract.SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_shape_preserved(name, size):
    passed(contract.check_shape(REGISTRY.get(name), size))


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_and_the_input_get_a_gradient(name):
    passed(contract.check_gradients(REGISTRY.get(name)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_dtype_cpu(name, dtype):
    passed(contract.check_dtype(REGISTRY.get(name), dtype))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="float16 is checked on CUDA only")
@pytest.mark.parametrize("name", NAMES)
def test_float16_cuda(name):
    check = contract.check_dtype(REGISTRY.get(name), torch.float16, "cuda")
    assert check.ok, check.detail


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_deterministic(name):
    passed(contract.check_determinism(REGISTRY.get(name)))


@pytest.mark.parametrize("name", NAMES)
def test_one_images_output_does_not_depend_on_its_batch(name):
    passed(contract.check_batch_independence(REGISTRY.get(name)))


@pytest.mark.parametrize("name", NAMES)
def test_no_reserved_attribute_names(name):
    passed(contract.check_reserved_names(REGISTRY.get(name)))


@pytest.mark.parametrize("name", NAMES)
def test_onnx_export_matches_torch(name):
    check = contract.check_onnx(REGISTRY.get(name))
    if check.ok is None:
        pytest.skip(check.detail)
    assert check.ok, check.detail


# The checks must catch what they are for: broken modules, defined here, fail with a reason a user can act on.


class _Shrinks(torch.nn.Module):
    def __init__(self, c1: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(c1, c1 // 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _DeadBranch(torch.nn.Module):
    def __init__(self, c1: int) -> None:
        super().__init__()
        self.used = torch.nn.Conv2d(c1, c1, 1)
        self.unused = torch.nn.Conv2d(c1, c1, 1)
        self.f = torch.nn.Identity()  # 'f' is written by parse_model on every layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x) + torch.nn.functional.dropout(x, 0.5, training=True)


def test_checks_fail_for_broken_modules(monkeypatch):
    spec = REGISTRY.get("SE")
    monkeypatch.setattr(contract, "build", lambda name, c1=contract.CHANNELS: _Shrinks(c1))
    check = contract.check_shape(spec, (15, 20))
    assert check.ok is False and check.detail == "changes the shape: (1, 64, 15, 20) -> (1, 32, 15, 20)"
    monkeypatch.setattr(contract, "build", lambda name, c1=contract.CHANNELS: _DeadBranch(c1))
    check = contract.check_gradients(spec)
    assert check.ok is False and check.detail == "no gradient: unused.weight, unused.bias"
    check = contract.check_determinism(spec)
    assert check.ok is False and check.detail.startswith("max difference ")
    check = contract.check_reserved_names(spec)
    assert check.ok is False and check.detail == "f collide with attributes Ultralytics sets"


class _LiveInEvalOnly(torch.nn.Module):
    """A parameter whose gradient is exactly zero in training and live in eval, as a bias right before a BatchNorm
    is (BAM's channel gate: the batch mean cancels it, up to rounding); ``zeroed``: dead in both modes."""

    def __init__(self, c1: int, zeroed: bool = False) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(c1, c1, 1)
        self.shift = torch.nn.Parameter(torch.zeros(c1, 1, 1))
        self.zeroed = zeroed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        live = 0.0 if self.training or self.zeroed else 1.0
        return x * torch.sigmoid(self.conv(x) + live * self.shift)


def test_a_gradient_cancelled_in_training_only_is_alive_but_a_dead_one_is_not(monkeypatch):
    spec = REGISTRY.get("SE")
    monkeypatch.setattr(contract, "build", lambda name, c1=contract.CHANNELS: _LiveInEvalOnly(c1))
    check = contract.check_gradients(spec)
    assert check.ok is True, check.detail
    monkeypatch.setattr(contract, "build", lambda name, c1=contract.CHANNELS: _LiveInEvalOnly(c1, zeroed=True))
    check = contract.check_gradients(spec)
    assert (check.ok, check.detail) == (False, "all-zero gradient: shift")
