"""LSK: parameter counts of the reference LSKblock and of LSKNet's Attention wrapper."""

from __future__ import annotations

from attnsurgeon.catalog.modules.lsk import LSK


def test_parameter_count_reference_configuration():
    c, half = 256, 128
    block = (
        (c * 25 + c)  # depthwise 5x5
        + (c * 49 + c)  # depthwise 7x7 dilation 3
        + 2 * (c * half + half)  # two 1x1 reductions
        + (2 * 2 * 49 + 2)  # 7x7 squeeze conv, 2 -> 2
        + (half * c + c)  # 1x1 back to C
    )
    assert sum(p.numel() for p in LSK(c).parameters()) == block == 118470
    wrapper = 2 * (c * c + c)  # proj_1 and proj_2
    assert sum(p.numel() for p in LSK(c, True).parameters()) == block + wrapper
