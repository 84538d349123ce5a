"""Flow-style model YAMLs as the YOLOv5, YOLOv7 and YOLOv9 repositories and their forks write them, and a converter
that writes a block-style (Ultralytics) file's rows in flow style."""

from __future__ import annotations

import re

# The layout of yolov5s.yaml in ultralytics/yolov5 v6.0 (anchors with two numbers per pair, a comma after every row,
# the closing bracket on its own line).
YOLOV5S = """\
# YOLOv5 🚀 by Ultralytics, GPL-3.0 license

# Parameters
nc: 80  # number of classes
depth_multiple: 0.33  # model depth multiple
width_multiple: 0.50  # layer channel multiple
anchors:
  - [10,13, 16,30, 33,23]  # P3/8
  - [30,61, 62,45, 59,119]  # P4/16
  - [116,90, 156,198, 373,326]  # P5/32

# YOLOv5 v6.0 backbone
backbone:
  # [from, number, module, args]
  [[-1, 1, Conv, [64, 6, 2, 2]],  # 0-P1/2
   [-1, 1, Conv, [128, 3, 2]],  # 1-P2/4
   [-1, 3, C3, [128]],
   [-1, 1, Conv, [256, 3, 2]],  # 3-P3/8
   [-1, 6, C3, [256]],
   [-1, 1, Conv, [512, 3, 2]],  # 5-P4/16
   [-1, 9, C3, [512]],
   [-1, 1, Conv, [1024, 3, 2]],  # 7-P5/32
   [-1, 3, C3, [1024]],
   [-1, 1, SPPF, [1024, 5]],  # 9
  ]

# YOLOv5 v6.0 head
head:
  [[-1, 1, Conv, [512, 1, 1]],
   [-1, 1, nn.Upsample, [None, 2, 'nearest']],
   [[-1, 6], 1, Concat, [1]],  # cat backbone P4
   [-1, 3, C3, [512, False]],  # 13

   [-1, 1, Conv, [256, 1, 1]],
   [-1, 1, nn.Upsample, [None, 2, 'nearest']],
   [[-1, 4], 1, Concat, [1]],  # cat backbone P3
   [-1, 3, C3, [256, False]],  # 17 (P3/8-small)

   [-1, 1, Conv, [256, 3, 2]],
   [[-1, 14], 1, Concat, [1]],  # cat head P4
   [-1, 3, C3, [512, False]],  # 20 (P4/16-medium)

   [-1, 1, Conv, [512, 3, 2]],
   [[-1, 10], 1, Concat, [1]],  # cat head P5
   [-1, 3, C3, [1024, False]],  # 23 (P5/32-large)

   [[17, 20, 23], 1, Detect, [nc, anchors]],  # Detect(P3, P4, P5)
  ]
"""

# The style of yolov7-tiny.yaml in WongKinYiu/yolov7: activation objects as args, trailing spaces after comments,
# lines of spaces between blocks, lists without spaces ([74,75,76]), the head's first row on the key's next line.
YOLOV7_TINY = """\
# parameters
nc: 80  # number of classes
depth_multiple: 1.0  # model depth multiple
width_multiple: 1.0  # layer channel multiple

# anchors
anchors:
  - [10,13, 16,30, 33,23]  # P3/8
  - [30,61, 62,45, 59,119]  # P4/16
  - [116,90, 156,198, 373,326]  # P5/32

# yolov7-tiny backbone
backbone:
  # [from, number, module, args] c2, k=1, s=1, p=None, g=1, act=True
  [[-1, 1, Conv, [32, 3, 2, None, 1, nn.LeakyReLU(0.1)]],  # 0-P1/2  
  
   [-1, 1, Conv, [64, 3, 2, None, 1, nn.LeakyReLU(0.1)]],  # 1-P2/4    
   
   [-1, 1, Conv, [32, 1, 1, None, 1, nn.LeakyReLU(0.1)]],
   [-2, 1, Conv, [32, 1, 1, None, 1, nn.LeakyReLU(0.1)]],
   [-1, 1, Conv, [32, 3, 1, None, 1, nn.LeakyReLU(0.1)]],
   [-1, 1, Conv, [32, 3, 1, None, 1, nn.LeakyReLU(0.1)]],
   [[-1, -2, -3, -4], 1, Concat, [1]],
   [-1, 1, Conv, [64, 1, 1, None, 1, nn.LeakyReLU(0.1)]],  # 7
   
   [-1, 1, MP, []],  # 8-P3/8
   [-1, 1, Conv, [64, 1, 1, None, 1, nn.LeakyReLU(0.1)]],
   [-2, 1, Conv, [64, 1, 1, None, 1, nn.LeakyReLU(0.1)]],
   [-1, 1, Conv, [64, 3, 1, None, 1, nn.LeakyReLU(0.1)]],
   [-1, 1, Conv, [64, 3, 1, None, 1, nn.LeakyReLU(0.1)]],
   [[-1, -2, -3, -4], 1, Concat, [1]],
   [-1, 1, Conv, [128, 1, 1, None, 1, nn.LeakyReLU(0.1)]],  # 14
   
   [-1, 1, MP, []],  # 15-P4/16
   [-1, 1, Conv, [128, 1, 1, None, 1, nn.LeakyReLU(0.1)]],
   [-2, 1, Conv, [128, 1, 1, None, 1, nn.LeakyReLU(0.1)]],
   [-1, 1, Conv, [128, 3, 1, None, 1, nn.LeakyReLU(0.1)]],
   [-1, 1, Conv, [128, 3, 1, None, 1, nn.LeakyReLU(0.1)]],
   [[-1, -2, -3, -4], 1, Concat, [1]],
   [-1, 1, Conv, [256, 1, 1, None, 1, nn.LeakyReLU(0.1)]],  # 21
  ]

# yolov7-tiny head
head:
  [[-1, 1, SPPCSPC, [128]], # 22
  
   [-1, 1, Conv, [64, 1, 1, None, 1, nn.LeakyReLU(0.1)]],
   [-1, 1, nn.Upsample, [None, 2, 'nearest']],
   [14, 1, Conv, [64, 1, 1, None, 1, nn.LeakyReLU(0.1)]], # route backbone P3
   [[-1, -2], 1, Concat, [1]],
   [-1, 1, Conv, [64, 1, 1, None, 1, nn.LeakyReLU(0.1)]],  # 27
   
   [-1, 1, Conv, [128, 3, 2, None, 1, nn.LeakyReLU(0.1)]],
   [[-1, 22], 1, Concat, [1]],
   [-1, 1, Conv, [128, 1, 1, None, 1, nn.LeakyReLU(0.1)]],  # 30
      
   [27, 1, Conv, [128, 3, 1, None, 1, nn.LeakyReLU(0.1)]],
   [30, 1, Conv, [256, 3, 1, None, 1, nn.LeakyReLU(0.1)]],

   [[31,32], 1, IDetect, [nc, anchors]],   # Detect(P3, P4)
  ]
"""

# The style of yolov9-c.yaml / gelan-c.yaml in WongKinYiu/yolov9: "[" on its own line, comment lines inside the
# sequence, Silence, RepNCSPELAN4, ADown, SPPELAN, CBLinear/CBFuse, DualDDetect.
YOLOV9_C = """\
# YOLOv9

# parameters
nc: 80  # number of classes
depth_multiple: 1.0  # model depth multiple
width_multiple: 1.0  # layer channel multiple
#activation: nn.LeakyReLU(0.1)

# anchors
anchors: 3

# YOLOv9 backbone
backbone:
  [
   [-1, 1, Silence, []],  

   # conv down
   [-1, 1, Conv, [64, 3, 2]],  # 1-P1/2

   # conv down
   [-1, 1, Conv, [128, 3, 2]],  # 2-P2/4

   # elan-1 block
   [-1, 1, RepNCSPELAN4, [256, 128, 64, 1]],  # 3

   # avg-conv down
   [-1, 1, ADown, [256]],  # 4-P3/8

   # elan-2 block
   [-1, 1, RepNCSPELAN4, [512, 256, 128, 1]],  # 5

   # avg-conv down
   [-1, 1, ADown, [512]],  # 6-P4/16

   # elan-2 block
   [-1, 1, RepNCSPELAN4, [512, 512, 256, 1]],  # 7
  ]

# YOLOv9 head
head:
  [
   # elan-spp block
   [-1, 1, SPPELAN, [512, 256]],  # 8

   # up-concat merge
   [-1, 1, nn.Upsample, [None, 2, 'nearest']],
   [[-1, 5], 1, Concat, [1]],  # cat backbone P3

   # elan-2 block
   [-1, 1, RepNCSPELAN4, [256, 256, 128, 1]],  # 11 (P3/8-small)

   # multi-level reversible auxiliary branch

   # routing
   [5, 1, CBLinear, [[256]]], # 12
   [7, 1, CBLinear, [[256, 512]]], # 13

   # conv down fuse
   [0, 1, Conv, [64, 3, 2]],  # 14-P1/2
   [-1, 1, Conv, [128, 3, 2]],  # 15-P2/4
   [-1, 1, ADown, [256]],  # 16-P3/8
   [[12, 13, -1], 1, CBFuse, [[0, 0]]], # 17

   # detect
   [[11, 17], 1, DualDDetect, [nc]],  # DualDDetect(A3, P3)
  ]
"""

_ROW_RE = re.compile(r"^(\s*)- (\[.*\])( *#.*)?$")


def to_flow(text: str, close: str = "own-line") -> str:
    """Write the ``- [row]`` lines of ``backbone``/``head`` as one flow sequence each: the first row opens it, a comma
    after every row, ``close`` "own-line" (``]`` on its own line), "same-line" (after the last row, no comma) or
    "no-comma" (own line, no comma after the last row)."""
    out: list[str] = []
    section = None
    rows_at: list[tuple[int, str, str, str]] = []  # (line in out, prefix, row, comment)

    def finish() -> None:
        if not rows_at:
            return
        last, prefix, row, comment = rows_at[-1]
        indent = re.match(r"\s*", out[rows_at[0][0]]).group(0)  # type: ignore[union-attr]
        if close == "same-line":
            out[last] = f"{prefix}{row}]{comment}"
        elif close == "no-comma":
            out[last] = f"{prefix}{row}{comment}"
            out.insert(last + 1, indent + "]")
        else:
            out.insert(last + 1, indent + "]")
        rows_at.clear()

    for line in text.splitlines():
        if re.match(r"^\S", line) and not line.startswith("#"):
            finish()
            section = line.split(":")[0] if line.split(":")[0] in ("backbone", "head") else None
        match = _ROW_RE.match(line) if section else None
        if match:
            indent, row, comment = match.group(1), match.group(2), match.group(3) or ""
            prefix = f"{indent}{'[' if not rows_at else ' '}"
            out.append(f"{prefix}{row},{comment}")
            rows_at.append((len(out) - 1, prefix, row, comment))
        else:
            out.append(line)
    finish()
    return "\n".join(out) + "\n"


def block_head(text: str) -> str:
    """A mixed file: ``text``'s flow-style head written as a block sequence of flow rows (the backbone stays flow)."""
    start = text.index("\nhead:\n") + len("\nhead:\n")
    out = []
    for line in text[start:].splitlines():
        match = re.match(r"^ {2}\[?\s*(\[.*\]),(.*)$", line)
        if match and not line.strip().startswith("#"):
            out.append(f"  - {match.group(1)}{match.group(2)}")
        elif line.strip() != "]":
            out.append(line)
    return text[:start] + "\n".join(out) + "\n"
