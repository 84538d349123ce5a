"""The device a model is measured on, and the model as Ultralytics deploys it there (fused, eval, no grad)."""

from __future__ import annotations

import copy
import re

import torch
from torch import nn

from attnsurgeon.errors import DeviceError
from attnsurgeon.ultralytics_bridge import ultra


def parse_device(device: str | int | None = "cpu", half: bool = False) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``N`` -> a device that exists here; :class:`DeviceError` otherwise."""
    text = "cpu" if device is None else str(device).strip()
    low = text.lower()
    index: int | None = None
    if low == "cpu":
        dev = torch.device("cpu")
    elif low == "cuda" or re.fullmatch(r"(cuda:)?\d+", low):
        digits = low.removeprefix("cuda:").removeprefix("cuda")
        index = int(digits) if digits else None
        if not torch.cuda.is_available():
            built = "built without CUDA" if torch.version.cuda is None else "no CUDA device is visible"
            raise DeviceError(
                f"--device {text}: CUDA is not available here (torch {torch.__version__}, {built}); use --device cpu"
            )
        count = torch.cuda.device_count()
        if index is None:
            index = torch.cuda.current_device()
        if index >= count:
            raise DeviceError(
                f"--device {text}: there is no CUDA device {index}; this machine has {count} (0..{count - 1})"
            )
        dev = torch.device("cuda", index)
    elif "," in low:
        raise DeviceError(f"--device {text}: profile runs on one device; give one of cpu, cuda, cuda:N or N")
    else:
        raise DeviceError(f"--device {text!r} is not a device; use cpu, cuda, cuda:N or a CUDA index N")
    if half and dev.type != "cuda":
        raise DeviceError(
            "--half needs a CUDA device (Ultralytics runs float16 only on GPU); drop --half or use --device cuda"
        )
    return dev


def deploy(model: nn.Module, device: torch.device, half: bool = False) -> tuple[nn.Module, bool]:
    """A copy as Ultralytics deploys it: Conv+BN fused, RepConv merged, eval, no grad, on ``device``; (copy, fused)."""
    deployed = copy.deepcopy(model)
    fused = False
    fuse = getattr(deployed, "fuse", None)
    if callable(fuse):
        with ultra.quiet():
            deployed = fuse(verbose=False)
        fused = True
    deployed = deployed.eval().to(device)
    if half:
        deployed = deployed.half()
    for p in deployed.parameters():
        p.requires_grad_(False)
    return deployed, fused
