"""Plain ``nn.Module`` files in the styles public attention code is written in (written for these tests, after the
public patterns: External-Attention-pytorch's ``channel=512`` defaults, timm's ``in_chs`` and keyword-only layers,
the CBAM authors' ``gate_channels``, RCAN's ``n_feats``, coordinate attention's ``inp, oup``, Ultralytics' ``c1,
c2``, einops-based self-attention), and ones that cannot be inserted between layers.

``MODULES`` maps a file name to (source, class name, --args, expected): the adapter name and the keyword arguments
the class is built with directly (``channels`` stands for the layer's input channels), or the refusal.
"""

from __future__ import annotations

C = "C"  # stands for the input channels of the layer the module follows
HEADER = "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n\n\n"

SE_ATTENTION = '''
class SEAttention(nn.Module):
    """Squeeze-and-excitation as External-Attention-pytorch writes it: a channel default of 512."""

    def __init__(self, channel=512, reduction=16):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channel // reduction, channel, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        b, c, _, _ = x.size()
        w = self.fc(self.pool(x).view(b, c)).view(b, c, 1, 1)
        return x * w.expand_as(x)
'''

TIMM_STYLE = '''
class SqueezeGate(nn.Module):
    """timm's way: in_chs, a ratio, and layers passed by keyword only."""

    def __init__(self, in_chs, rd_ratio=0.25, *, act_layer=nn.ReLU, gate_fn=torch.sigmoid, bias=True):
        super().__init__()
        hidden = max(8, int(in_chs * rd_ratio))
        self.reduce = nn.Conv2d(in_chs, hidden, 1, bias=bias)
        self.act = act_layer()
        self.expand = nn.Conv2d(hidden, in_chs, 1, bias=bias)
        self.gate_fn = gate_fn

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate_fn(self.expand(self.act(self.reduce(s))))
'''

GATE_CHANNELS = '''
class Flatten(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


class ChannelPart(nn.Module):
    def __init__(self, gate_channels, reduction_ratio=16, pool_types=("avg", "max")):
        super().__init__()
        self.mlp = nn.Sequential(
            Flatten(),
            nn.Linear(gate_channels, gate_channels // reduction_ratio),
            nn.ReLU(),
            nn.Linear(gate_channels // reduction_ratio, gate_channels),
        )
        self.pool_types = pool_types

    def forward(self, x):
        total = 0
        for kind in self.pool_types:
            pooled = F.adaptive_avg_pool2d(x, 1) if kind == "avg" else F.adaptive_max_pool2d(x, 1)
            total = total + self.mlp(pooled)
        return x * torch.sigmoid(total)[..., None, None]


class GateBlock(nn.Module):
    """The CBAM authors' naming: gate_channels, reduction_ratio, pool_types, no_spatial."""

    def __init__(self, gate_channels, reduction_ratio=16, pool_types=("avg", "max"), no_spatial=False):
        super().__init__()
        self.channel = ChannelPart(gate_channels, reduction_ratio, pool_types)
        self.no_spatial = no_spatial
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x):
        y = self.channel(x)
        if self.no_spatial:
            return y
        pooled = torch.cat([y.amax(1, keepdim=True), y.mean(1, keepdim=True)], 1)
        return y * torch.sigmoid(self.spatial(pooled))
'''

EINOPS_ATTENTION = '''from einops import rearrange


class TokenAttention(nn.Module):
    """Multi-head self-attention over the pixels, written with einops (dim, heads, dim_head)."""

    def __init__(self, dim, heads=4, dim_head=16):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head**-0.5
        self.to_qkv = nn.Conv2d(dim, inner * 3, 1, bias=False)
        self.to_out = nn.Conv2d(inner, dim, 1)

    def forward(self, x):
        h, w = x.shape[-2:]
        q, k, v = self.to_qkv(x).chunk(3, dim=1)
        q, k, v = (rearrange(t, "b (n d) x y -> b n (x y) d", n=self.heads) for t in (q, k, v))
        attn = (q @ k.transpose(-1, -2) * self.scale).softmax(-1)
        out = rearrange(attn @ v, "b n (x y) d -> b (n d) x y", x=h, y=w)
        return self.to_out(out) + x
'''

N_FEATS = '''
class ResidualChannelGate(nn.Module):
    """A super-resolution style block: n_feats and a reduction, positional only by habit."""

    def __init__(self, n_feats, reduction=16, res_scale=1.0):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feats, n_feats, 3, padding=1), nn.ReLU(True))
        self.squeeze = nn.Conv2d(n_feats, n_feats // reduction, 1)
        self.excite = nn.Conv2d(n_feats // reduction, n_feats, 1)
        self.res_scale = res_scale

    def forward(self, x):
        y = self.body(x)
        g = torch.sigmoid(self.excite(F.relu(self.squeeze(y.mean((2, 3), keepdim=True)))))
        return x + self.res_scale * y * g
'''

INP_OUP = '''
class HeightWidthAttention(nn.Module):
    """Coordinate-attention style: inp and oup, a reduction and a floor on the hidden width."""

    def __init__(self, inp, oup, reduction=32):
        super().__init__()
        mid = max(8, inp // reduction)
        self.conv1 = nn.Conv2d(inp, mid, 1)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv_h = nn.Conv2d(mid, oup, 1)
        self.conv_w = nn.Conv2d(mid, oup, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        x_h = x.mean(3, keepdim=True)
        x_w = x.mean(2, keepdim=True).permute(0, 1, 3, 2)
        y = F.hardswish(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = torch.sigmoid(self.conv_h(y_h))
        a_w = torch.sigmoid(self.conv_w(y_w.permute(0, 1, 3, 2)))
        return x * a_h * a_w
'''

C1_C2 = '''
class DepthwiseGate(nn.Module):
    """Ultralytics' convention: c1, c2 and a kernel k."""

    def __init__(self, c1, c2, k=3):
        super().__init__()
        self.dw = nn.Conv2d(c1, c1, k, padding=k // 2, groups=c1)
        self.pw = nn.Conv2d(c1, c2, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.pw(self.dw(x)))
'''

REQUIRED_HEADS = '''
class HeadsGate(nn.Module):
    """A required hyper-parameter with no default (dim, num_heads)."""

    def __init__(self, dim, num_heads, qkv_bias=False):
        super().__init__()
        self.num_heads = num_heads
        self.qk = nn.Conv2d(dim, 2 * num_heads, 1, bias=qkv_bias)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        q, k = self.qk(x).chunk(2, dim=1)
        gate = torch.sigmoid((q * k).mean(1, keepdim=True))
        return self.proj(x * gate) + x
'''

ODD_NAME = '''
class PlanesGate(nn.Module):
    """A channel argument no convention names: planes_in."""

    def __init__(self, planes_in, k=3):
        super().__init__()
        self.conv = nn.Conv2d(planes_in, planes_in, k, padding=k // 2, groups=planes_in)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(x))
'''

STRIDED = """
class DownAttention(nn.Module):
    def __init__(self, in_channels, stride=2):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, 3, stride, 1)

    def forward(self, x):
        return self.conv(x) * torch.sigmoid(self.conv(x))
"""

WIDENS = """
class WideGate(nn.Module):
    def __init__(self, channels, expansion=2):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * expansion, 1)

    def forward(self, x):
        return torch.sigmoid(self.conv(x))
"""

WINDOWS = '''
class WindowMix(nn.Module):
    """Window attention without padding: H and W must be multiples of the window."""

    def __init__(self, dim, window=4):
        super().__init__()
        self.window = window
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        s = self.window
        t = x.view(b, c, h // s, s, w // s, s)
        t = t.softmax(dim=3) * t
        return self.proj(t.view(b, c, h, w))
'''

TUPLE_OUT = """
class AttentionWithMap(nn.Module):
    def __init__(self, channel):
        super().__init__()
        self.conv = nn.Conv2d(channel, 1, 1)

    def forward(self, x):
        a = torch.sigmoid(self.conv(x))
        return x * a, a
"""

REFUSED_STRIDE = (
    "output 1x64x10x10 for input 1x64x20x20: the module changes the stride; it cannot be inserted between layers"
)
REFUSED_WIDTH = (
    "output 1x128x20x20 for input 1x64x20x20: the module changes the channel count; it cannot be inserted between "
    "layers"
)

# file -> (source, class, --args or None, (adapter name, direct kwargs) or the refusal text)
MODULES = {
    "se_attention.py": (
        SE_ATTENTION,
        "SEAttention",
        "{reduction: 8}",
        ("SeAttentionSEAttention", {"channel": C, "reduction": 8}),
    ),
    "timm_style.py": (
        TIMM_STYLE,
        "SqueezeGate",
        "[0.5, {bias: false}]",
        ("SqueezeGate", {"in_chs": C, "rd_ratio": 0.5, "bias": False}),
    ),
    "gate_channels.py": (
        GATE_CHANNELS,
        "GateBlock",
        "{reduction_ratio: 8, pool_types: [avg]}",
        ("GateBlock", {"gate_channels": C, "reduction_ratio": 8, "pool_types": ["avg"]}),
    ),
    "einops_attention.py": (
        EINOPS_ATTENTION,
        "TokenAttention",
        "[2, 8]",
        ("TokenAttention", {"dim": C, "heads": 2, "dim_head": 8}),
    ),
    "n_feats.py": (N_FEATS, "ResidualChannelGate", None, ("ResidualChannelGate", {"n_feats": C})),
    "inp_oup.py": (
        INP_OUP,
        "HeightWidthAttention",
        "[16]",
        ("HeightWidthAttention", {"inp": C, "oup": C, "reduction": 16}),
    ),
    "c1_c2.py": (C1_C2, "DepthwiseGate", "{k: 5}", ("DepthwiseGate", {"c1": C, "c2": C, "k": 5})),
    "required_heads.py": (REQUIRED_HEADS, "HeadsGate", "[4]", ("HeadsGate", {"dim": C, "num_heads": 4})),
    "strided.py": (STRIDED, "DownAttention", None, REFUSED_STRIDE),
    "widens.py": (WIDENS, "WideGate", None, REFUSED_WIDTH),
    "windows.py": (WINDOWS, "WindowMix", None, "fails at 15x20: RuntimeError: shape '[1, 64, 3, 4, 5, 4]' is invalid"),
    "tuple_out.py": (
        TUPLE_OUT,
        "AttentionWithMap",
        None,
        "returns a tuple for input 1x64x20x20: an attention module returns one tensor shaped like its input",
    ),
}
