"""A corpus of forked-Ultralytics YAMLs, written the way published YOLO attention configs write them.

Each case is YOLOv8 with one attention row as a fork's modified ``parse_model`` reads it: the channel count first,
fork names (``SEAttention``, ``GAM_Attention``, ...) and fork argument orders (Ultralytics' ``CBAM(c1, kernel_size)``,
BiFormer's ``BiLevelRoutingAttention(dim, num_heads, n_win)``). ``intended`` is what the fork builds, in catalog terms:
the module and its hyper-parameters; ``c1`` its input channels at scale n, worked out by hand from yolov8.yaml
(SPPF 1024 * 0.25 = 256; the P3 C2f 256 * 0.25 = 64; the P5 head C2f 1024 * 0.25 = 256).
"""

from __future__ import annotations

from dataclasses import dataclass

SCALES = """\
# Parameters
nc: 80 # number of classes
scales: # model compound scaling constants
  # [depth, width, max_channels]
  n: [0.33, 0.25, 1024]
  s: [0.33, 0.50, 1024]
"""

BACKBONE = """\
# YOLOv8.0n backbone with attention (forked parse_model)
backbone:
  # [from, repeats, module, args]
  - [-1, 1, Conv, [64, 3, 2]] # 0-P1/2
  - [-1, 1, Conv, [128, 3, 2]] # 1-P2/4
  - [-1, 3, C2f, [128, True]]
  - [-1, 1, Conv, [256, 3, 2]] # 3-P3/8
  - [-1, 6, C2f, [256, True]]
  - [-1, 1, Conv, [512, 3, 2]] # 5-P4/16
  - [-1, 6, C2f, [512, True]]
  - [-1, 1, Conv, [1024, 3, 2]] # 7-P5/32
  - [-1, 3, C2f, [1024, True]]
  - [-1, 1, SPPF, [1024, 5]] # 9
"""

# The attention row goes after SPPF as layer 10; the head is renumbered correctly.
AFTER_SPPF = (
    SCALES
    + "\n"
    + BACKBONE
    + """\
  - [-1, 1, {row}] # 10

# YOLOv8.0n head
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 6], 1, Concat, [1]] # cat backbone P4
  - [-1, 3, C2f, [512]] # 13

  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 4], 1, Concat, [1]] # cat backbone P3
  - [-1, 3, C2f, [256]] # 16 (P3/8-small)

  - [-1, 1, Conv, [256, 3, 2]]
  - [[-1, 13], 1, Concat, [1]] # cat head P4
  - [-1, 3, C2f, [512]] # 19 (P4/16-medium)

  - [-1, 1, Conv, [512, 3, 2]]
  - [[-1, 10], 1, Concat, [1]] # cat head P5
  - [-1, 3, C2f, [1024]] # 22 (P5/32-large)

  - [[16, 19, 22], 1, Detect, [nc]] # Detect(P3, P4, P5)
"""
)

# A partial renumbering: the attention row was added at 10, Detect and the P5 Concat were updated, the P4 Concat
# still reads 12 (now the Concat, not the C2f) and the comments of the head kept their old numbers.
PARTIAL_RENUMBERING = (
    SCALES
    + "\n"
    + BACKBONE
    + """\
  - [-1, 1, CBAM, [1024]]

# YOLOv8.0n head
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 6], 1, Concat, [1]] # cat backbone P4
  - [-1, 3, C2f, [512]] # 12

  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 4], 1, Concat, [1]] # cat backbone P3
  - [-1, 3, C2f, [256]] # 15 (P3/8-small)

  - [-1, 1, Conv, [256, 3, 2]]
  - [[-1, 12], 1, Concat, [1]] # cat head P4
  - [-1, 3, C2f, [512]] # 18 (P4/16-medium)

  - [-1, 1, Conv, [512, 3, 2]]
  - [[-1, 10], 1, Concat, [1]] # cat head P5
  - [-1, 3, C2f, [1024]] # 21 (P5/32-large)

  - [[16, 19, 22], 1, Detect, [nc]] # Detect(P3, P4, P5)
"""
)

# A dead attention layer: SimAM appended after the P5 head C2f, but Detect still reads layer 21.
DEAD_LAYER = (
    SCALES
    + "\n"
    + BACKBONE
    + """\

# YOLOv8.0n head
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 6], 1, Concat, [1]] # cat backbone P4
  - [-1, 3, C2f, [512]] # 12

  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 4], 1, Concat, [1]] # cat backbone P3
  - [-1, 3, C2f, [256]] # 15 (P3/8-small)

  - [-1, 1, Conv, [256, 3, 2]]
  - [[-1, 12], 1, Concat, [1]] # cat head P4
  - [-1, 3, C2f, [512]] # 18 (P4/16-medium)

  - [-1, 1, Conv, [512, 3, 2]]
  - [[-1, 9], 1, Concat, [1]] # cat head P5
  - [-1, 3, C2f, [1024]] # 21 (P5/32-large)
  - [-1, 1, SimAM, [1024]] # 22

  - [[15, 18, 21], 1, Detect, [nc]] # Detect(P3, P4, P5)
"""
)


@dataclass(frozen=True)
class Case:
    name: str  # file stem (keeps the scale letter) and golden file name
    text: str
    layer: int  # the attention layer
    intended: tuple[str, tuple]  # catalog module and hyper-parameters the fork builds
    c1: int  # input channels of the attention layer at scale n
    crlf: bool = False
    final_newline: bool = True

    def write(self, folder) -> object:
        text = self.text.replace("\n", "\r\n") if self.crlf else self.text
        if not self.final_newline:
            text = text.rstrip("\r\n")
        path = folder / f"{self.name}.yaml"
        path.write_bytes(text.encode())
        return path


def _after_sppf(name: str, row: str, intended: tuple[str, tuple], **kw: object) -> Case:
    return Case(name, AFTER_SPPF.format(row=row), 10, intended, 256, **kw)  # type: ignore[arg-type]


CASES = [
    _after_sppf("yolov8n-cbam-channels", "CBAM, [1024]", ("CBAM", (16, 7))),
    _after_sppf("yolov8n-cbam-channels-kernel", "CBAM, [1024, 3]", ("CBAM", (16, 3))),
    _after_sppf("yolov8n-cbam-kernel", "CBAM, [7]", ("CBAM", (16, 7))),
    _after_sppf("yolov8n-cbam-block", "cbam_block, [1024, 8, 7]", ("CBAM", (8, 7))),
    _after_sppf("yolov8n-seattention", "SEAttention, [1024]", ("SE", (16,))),
    _after_sppf("yolov8n-se-channels-reduction", "SE, [1024, 8]", ("SE", (8,))),
    _after_sppf("yolov8n-ecaattention", "ECAAttention, [1024, 5]", ("ECA", (1, 2, 5))),
    _after_sppf("yolov8n-eca-kernel", "ECA, [3]", ("ECA", (1, 2, 3))),
    _after_sppf("yolov8n-coordattention", "CoordAttention, [1024, 1024, 16]", ("CoordAtt", (16,))),
    _after_sppf("yolov8n-ca", "CA, [1024, 1024]", ("CoordAtt", (32,))),
    _after_sppf("yolov8n-ema", "EMA, [1024, 8]", ("EMA", (8,))),
    _after_sppf("yolov8n-ema-attention", "EMA_attention, [1024]", ("EMA", (32,))),
    _after_sppf("yolov8n-simam", "SimAM, [1024]", ("SimAM", (0.0001,))),
    _after_sppf("yolov8n-simam-module", "SimAM_Module, [1024, 0.001]", ("SimAM", (0.001,))),
    _after_sppf("yolov8n-gam-attention", "GAM_Attention, [1024, 1024]", ("GAM", (4,))),
    _after_sppf("yolov8n-bra-nchw", "BiLevelRoutingAttention_nchw, [1024]", ("BiLevelRoutingAttention", (7, 8, 4, 3))),
    _after_sppf("yolov8n-bra-heads", "BiLevelRoutingAttention, [1024, 4]", ("BiLevelRoutingAttention", (7, 4, 4, 3))),
    _after_sppf("yolov8n-se-block", "SE_Block, [1024]", ("SE", (16,))),
    _after_sppf("yolov8n-cbam-crlf", "CBAM, [1024]", ("CBAM", (16, 7)), crlf=True, final_newline=False),
    Case("yolov8n-partial-renumbering", PARTIAL_RENUMBERING, 10, ("CBAM", (16, 7)), 256),
    Case("yolov8n-dead-simam", DEAD_LAYER, 22, ("SimAM", (0.0001,)), 256),
]
