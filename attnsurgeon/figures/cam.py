"""``attnsurgeon cam``: where a base model and its variant look, on the same images, as heat maps side by side.

The images go through the model the way Ultralytics predicts (letterboxed to ``imgsz`` with grey 114 padding, RGB,
0..1). The target is the score of the model's own predictions, as the grad-cam package's YOLO examples define it:
for a detector, the class scores of the boxes it keeps after NMS at ``conf`` (its most confident box when it keeps
none); for a classifier, the score of its top class. The heat maps come from the grad-cam package (``pip install
grad-cam``, extra ``cam``), imported with torch only when a map is computed. Which layers: ``heads`` (the feature maps
the head reads; one panel each for base and variant, the mean of their maps), ``new`` (one panel per new layer of
the variant, next to the base looked at in the same place, :mod:`attnsurgeon.figures.new_layers`), or a layer index of
the variant. Each model takes one forward (and for gradient methods one backward) pass over all images at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnsurgeon.core import publish
from attnsurgeon.core.graph import Graph
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.errors import CheckpointError, ImageError, MissingExtraError, UsageError
from attnsurgeon.figures.new_layers import correspondence, label
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
    # per image: image, base_boxes, variant_boxes, layers (per panel pair: base_layers, variant_layers, base, variant
    # H x W in 0..1, attention with --attention-map); base, variant (and attention): the first pair's maps
    maps: list[dict[str, Any]] = field(default_factory=list)
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


def letterbox(images: Sequence[np.ndarray], imgsz: int, rect: bool = True, stride: int = 32) -> list[np.ndarray]:
    """As predict letterboxes: images that all have one shape to the smallest multiple of ``stride`` that holds them
    at ``imgsz`` (640x480 stays 640x480), otherwise (or without ``rect``) each to an ``imgsz`` square."""
    from ultralytics.data.augment import LetterBox

    auto = rect and len({image.shape for image in images}) == 1
    box = LetterBox(new_shape=(imgsz, imgsz), auto=auto, stride=stride)
    return [box(image=image) for image in images]


def load(spec: str | Path) -> Loaded:
    """A checkpoint (its weights) or a YAML (random weights), float32, fused, in eval mode."""
    from attnsurgeon.ultralytics_bridge import checkpoints, ultra

    path = Path(spec)
    if path.suffix.lower() in (".pt", ".pth"):
        ckpt = checkpoints.load_checkpoint(path)
        model, graph, random = ckpt.model, ckpt.graph, False
    else:
        doc = model_doc.load(spec)
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
    as grad-cam's get_2d_projection (up to the component's sign), which runs a full SVD of the HW x C matrix (an HW x
    HW one: 6400 x 6400 at P3); here the component is the top eigenvector of the C x C scatter matrix, in torch (one
    thread pool with the model: numpy's BLAS threads contend with it on a busy CPU)."""
    import torch

    out = []
    for a in np.nan_to_num(activations):
        flat = torch.from_numpy(np.ascontiguousarray(a.reshape(a.shape[0], -1).T)).double()
        flat = flat - flat.mean(0)
        top = torch.linalg.eigh(flat.T @ flat).eigenvectors[:, -1]
        out.append((flat @ top).reshape(a.shape[1:]).numpy())
    return np.float32(out)


def _cam_class(gc: Any, method: str) -> Any:
    """grad-cam's class for ``method``, returning one map per target layer (N x L x H x W, each scaled to 0..1 as
    grad-cam scales it) instead of their mean; the EigenCAM projections are :func:`_projection`."""
    base = getattr(gc, METHODS[method])

    class PerLayer(base):  # type: ignore[misc, valid-type]
        def aggregate_multi_layers(self, cam_per_target_layer: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(cam_per_target_layer, axis=1)

        if method in ("eigencam", "eigengradcam"):

            def get_cam_image(self, *args: Any) -> np.ndarray:  # (input, layer, category, activations, grads, smooth)
                activations, grads = args[3], args[4]
                return _projection(activations if method == "eigencam" else grads * activations)

    return PerLayer


def _graph_starts_here(_module: Any, _inputs: Any, out: Any) -> Any:
    """A target layer's output as the start of the autograd graph: the backward pass stops at the first target
    layer instead of running back through the backbone to the input. The gradient reaching a layer's output depends
    only on what comes after it, so the maps are the same."""
    import torch

    if isinstance(out, torch.Tensor) and not out.requires_grad:
        return out.detach().requires_grad_(True)
    return None


Pair = tuple[list[int], list[int]]  # (base layers, variant layers) that one base panel and one variant panel show


def pick_layers(base: Loaded, variant: Loaded, layer: str) -> list[Pair]:
    """The panel pairs for ``--layer``: ``heads`` one pair (the head inputs of each model, their maps' mean), ``new``
    one pair per new layer of the variant (and the base's layer at its place), ``K`` the variant's layer K."""
    new, place = correspondence(base.graph, variant.graph)
    last = len(variant.graph) - 1
    if layer == "heads":
        return [(base.graph.outputs(), variant.graph.outputs())]
    if layer == "new":
        if not new:
            raise UsageError(f"--layer new: {variant.name} has no layer that {base.name} does not have")
        return [([place[j]], [j]) for j in new]
    if not layer.lstrip("-").isdigit():
        raise UsageError(f"--layer {layer!r}: give heads, new or a layer index of the variant (0 to {last - 1})")
    k = int(layer)
    if not 0 <= k < last:
        raise UsageError(f"--layer {k} is not a feature-map layer of {variant.name}, which has layers 0 to {last - 1}")
    return [([place[k]], [k])]


def title(loaded: Loaded, layers: list[int]) -> str:
    """A panel's title: the model, and for a single layer its index and module (``var.pt 9 CBAM``)."""
    if len(layers) != 1:
        return loaded.name
    return f"{loaded.name} {layers[0]} {label(loaded.graph.rows[layers[0]])}"


def heat_maps(loaded: Loaded, layers: list[int], batch: Any, conf: float, method: str) -> tuple[np.ndarray, list]:
    """(N x L x H x W maps in 0..1 from grad-cam's ``method``, one per layer in ``layers``, the boxes of each image),
    from one forward (and, for gradient methods, one backward) pass over the whole batch. The backward pass runs
    from the scores to the first target layer only (no gradient into the weights or the input)."""
    gc = _grad_cam()
    targets = [Target(loaded.task, conf) for _ in range(batch.shape[0])]
    loaded.model.requires_grad_(False)
    modules = [loaded.model.model[i] for i in layers]
    with _cam_class(gc, method)(model=scores_module(loaded.model), target_layers=modules) as cam:
        starts = [m.register_forward_hook(_graph_starts_here, prepend=True) for m in modules if cam.uses_gradients]
        try:
            maps = cam(input_tensor=batch, targets=targets)
        finally:
            for handle in starts:
                handle.remove()
        for target, out in zip(targets, cam.outputs, strict=True):
            if target.picks is None:  # gradient-free methods never call their targets
                target.choose(out)
    return np.nan_to_num(np.asarray(maps, dtype=np.float32)), [t.boxes for t in targets]


def mean_map(maps: np.ndarray) -> np.ndarray:
    """N x L x H x W -> N x H x W: the layers' mean scaled to 0..1 per image, as grad-cam aggregates layers."""
    mean = maps.mean(axis=1)
    low = mean.min(axis=(1, 2), keepdims=True)
    return np.float32((mean - low) / (1e-7 + (mean - low).max(axis=(1, 2), keepdims=True)))


def _constant_on(images: Sequence[str | Path], maps: list[np.ndarray]) -> str:
    """The images (by name) on which any of ``maps`` (each N x H x W) is constant, for a warning; '' if none."""
    flat = {Path(images[n]).name for m in maps for n, one in enumerate(m) if not one.max() > one.min()}
    return ", ".join(sorted(flat))


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
    out = Path(output)
    _check_request(method, images, out)
    pictures = [read_image(p) for p in images]
    files = _output_files(images, out, force)
    _grad_cam()
    say(f"loading {base} and {variant}")
    models = load(base), load(variant)
    warnings = [f"{m.name}: random weights (a YAML, no checkpoint): its heat map means nothing before training"
                for m in models if m.random]  # fmt: skip
    pairs = pick_layers(*models, layer)
    import torch

    boxed = letterbox(pictures, imgsz, rect=models[0].task == "detect")
    batch = torch.from_numpy(np.stack(boxed)).permute(0, 3, 1, 2).float().div(255).contiguous()
    result = CamResult(files, [i for b, _ in pairs for i in b], [j for _, v in pairs for j in v], warnings=warnings)
    shown = [_model_maps(m, side, pairs, batch, conf, method, images, result, say) for side, m in enumerate(models)]
    own = _attention_panels(models[1], pairs, batch, images, result) if attention_map else None
    rows = []
    for n, image in enumerate(boxed):
        row, maps = _image_row(n, image, models, pairs, shown, own)
        rows.append(row)
        result.maps.append(maps)
    result.warnings = list(dict.fromkeys(result.warnings))  # BASE and VARIANT the same file: said once
    say(f"writing {len(files)} files to {out}")
    out.mkdir(exist_ok=True)
    from attnsurgeon.figures.panels import png_bytes

    publish.publish_all([*((f, png_bytes(r)) for f, r in zip(files, rows, strict=False)),
                         (files[-1], png_bytes(grid(rows)))], force=force)  # fmt: skip
    return result


def _check_request(method: str, images: Sequence[str | Path], out: Path) -> None:
    """The method, that there are images, and the output folder, before any file is read."""
    if method not in METHODS:
        raise UsageError(f"--method {method!r} is not one of {', '.join(METHODS)}")
    if not images:
        raise UsageError("no image given")
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out}: is a file; give a directory")
    if not out.parent.is_dir():
        raise UsageError(f"-o {out}: directory {out.parent} does not exist")


def _output_files(images: Sequence[str | Path], out: Path, force: bool) -> list[Path]:
    """``<image>.png`` per image, then ``grid.png``: none overwriting another, nor (without ``force``) a file there."""
    files = [out / f"{Path(p).stem}.png" for p in images] + [out / "grid.png"]
    if len({f.name for f in files}) != len(files):
        raise UsageError("two images have the same file name; their pictures would overwrite each other")
    for f in files:
        if f.exists() and not force:
            raise publish.exists_error(f)
    return files


def _model_maps(
    loaded: Loaded, side: int, pairs: list[Pair], batch: Any, conf: float, method: str,
    images: Sequence[str | Path], result: CamResult, say: Progress,
) -> tuple[list[np.ndarray], list]:  # fmt: skip
    """One model's maps, per panel pair (N x H x W, the mean of the pair's layers on its ``side``), and its boxes."""
    wanted = sorted({i for pair in pairs for i in pair[side]})
    say(f"{method} on {loaded.name}, layers {wanted}")
    maps, boxes = heat_maps(loaded, wanted, batch, conf, method)
    per_pair = [mean_map(maps[:, [wanted.index(i) for i in pair[side]]]) for pair in pairs]
    if flat := _constant_on(images, per_pair):
        result.warnings.append(
            f"{loaded.name}: the {method} map is constant on {flat} (the weighted activations are "
            "nowhere positive, common before the model has learned much); eigencam or layercam may show more"
        )
    return per_pair, boxes


def _attention_panels(
    variant: Loaded, pairs: list[Pair], batch: Any, images: Sequence[str | Path], result: CamResult
) -> list[np.ndarray]:
    """--attention-map: the variant's layers' own attention maps, per panel pair (N x H x W)."""
    from attnsurgeon.figures.attention import attention_maps

    variant_layers = sorted({j for _, v in pairs for j in v})
    found = attention_maps(variant, variant_layers, batch)
    own = [mean_map(found[:, [variant_layers.index(j) for j in v]]) for _, v in pairs]
    if flat := _constant_on(images, own):
        result.warnings.append(
            f"{variant.name}: the attention map is constant on {flat} (the module attends uniformly "
            "there, as a model with random or barely trained weights does)"
        )
    return own


def _image_row(
    n: int, image: np.ndarray, models: tuple[Loaded, Loaded], pairs: list[Pair],
    shown: list[tuple[list[np.ndarray], list]], own: list[np.ndarray] | None,
) -> tuple[np.ndarray, dict[str, Any]]:  # fmt: skip
    """Image ``n``'s picture (the image, then base | variant (| attention) per pair) and its maps for the result."""
    (bmaps, bbox), (vmaps, vbox) = shown[0], shown[1]
    panels, titles, layers_shown = [image], ["image"], []
    for k, (b, v) in enumerate(pairs):
        entry = {"base_layers": b, "variant_layers": v, "base": bmaps[k][n], "variant": vmaps[k][n]}
        panels += [overlay(image, bmaps[k][n], bbox[n]), overlay(image, vmaps[k][n], vbox[n])]
        titles += [title(models[0], b), title(models[1], v)]
        if own is not None:
            entry["attention"] = own[k][n]
            panels.append(overlay(image, own[k][n]))
            titles.append(f"{title(models[1], v)} attention")
        layers_shown.append(entry)
    first = layers_shown[0]
    maps = {"image": image, "base_boxes": bbox[n], "variant_boxes": vbox[n], "layers": layers_shown,
            **{k: first[k] for k in ("base", "variant", "attention") if k in first}}  # fmt: skip
    return side_by_side(*panels, titles), maps
