"""Forward time of catalog modules against the YOLO tutorials' versions of the same configuration.

The versions compared are the code the YOLO attention tutorials paste: CloFormer's ``EfficientAttention``
(https://github.com/qhfan/CloFormer), ``HaloAttention`` from https://github.com/lucidrains/halonet-pytorch,
``se_block``/``eca_block``/``cbam_block`` of the widely copied ``nets/attention.py``
(https://github.com/bubbliiiing/yolov4-tiny-pytorch) with ``CoordAtt`` (https://github.com/houqb/CoordAttention),
and ``LSKA`` (https://github.com/StevenLauHKHK/Large-Separable-Kernel-Attention). They are not stored in this
repository: the code is read at run time from text copies of the tutorial pages (``--tutorials DIR``, one ``.txt``
per page, found by the classes they contain), which paste the module code into prose. Two pages lost their line
breaks (HaloAttention and LSKA are flattened onto a few lines, indentation gone) and one lost only its indentation
(the attention.py blocks); :func:`reflow` rebuilds them with the heuristics described there. ``einops``, ``timm``
and ``efficientnet_pytorch`` are not dependencies: small stand-ins are put in ``sys.modules`` before the tutorial
code runs.

    .venv/bin/python benchmarks/bench_tutorial_modules.py --tutorials DIR [--runs 50] [--threads N]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from attnsurgeon.catalog.modules.cbam import CBAM  # noqa: E402
from attnsurgeon.catalog.modules.coord_att import CoordAtt  # noqa: E402
from attnsurgeon.catalog.modules.eca import ECA  # noqa: E402
from attnsurgeon.catalog.modules.efficient_attention import EfficientAttention  # noqa: E402
from attnsurgeon.catalog.modules.halo_attention import HaloAttention  # noqa: E402
from attnsurgeon.catalog.modules.lska import LSKA  # noqa: E402
from attnsurgeon.catalog.modules.se import SE  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_reflow import depth_scan, reflow  # noqa: E402

# ----------------------------------------------------------------------------------------------------------------------
# Stand-ins for the tutorial code's third-party imports


def _einops_parse(side: str) -> list[list[str]]:
    """'b (h w) c' -> [['b'], ['h', 'w'], ['c']]; '()' is an empty group (a unit axis)."""
    groups, cur = [], None
    for tok in re.findall(r"\(|\)|[A-Za-z_]\w*|\d+", side):
        if tok == "(":
            cur = []
        elif tok == ")":
            groups.append(cur)
            cur = None
        elif cur is not None:
            cur.append(tok)
        else:
            groups.append([tok])
    return groups


def _einops_apply(t: torch.Tensor, pattern: str, sizes: dict[str, int], allow_new: bool) -> torch.Tensor:
    lhs, rhs = (_einops_parse(s) for s in pattern.split("->"))
    sizes = dict(sizes)
    for group, dim in zip(lhs, t.shape, strict=True):
        unknown = [a for a in group if a not in sizes]
        known = 1
        for a in group:
            known *= sizes.get(a, 1)
        if len(unknown) == 1:
            sizes[unknown[0]] = dim // known
    elementary = [a for g in lhs for a in g]
    t = t.reshape([sizes[a] for a in elementary])
    kept = [a for g in rhs for a in g if a in elementary]
    t = t.permute([elementary.index(a) for a in kept])
    if allow_new:  # repeat: insert new axes (expanded) where the right side names them
        shape, it = [], iter(range(len(kept)))
        for a in (a for g in rhs for a in g):
            if a in elementary:
                next(it)
            else:
                t = t.unsqueeze(len(shape))
            shape.append(sizes[a])
        t = t.expand(shape)
    out = []
    for g in rhs:
        n = 1
        for a in g:
            n *= sizes[a]
        out.append(n)
    return t.reshape(out)


def _install_shims() -> None:
    einops = types.ModuleType("einops")
    einops.rearrange = lambda t, pattern, **k: _einops_apply(t, pattern, k, False)
    einops.repeat = lambda t, pattern, **k: _einops_apply(t, pattern, k, True)
    sys.modules.setdefault("einops", einops)

    class DropPath(nn.Module):
        def __init__(self, p: float = 0.0) -> None:
            super().__init__()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    for name in ("timm", "timm.models", "timm.models.layers"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["timm.models.layers"].DropPath = DropPath
    for name in ("efficientnet_pytorch", "efficientnet_pytorch.model"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["efficientnet_pytorch.model"].MemoryEfficientSwish = nn.SiLU  # the same function


# ----------------------------------------------------------------------------------------------------------------------
# Loading the tutorial pages

_CODE_LINE = re.compile(
    r"^(class |def |return|assert |if |elif |else:|for |super\(|self\.|#|@|import |from )"
    r"|^[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_]\w*)*\s*([-+*/]?=)(?!=)"
    r"|^[A-Za-z_][\w.]*\("
)


def _code_block(doc: str, start: str) -> str:
    """Consecutive code lines from the line starting with `start`, for documents that kept their line breaks."""
    lines = doc.splitlines()
    first = next(i for i, s in enumerate(lines) if s.strip().startswith(start))
    out, depth = [], 0
    for s in lines[first:]:
        if depth <= 0 and not _CODE_LINE.match(s.strip()):
            break
        out.append(s)
        depth = depth_scan(" ".join(out) + " ")[-1]
    return "\n".join(out)


def _between(doc: str, start: str, end: str) -> str:
    """The text from the first `start` to the next `end` after it (tables of contents repeat the headings)."""
    i = doc.index(start)
    return doc[i : doc.index(end, i)]


def _exec(code: str, name: str) -> dict[str, object]:
    scope: dict[str, object] = {"__name__": f"tutorial_{name}"}
    exec(compile(code, f"<tutorial {name}>", "exec"), scope)
    return scope


def _page(pages: list[str], marker: str) -> str:
    """The tutorial page whose code contains ``marker``."""
    found = [page for page in pages if marker in page]
    if not found:
        raise SystemExit(f"no tutorial page in --tutorials contains {marker!r}")
    return found[0]


def load_tutorials(folder: Path) -> dict[str, dict[str, object]]:
    _install_shims()
    pages = [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))]
    tutorials: dict[str, dict[str, object]] = {}
    # CloFormer: line breaks and indentation intact
    doc = _page(pages, "class EfficientAttention")
    code = _between(doc, "import torch", "task与yaml配置")
    tutorials["cloformer"] = _exec(code, "cloformer")
    # HaloAttention: flattened
    doc = _page(pages, "class HaloAttention")
    code = _between(doc, "import torch", "二、添加")
    tutorials["halo"] = _exec(reflow(code), "halo")
    # SE, ECA, CoordAtt, CBAM of attention.py: line breaks kept, indentation lost
    doc = _page(pages, "class se_block")
    code = "import math\nimport torch\nimport torch.nn as nn\n"
    for start in ("class se_block", "class eca_block", "class h_sigmoid", "class ChannelAttention"):
        code += reflow(_code_block(doc, start))
    tutorials["attention_py"] = _exec(code, "attention_py")
    # LSKA: flattened
    doc = _page(pages, "class LSKA")
    code = _between(doc, "import torch", "四、")
    tutorials["lska"] = _exec(reflow(code), "lska")
    return tutorials


# ----------------------------------------------------------------------------------------------------------------------
# Timing


def median_ms_pair(
    fn_a: Callable[[], object], fn_b: Callable[[], object], runs: int, sync: Callable[[], None]
) -> tuple[float, float]:
    """Medians (ms) of two functions timed alternately, so both see the same machine load."""
    for _ in range(max(3, runs // 10)):
        fn_a()
        fn_b()
    sync()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for fn, acc in ((fn_a, times[0]), (fn_b, times[1])):
            t0 = time.perf_counter()
            fn()
            sync()
            acc.append(time.perf_counter() - t0)
    return statistics.median(times[0]) * 1e3, statistics.median(times[1]) * 1e3


def pairs(tutorials: dict[str, dict[str, object]], c: int) -> list[tuple[str, nn.Module, nn.Module]]:
    s0, s1, s2, s3 = (tutorials[k] for k in ("cloformer", "halo", "attention_py", "lska"))
    heads = c // 16
    return [
        ("SE(r=16)", SE(c, 16), s2["se_block"](c, 16)),
        ("ECA", ECA(c), s2["eca_block"](c)),
        ("CBAM(r=8,k=7)", CBAM(c, 8, 7), s2["cbam_block"](c, 8, 7)),
        ("CoordAtt(r=32)", CoordAtt(c, 32), s2["CoordAtt"](c, c, 32)),
        ("LSKA(k=7)", LSKA(c, 7), s3["LSKA"](c, 7)),
        ("LSKA(k=23)", LSKA(c, 23), s3["LSKA"](c, 23)),
        ("Halo(2,1,64,8)", HaloAttention(c, 2, 1, 64, 8), s1["HaloAttention"](c, 2, 1, 64, 8)),
        (
            f"CloFormer({heads}h,[{heads // 2},{heads // 2}],[7],w=5)",
            EfficientAttention(c, heads, (heads // 2, heads // 2), (7,), 5),
            s0["EfficientAttention"](c, heads, [heads // 2, heads // 2], [7], 5),
        ),
    ]


def _copy_weights(src: nn.Module, dst: nn.Module) -> bool:
    """Load src's state into dst by name, else by order when every shape agrees; False when neither fits."""
    a, b = src.state_dict(), dst.state_dict()
    if a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a):
        dst.load_state_dict(a)
        return True
    if len(a) == len(b) and all(x.shape == y.shape for x, y in zip(a.values(), b.values(), strict=True)):
        dst.load_state_dict(dict(zip(b.keys(), a.values(), strict=True)))
        return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tutorials", type=Path, required=True, help="folder of text copies of the tutorial pages (.txt)"
    )
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tutorials = load_tutorials(args.tutorials)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, median of {args.runs} runs, eval, no_grad"
    )
    header = f"{'device':6} {'input':14} {'module':28} {'params ours/tut.':>19} {'ours ms':>9} {'tut. ms':>9} "
    print(header + f"{'tut./ours':>9} {'max|diff|':>10}")
    for device in devices:
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for shape in ((1, 256, 20, 20), (1, 128, 40, 40)):
            c = shape[1]
            x = torch.randn(*shape, device=device)
            torch.manual_seed(0)
            for name, ours, theirs in pairs(tutorials, c):
                ours, theirs = ours.to(device).eval(), theirs.to(device).eval()
                p_ours = sum(p.numel() for p in ours.parameters())
                p_theirs = sum(p.numel() for p in theirs.parameters())
                # outputs are compared where the weights map onto each other and the tutorial has no known bug there
                diff = "-"
                if not name.startswith("Halo") and _copy_weights(theirs, ours):
                    with torch.no_grad():
                        diff = f"{(ours(x) - theirs(x)).abs().max().item():.1e}"
                with torch.no_grad():
                    t_ours, t_theirs = median_ms_pair(
                        lambda m=ours, x=x: m(x), lambda m=theirs, x=x: m(x), args.runs, sync
                    )
                size = "x".join(map(str, shape))
                print(
                    f"{device:6} {size:14} {name:28} {p_ours:>9}/{p_theirs:<9} {t_ours:9.3f} {t_theirs:9.3f} "
                    f"{t_theirs / t_ours:9.2f} {diff:>10}"
                )


if __name__ == "__main__":
    main()
