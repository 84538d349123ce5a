"""``attnsurgeon cam``: where a base model and its variant look, on the same images, as heat maps side by side.

The images go through the model the way Ultralytics predicts (letterboxed to ``imgsz`` with grey 114 padding, RGB,
0..1). The target is the score of the model's own predictions, as the grad-cam package's YOLO examples define it:
for a detector, the class scores of the boxes it keeps after NMS at ``conf`` (its most confident box when it keeps
none); for a classifier, the score of its top class. The heat maps come from the grad-cam package (``pip install
grad-cam``, extra ``cam``), imported with torch only when a map is computed. Which layers: ``heads`` (the feature maps
the head reads), ``new`` (the variant's new layers; the base is looked at in the same places,
:mod:`attnsurgeon.figures.layers`), or a layer index of the variant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnsurgeon.core import yamlio
from attnsurgeon.core.graph import Graph
from attnsurgeon.errors import CheckpointError, ImageError, MissingExtraError, UsageError
from attnsurgeon.figures.layers import correspondence, label
from attnsurgeon.figures.panels import grid, overlay, side_by_side

METHODS = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "eigencam": "EigenCAM",
    "layercam": "LayerCAM",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "eigengradcam": "EigenGradCAM",
}
INSTALL = "pip install 'attnsurgeon[cam]' (or: pip install grad-cam)"
Progress = Callable[[str], None]


@dataclass
class Loaded:
    name: str
    model: Any
    graph: Graph
    task: str  # "detect" or "classify"
    random: bool  # built from a YAML: random weights


@dataclass
class CamResult:
    files: list[Path]
    base_layers: list[int]
    variant_layers: list[int]
    maps: list[dict[str, Any]] = field(default_factory=list)  # per image: image, base, variant (H x W in 0..1), boxes
    warnings: list[str] = field(default_factory=list)


def _grad_cam() -> Any:
    try:
        import pytorch_grad_cam
    except ImportError:
        raise MissingExtraError(f"attnsurgeon cam needs the grad-cam package: {INSTALL}") from None
    return pytorch_grad_cam


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 H x W x 3; ImageError naming the file for anything PIL cannot read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise ImageError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError, ValueError, ImportError):  # ImportError: a format plugin PIL lacks
        raise ImageError(f"{path}: not an image (PIL cannot read it)") from None


def letterbox(image: np.ndarray, imgsz: int) -> np.ndarray:
    from ultralytics.data.augment import LetterBox

    return LetterBox(new_shape=(imgsz, imgsz), auto=False)(image=image)


def load(spec: str | Path) -> Loaded:
    """A checkpoint (its weights) or a YAML (random weights), float32, fused, in eval mode."""
    from attnsurgeon.ultralytics_bridge import checkpoints, ultra

    path = Path(spec)
    if path.suffix.lower() in (".pt", ".pth"):
        ckpt = checkpoints.load_checkpoint(path)
        model, graph, random = ckpt.model, ckpt.graph, False
    else:
        doc = yamlio.load(spec)
        model = ultra.build_model(doc.plain(), doc.scale or None, f"{doc.stem}.yaml")
        graph, random = doc.graph, True
    head = graph.rows[-1].module
    task = "classify" if head == "Classify" else "detect"
    if head not in ("Classify", "Detect"):
        raise CheckpointError(f"{spec}: a {head} model; cam draws detection and classification models")
    with ultra.quiet():
        model = model.float().eval().fuse(verbose=False)  # as predict runs it: Conv and BatchNorm folded into one
    return Loaded(path.name, model, graph, task, random)


def scores_module(model: Any) -> Any:
    """The model as grad-cam calls it: the prediction tensor only (B x (4+nc) x anchors, or B x nc)."""
    from torch import nn

    class Scores(nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            out = self.inner(x)
            return out[0] if isinstance(out, (tuple, list)) else out

    return Scores(model)


class Target:
    """The target of one image, as grad-cam calls it with that image's output: the scores of the model's own
    predictions, chosen from that same output (so no separate predict pass); ``boxes`` what to draw."""

    def __init__(self, task: str, conf: float) -> None:
        self.task, self.conf = task, conf
        self.picks: list[tuple[int, int]] | None = None  # (class, anchor) or (class, -1) for a classifier
        self.boxes = np.zeros((0, 6), dtype=np.float32)

    def choose(self, out: Any) -> None:
        out = out.detach()
        if self.task == "classify":
            c = int(out.argmax())
            self.picks, self.boxes = [(c, -1)], np.array([[0, 0, 0, 0, float(out[c]), c]], dtype=np.float32)
            return
        from ultralytics.utils.nms import non_max_suppression

        kept, idxs = non_max_suppression(out[None], self.conf, 0.45, return_idxs=True)
        anchors, det = idxs[0].reshape(-1).long().tolist(), kept[0]
        self.picks = list(zip(det[:, 5].long().tolist(), anchors, strict=True))
        self.boxes = det.cpu().numpy()
        if not self.picks:  # nothing above conf: its most confident anchor
            best = int(out[4:].max(0).values.argmax())
            self.picks = [(int(out[4:, best].argmax()), best)]

    def __call__(self, out: Any) -> Any:
        if self.picks is None:
            self.choose(out)
        assert self.picks is not None
        if self.task == "classify":
            return out[self.picks[0][0]]
        return sum(out[4 + c, a] for c, a in self.picks)


def _projection(activations: np.ndarray) -> np.ndarray:
    """EigenCAM's map: each image's activations (C x H x W) projected on their first principal component. The same
    as grad-cam's get_2d_projection, with the thin SVD (its full one builds an HW x HW matrix: 6400 x 6400 at P3)."""
    out = []
    for a in np.nan_to_num(activations):
        flat = a.reshape(a.shape[0], -1).T
        flat = flat - flat.mean(axis=0)
        _, _, vt = np.linalg.svd(flat, full_matrices=False)
        out.append((flat @ vt[0]).reshape(a.shape[1:]))
    return np.float32(out)


def _cam_class(gc: Any, method: str) -> Any:
    base = getattr(gc, METHODS[method])
    if method not in ("eigencam", "eigengradcam"):
        return base

    class Thin(base):  # type: ignore[misc, valid-type]
        def get_cam_image(self, *args: Any) -> np.ndarray:  # (input, layer, category, activations, grads, smooth)
            activations, grads = args[3], args[4]
            return _projection(activations if method == "eigencam" else grads * activations)

    return Thin


def pick_layers(base: Loaded, variant: Loaded, layer: str) -> tuple[list[int], list[int]]:
    """(base layers, variant layers) for ``--layer heads|new|K`` (K: an index of the variant)."""
    new, place = correspondence(base.graph, variant.graph)
    last = len(variant.graph) - 1
    if layer == "heads":
        return base.graph.outputs(), variant.graph.outputs()
    if layer == "new":
        if not new:
            raise UsageError(f"--layer new: {variant.name} has no layer that {base.name} does not have")
        return sorted({place[j] for j in new}), new
    if not layer.lstrip("-").isdigit():
        raise UsageError(f"--layer {layer!r}: give heads, new or a layer index of the variant (0 to {last - 1})")
    k = int(layer)
    if not 0 <= k < last:
        raise UsageError(f"--layer {k} is not a feature-map layer of {variant.name}, which has layers 0 to {last - 1}")
    return [place[k]], [k]


def heat_maps(loaded: Loaded, layers: list[int], batch: Any, conf: float, method: str) -> tuple[np.ndarray, list]:
    """(N x H x W maps in 0..1 from grad-cam's ``method`` on ``layers`` (several layers: their mean), the boxes of
    each image). Gradients flow to the input, not into the weights (half the backward work)."""
    gc = _grad_cam()
    targets = [Target(loaded.task, conf) for _ in range(batch.shape[0])]
    loaded.model.requires_grad_(False)
    batch = batch.clone().requires_grad_(True)
    cam_class = _cam_class(gc, method)
    with cam_class(model=scores_module(loaded.model), target_layers=[loaded.model.model[i] for i in layers]) as cam:
        maps = cam(input_tensor=batch, targets=targets)
        for target, out in zip(targets, cam.outputs, strict=True):
            if target.picks is None:  # gradient-free methods never call their targets
                target.choose(out)
    return np.nan_to_num(np.asarray(maps, dtype=np.float32)), [t.boxes for t in targets]


def attention_maps(loaded: Loaded, layers: list[int], batch: Any) -> np.ndarray:
    """N x H x W in 0..1: the module's own spatial attention map in each layer (the last submodule whose output has one
    channel, as CBAM's 7x7 gate), upsampled to the input and averaged over ``layers``."""
    import torch
    import torch.nn.functional as F

    found: dict[int, Any] = {}
    handles = []
    for i in layers:
        for sub in loaded.model.model[i].modules():

            def hook(_m: Any, _inputs: Any, out: Any, i: int = i) -> None:
                if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[1] == 1:
                    found[i] = out

            handles.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            loaded.model(batch)
    finally:
        for h in handles:
            h.remove()
    missing = [i for i in layers if i not in found]
    if missing:
        row = loaded.graph.rows[missing[0]]
        raise UsageError(
            f"--attention-map: layer {missing[0]} ({label(row)}) of {loaded.name} computes no spatial attention map "
            "(a one-channel map, as CBAM's); leave --attention-map out to see its Grad-CAM"
        )
    maps = []
    for i in layers:
        up = F.interpolate(found[i].float(), size=batch.shape[2:], mode="bilinear", align_corners=False)[:, 0]
        low = up.amin((1, 2), keepdim=True)
        maps.append((up - low) / (up.amax((1, 2), keepdim=True) - low).clamp_min(1e-12))
    return torch.stack(maps).mean(0).cpu().numpy()


def cam(
    base: str | Path,
    variant: str | Path,
    images: Sequence[str | Path],
    output: str | Path,
    method: str = "gradcam",
    layer: str = "heads",
    conf: float = 0.25,
    imgsz: int = 640,
    force: bool = False,
    progress: Progress | None = None,
    attention_map: bool = False,
) -> CamResult:
    """Write ``<image>.png`` (image | base | variant, detections drawn) per image and ``grid.png`` into ``output``.
    With ``attention_map`` a fourth panel: the variant's layers' own spatial attention maps."""
    say = progress or (lambda _msg: None)
    if method not in METHODS:
        raise UsageError(f"--method {method!r} is not one of {', '.join(METHODS)}")
    if not images:
        raise UsageError("no image given")
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out}: is a file; give a directory")
    if not out.parent.is_dir():
        raise UsageError(f"-o {out}: directory {out.parent} does not exist")
    pictures = [read_image(p) for p in images]
    files = [out / f"{Path(p).stem}.png" for p in images] + [out / "grid.png"]
    if len({f.name for f in files}) != len(files):
        raise UsageError("two images have the same file name; their pictures would overwrite each other")
    for f in files:
        if f.exists() and not force:
            raise UsageError(f"{f}: already exists; pass --force to overwrite it")
    _grad_cam()
    say(f"loading {base} and {variant}")
    models = load(base), load(variant)
    warnings = [f"{m.name}: random weights (a YAML, no checkpoint): its heat map means nothing before training"
                for m in models if m.random]  # fmt: skip
    layers = pick_layers(*models, layer)
    import torch

    boxed = [letterbox(p, imgsz) for p in pictures]
    batch = torch.from_numpy(np.stack(boxed)).permute(0, 3, 1, 2).float().div(255).contiguous()
    result = CamResult(files, layers[0], layers[1], warnings=warnings)
    per_model = []
    for loaded, chosen in zip(models, layers, strict=True):
        say(f"{method} on {loaded.name}, layers {chosen}")
        maps, boxes = heat_maps(loaded, chosen, batch, conf, method)
        flat = [Path(p).name for p, m in zip(images, maps, strict=True) if not m.max() > m.min()]
        if flat:
            result.warnings.append(
                f"{loaded.name}: the {method} map is constant on {', '.join(flat)} (the weighted activations are "
                "nowhere positive, common before the model has learned much); eigencam or layercam may show more"
            )
        per_model.append((maps, boxes))
    own = attention_maps(models[1], layers[1], batch) if attention_map else None
    rows = []
    for i, image in enumerate(boxed):
        (bmap, bbox), (vmap, vbox) = ((m[i], b[i]) for m, b in per_model)
        result.maps.append({"image": image, "base": bmap, "variant": vmap, "base_boxes": bbox, "variant_boxes": vbox})
        panels = [image, overlay(image, bmap, bbox), overlay(image, vmap, vbox)]
        titles = ["image", models[0].name, models[1].name]
        if own is not None:
            result.maps[-1]["attention"] = own[i]
            panels.append(overlay(image, own[i]))
            titles.append(f"{models[1].name} attention")
        rows.append(side_by_side(*panels, titles))
    say(f"writing {len(files)} files to {out}")
    out.mkdir(exist_ok=True)
    from attnsurgeon.figures.panels import png_bytes

    yamlio.write_all_or_none([*((f, png_bytes(r)) for f, r in zip(files, rows, strict=False)),
                              (files[-1], png_bytes(grid(rows)))])  # fmt: skip
    return result
