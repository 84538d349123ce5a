"""Fixtures for issue 29, written for attnsurgeon in the styles published attention configs use (no file copied):
a hand-edited block-style file whose layout a rewrite must keep byte for byte, YOLOv5- and YOLOv7-repository files
with a fork's attention row, and a YOLOv5 fork whose ``PSA`` is polarized self-attention, not Ultralytics' PSA.
"""

from __future__ import annotations

# Two leading blank lines, whitespace-only lines (one inside the header comment), trailing spaces, blank lines
# between rows and around comments, double spaces inside rows, an unchanged Detect row with its comment far right.
# Layer 4 is the fork's row: CBAM with the input's channel count (256 as written).
LAYOUT_BLOCK = (
    "\n"
    "\n"
    "# a hand-edited YOLOv8 file   \n"
    "#  \n"
    "# (the line above holds two spaces after its '#')\n"
    "  \n"
    "nc: 80  # number of classes   \n"
    "scales: # model compound scaling constants\n"
    "  # [depth, width, max_channels]\n"
    "  n: [0.33, 0.25, 1024]\n"
    "\n"
    "backbone:\n"
    "  # [from, repeats, module, args]\n"
    "  - [-1, 1, Conv,  [64, 3, 2]] # 0-P1/2\n"
    "  - [-1, 1, Conv, [128, 3, 2]]   # 1-P2/4\n"
    " \n"
    "  - [-1, 3, C2f, [128, True]]\n"
    "  - [-1, 1, Conv, [256, 3, 2]] # 3-P3/8\n"
    "\n"
    "  - [-1, 1, CBAM, [256]] # 4 attention   \n"
    "  \n"
    "  - [-1, 1, SPPF, [256, 5]]  # 5\n"
    "\n"
    "# head, with a comment between blank lines\n"
    "\n"
    "head:\n"
    '  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]   \n'
    "  - [[-1, 2], 1, Concat, [1]]  # 7 cat P2\n"
    "\n"
    "  - [-1, 3,  C2f, [128]] # 8\n"
    "  - [[8, 5], 1, Detect,   [nc]]        # 9 Detect(P2, P3)\n"
)
LAYOUT_ROW = ("  - [-1, 1, CBAM, [256]] # 4 attention   \n", "  - [-1, 1, CBAM, [16, 7]] # 4 attention   \n")

# The layout of YOLOv5-repository files, block style, with a fork's CBAM row (the input's channel count).
YOLOV5_BLOCK = """\
# YOLOv5 with CBAM (a fork of the YOLOv5 repository)

nc: 80  # number of classes
depth_multiple: 0.33  # model depth multiple
width_multiple: 0.50  # layer channel multiple
anchors:
  - [10,13, 16,30, 33,23]  # P3/8
  - [30,61, 62,45, 59,119]  # P4/16

backbone:
  # [from, number, module, args]
  - [-1, 1, Conv, [64, 6, 2, 2]]  # 0-P1/2
  - [-1, 1, Conv, [128, 3, 2]]  # 1-P2/4
  - [-1, 3, C3, [128]]
  - [-1, 1, Conv, [256, 3, 2]]  # 3-P3/8
  - [-1, 6, C3, [256]]
  - [-1, 1, CBAM, [256]]  # 5
  - [-1, 1, SPPF, [256, 5]]  # 6

head:
  - [-1, 1, Conv, [128, 1, 1]]
  - [-1, 1, nn.Upsample, [None, 2, 'nearest']]
  - [[-1, 2], 1, Concat, [1]]  # cat backbone P2
  - [-1, 3, C3, [128, False]]  # 10
  - [[10, 6], 1, Detect, [nc, anchors]]  # Detect(P2, P3)
"""

# The layout of YOLOv7-repository files, flow style, with a fork's SE row (channel count, then reduction).
YOLOV7_FLOW = """\
# parameters
nc: 80  # number of classes
depth_multiple: 1.0  # model depth multiple
width_multiple: 1.0  # layer channel multiple

anchors:
  - [10,13, 16,30, 33,23]  # P3/8
  - [30,61, 62,45, 59,119]  # P4/16

backbone:
  [[-1, 1, Conv, [32, 3, 2]],  # 0-P1/2
   [-1, 1, Conv, [64, 3, 2]],  # 1-P2/4
   [-1, 1, MP, []],  # 2-P3/8
   [-1, 1, Conv, [128, 1, 1]],
   [-1, 1, SE, [128, 8]],  # 4
   [-1, 1, SPPCSPC, [128]],  # 5
  ]

head:
  [[-1, 1, Conv, [64, 1, 1]],
   [-1, 1, nn.Upsample, [None, 2, 'nearest']],
   [[-1, 1], 1, Concat, [1]],  # 8
   [-1, 1, Conv, [64, 3, 1]],  # 9
   [[9, 5], 1, IDetect, [nc, anchors]]]  # Detect(P2, P3)
"""

# A YOLOv5 fork whose PSA rows are polarized self-attention, PSA(in_channel, parallel): the name of Ultralytics'
# YOLOv10 block PSA(c1, c2, e), which parse_model calls with (c1, args[0] scaled, *args[1:]).
PSA_FORK = """\
# YOLOv5 with polarized self-attention (a fork of the YOLOv5 repository)
nc: 80
depth_multiple: 0.33
width_multiple: 0.50
anchors:
  - [10,13, 16,30, 33,23]
  - [30,61, 62,45, 59,119]

backbone:
  - [-1, 1, Conv, [64, 6, 2, 2]]  # 0-P1/2
  - [-1, 1, Conv, [128, 3, 2]]  # 1-P2/4
  - [-1, 3, C3, [128]]
  - [-1, 1, PSA, [128, True]]  # 3
  - [-1, 1, Conv, [256, 3, 2]]  # 4-P3/8
  - [-1, 1, PSA, [256]]  # 5
  - [-1, 1, SPPF, [256, 5]]  # 6

head:
  - [-1, 1, Conv, [128, 1, 1]]
  - [-1, 1, nn.Upsample, [None, 2, 'nearest']]
  - [[-1, 2], 1, Concat, [1]]
  - [-1, 3, C3, [128, False]]  # 10
  - [[10, 6], 1, Detect, [nc, anchors]]
"""

# A YOLOv8-layout file with the fork blocks published configs use (C3k2_EMA, C2f_CBAM) and a fork's spelling of a
# catalog module (TripleAttention for TripletAttention), inside a block too.
FORK_BLOCKS = """\
nc: 80
scales:
  n: [0.33, 0.25, 1024]
backbone:
  - [-1, 1, Conv, [64, 3, 2]] # 0-P1/2
  - [-1, 1, Conv, [128, 3, 2]] # 1-P2/4
  - [-1, 1, C3k2_EMA, [128, False, 0.25]] # 2
  - [-1, 1, Conv, [256, 3, 2]] # 3-P3/8
  - [-1, 1, C2f_CBAM, [256, True]] # 4
  - [-1, 1, SPPF, [256, 5]] # 5
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]] # 6
  - [[-1, 2], 1, Concat, [1]] # 7
  - [-1, 1, C2f, [128]] # 8
  - [[8, 5], 1, Detect, [nc]] # 9
"""
SPELLED = FORK_BLOCKS.replace("C2f_CBAM, [256, True]] # 4", "C2f_TripleAttention, [256, True]] # 4").replace(
    "SPPF, [256, 5]] # 5", "TripleAttention, []] # 5"
)

# A flow-style file (the YOLOv5 repository's layout) whose index comments on rows 5 and 6 are swapped.
SWAPPED_FLOW = """\
nc: 80
depth_multiple: 0.33
width_multiple: 0.25

backbone:
  [[-1, 1, Conv, [64, 3, 2]],  # 0-P1/2
   [-1, 1, Conv, [128, 3, 2]],  # 1-P2/4
   [-1, 1, C2f, [128, True]],  # 2
   [-1, 1, Conv, [256, 3, 2]],  # 3-P3/8
   [-1, 1, C2f, [256, True]],  # 4
   [-1, 1, Conv, [512, 3, 2]],  # 6-P4/16
   [-1, 1, SPPF, [512, 5]],  # 5
  ]

head:
  [[-1, 1, nn.Upsample, [None, 2, 'nearest']],  # 7
   [[-1, 4], 1, Concat, [1]],  # 8
   [-1, 1, C2f, [256]],  # 9
   [[9, 6], 1, Detect, [nc]]]  # 10
"""
