"""Small building blocks shared by catalog modules (imports torch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ceil_div(a: int, b: int) -> int:
    """Ceiling of a / b for a >= 0, b > 0. Not ``-(-a // b)``: traced from a tensor's shape for ONNX, that becomes
    integer Div, which truncates toward zero, so the export computes the floor (one block too few at 224x320)."""
    return (a + b - 1) // b


def pad_to_multiple(x: torch.Tensor, multiple_h: int, multiple_w: int | None = None) -> tuple[torch.Tensor, int, int]:
    """Zero-pad the bottom/right of an NCHW tensor so H and W are multiples; returns (padded, pad_h, pad_w).

    Blocks and windows need divisible sizes; YOLO feature maps (e.g. 15x20 in rectangular validation) often are not.
    """
    multiple_w = multiple_h if multiple_w is None else multiple_w
    h, w = x.shape[-2:]
    pad_h = (multiple_h - h % multiple_h) % multiple_h
    pad_w = (multiple_w - w % multiple_w) % multiple_w
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x, pad_h, pad_w


def crop_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`."""
    return x[..., :h, :w]


def excitation(channels: int, reduction: int) -> torch.nn.Sequential:
    """SE's excitation: bias-free C -> max(C // r, 1) -> C bottleneck with a sigmoid gate (also FcaNet's)."""
    hidden = max(channels // reduction, 1)
    return torch.nn.Sequential(
        torch.nn.Linear(channels, hidden, bias=False),
        torch.nn.ReLU(inplace=True),
        torch.nn.Linear(hidden, channels, bias=False),
        torch.nn.Sigmoid(),
    )


def largest_divisor_at_most(n: int, limit: int) -> int:
    """The largest divisor of n that is <= limit (at least 1): the fallback when a group count does not divide n."""
    for d in range(max(min(limit, n), 1), 0, -1):
        if n % d == 0:
            return d
    return 1


class SafeBatchNorm2d(torch.nn.BatchNorm2d):
    """BatchNorm2d that, in training, normalises with the running statistics when a channel holds a single value.

    Plain BatchNorm2d raises on N*H*W == 1 in training (batch 1 with a 1x1 map, or a pooled N x C x 1 x 1 vector at
    batch 1); there batch statistics do not exist, so this falls back to eval behaviour for that call and leaves the
    running statistics untouched. Same parameters and state dict as BatchNorm2d; identical everywhere else.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1 and self.running_mean is not None:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def adaptive_pool_matrix(size_in: int, size_out: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The size_out x size_in averaging matrix of PyTorch's adaptive average pooling along one axis.

    Bin i averages inputs [floor(i*in/out), ceil((i+1)*in/out)); this also covers size_out > size_in (replication).
    """
    i = torch.arange(size_out, device=device)
    start = torch.div(i * size_in, size_out, rounding_mode="floor")
    end = torch.div((i + 1) * size_in + size_out - 1, size_out, rounding_mode="floor")
    j = torch.arange(size_in, device=device)
    member = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return (member.to(dtype) / (end - start).to(dtype)[:, None]).to(dtype)


def adaptive_avg_pool2d_exportable(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """F.adaptive_avg_pool2d as two small matrix products: same values, and it exports to ONNX for any sizes.

    The ONNX exporter rejects adaptive pooling unless the input is a multiple of the output; YOLO maps (15x20, or
    upsampling a 5x5 map back to HxW) often are not.
    """
    h, w = x.shape[-2:]
    ph = adaptive_pool_matrix(int(h), out_h, x.device, x.dtype)
    pw = adaptive_pool_matrix(int(w), out_w, x.device, x.dtype)
    return torch.matmul(torch.matmul(ph, x), pw.transpose(0, 1))
