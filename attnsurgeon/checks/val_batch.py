"""The ``val`` check: one batch through the model as Ultralytics' validation runs it.

A fused eval copy of the model gets a batch of two letterboxed images of different aspect ratios, shaped the way
Ultralytics' rectangular validation batches them (``BaseDataset.set_rectangle``: one batch shape for the batch,
padded to the stride; ``LetterBox(scaleup=False)``), then the task's own validator preprocesses the batch and
post-processes the predictions (NMS for detect/segment/pose/obb, the decoder's top-k for RT-DETR, the class scores
for classify). RT-DETR validates at a square size, as Ultralytics does, and classification images are resized and
centre-cropped by Ultralytics' ``classify_transforms``. On CUDA the forward runs
under float16 autocast, as validation during ``amp=True`` training does. The copy's batch-norm statistics come from
random images first (``verify.calibrated_copy``), so untrained weights still give boxes for the postprocessing to
handle (masks, keypoints, angles).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from attnsurgeon.checks.verify import all_finite, calibrated_copy, failed, layer_tracker, task_of, text_model
from attnsurgeon.core.report import Check
from attnsurgeon.ultralytics_bridge import ultra

NAME = "val batch"
# Two source images (height, width) of different aspect ratios, both landscape like most validation sets.
SOURCE_SHAPES = ((480, 640), (360, 640))


def validator_class(model: nn.Module) -> type:
    """The validator Ultralytics uses for this model (``YOLO``/``RTDETR``'s task map)."""
    from ultralytics import RTDETR, YOLO
    from ultralytics.nn.tasks import RTDETRDetectionModel

    owner = RTDETR if isinstance(model, RTDETRDetectionModel) else YOLO
    return owner.task_map.fget(None)[task_of(model)]["validator"]  # the property reads nothing from the instance


def rect_batch_shape(shapes: tuple[tuple[int, int], ...], imgsz: int, stride: int) -> tuple[int, int]:
    """The (height, width) Ultralytics' rectangular validation gives one batch of images with these shapes (after
    each is resized so its long side is imgsz), computed by ``BaseDataset.set_rectangle`` itself."""
    from ultralytics.data.base import BaseDataset

    dataset = SimpleNamespace(
        ni=len(shapes),
        batch_size=len(shapes),
        labels=[{"shape": shape} for shape in shapes],
        im_files=[f"{i}.jpg" for i in range(len(shapes))],
        imgsz=imgsz,
        stride=stride,
        pad=0.5,  # build_yolo_dataset: pad 0.5 for validation
    )
    BaseDataset.set_rectangle(dataset)  # type: ignore[arg-type]
    return int(dataset.batch_shapes[0][0]), int(dataset.batch_shapes[0][1])


def validation_batch(model: nn.Module, imgsz: int) -> tuple[torch.Tensor, list[tuple[int, int]], str]:
    """Two images (2, C, H, W) as the validation dataloader yields them, their shapes before, and how they were
    shaped: letterboxed into one rectangular batch shape (detect, segment, pose, obb), letterboxed to a square
    (RT-DETR: rect=False), or resized and centre-cropped with Ultralytics' classify_transforms (classify, float)."""
    from ultralytics.data.augment import LetterBox, classify_transforms

    task = task_of(model)
    channels = ultra.input_channels(model)
    rng = np.random.default_rng(0)
    resized = []
    for h, w in SOURCE_SHAPES:  # load_image: the long side becomes imgsz
        r = imgsz / max(h, w)
        resized.append(rng.integers(0, 256, (max(1, round(h * r)), max(1, round(w * r)), channels), dtype=np.uint8))
    shapes = [(int(i.shape[0]), int(i.shape[1])) for i in resized]
    if task == "classify" and channels == 3:
        from PIL import Image

        crop = classify_transforms(imgsz)
        return torch.stack([crop(Image.fromarray(i)) for i in resized]), shapes, "resized and centre-cropped"
    if task == "classify" or type(model).__name__ == "RTDETRDetectionModel":
        shape = (imgsz, imgsz)  # RT-DETR validates with rect=False
    else:
        shape = rect_batch_shape(tuple(shapes), imgsz, ultra.model_stride(model))
    letterbox = LetterBox(new_shape=shape, scaleup=False)
    images = []
    for image in resized:
        boxed = letterbox(image=image)
        images.append(boxed.reshape(*boxed.shape[:2], channels).transpose(2, 0, 1))  # cv2 drops a 1-channel axis
    batch = torch.from_numpy(np.ascontiguousarray(np.stack(images)))
    if task == "classify":  # a classification batch arrives as floats in [0, 1]
        batch = batch.float() / 255
    return batch, shapes, "letterboxed"


def check_val(model: nn.Module, imgsz: int, device: torch.device, hints: dict[int, str]) -> Check:
    """A validation batch through the fused eval model and the task validator's preprocess and postprocess."""
    if text_model(model):
        return Check(NAME, None, f"skipped: {type(model).__name__} validates with text embeddings of a dataset")
    task = task_of(model)
    images, shapes, how = validation_batch(model, imgsz)
    with ultra.quiet():
        fused = calibrated_copy(model, imgsz, device).fuse(verbose=False)
    fused.task = task
    amp = device.type == "cuda"
    with tempfile.TemporaryDirectory(prefix="attnsurgeon-val-") as tmp:
        args = {"task": task, "imgsz": imgsz, "device": str(device), "plots": False, "save_json": False}
        with ultra.quiet():
            validator = validator_class(model)(save_dir=Path(tmp), args=args)
        validator.device = device
        validator.training = True  # as in a trainer's validation: no dataloader of its own
        validator.data = _data(fused)
        validator.args.quantize = 16 if amp else None
        batch = _empty_labels(fused, images)
        stage = "validator init_metrics"
        with layer_tracker(fused) as state:
            try:
                with ultra.quiet():
                    validator.init_metrics(fused)
                stage = "validator preprocess"
                batch = validator.preprocess(batch)
                stage = "forward"
                with torch.inference_mode(), torch.autocast(device.type, torch.float16, enabled=amp):
                    preds = fused(batch["img"])
                if not all_finite(preds):
                    return Check(NAME, False, "predictions contain NaN or Inf")
                stage = "validator postprocess"
                with ultra.quiet():  # NMS warns when a CPU batch of untrained boxes exceeds its time limit
                    results = validator.postprocess(preds)
            except Exception as exc:
                return failed(NAME, state, exc, hints, what="" if stage == "forward" else stage)
    size = "x".join(map(str, images.shape[2:]))
    found = _count(results)
    return Check(NAME, True, f"2 images {' and '.join(f'{h}x{w}' for h, w in shapes)} {how} to {size}; {found}")


def _empty_labels(model: nn.Module, images: torch.Tensor) -> dict[str, Any]:
    """The batch a validation dataloader yields for images without objects: every label key, zero rows."""
    kpt_shape = _data(model).get("kpt_shape", [17, 3])
    h, w = images.shape[2:]
    return {
        "img": images,
        "batch_idx": torch.zeros(0),
        "cls": torch.zeros(0, 1),
        "bboxes": torch.zeros(0, 4),
        "masks": torch.zeros(images.shape[0], h // 4, w // 4),  # overlap masks at 1/4 size, as YOLODataset gives
        "keypoints": torch.zeros(0, *kpt_shape),
        "ori_shape": [tuple(images.shape[2:])] * images.shape[0],
        "ratio_pad": [((1.0, 1.0), (0.0, 0.0))] * images.shape[0],
        "im_file": [f"{i}.jpg" for i in range(images.shape[0])],
    }


def _data(model: nn.Module) -> dict[str, Any]:
    """The dataset dict a validator reads in init_metrics (names, keypoint shape, channels, split path)."""
    names = getattr(model, "names", None) or {i: str(i) for i in range(int(getattr(model, "nc", 1) or 1))}
    data: dict[str, Any] = {"names": names, "nc": len(names), "channels": ultra.input_channels(model), "val": ""}
    kpt_shape = getattr(model, "kpt_shape", None) or (getattr(model, "yaml", {}) or {}).get("kpt_shape")
    if kpt_shape:
        data["kpt_shape"] = list(kpt_shape)
    return data


def _count(results: Any) -> str:
    if isinstance(results, torch.Tensor):
        return f"class scores {tuple(results.shape)}"
    kept = sum(int(r["bboxes"].shape[0]) for r in results)
    return f"postprocess kept {kept} detection{'s' if kept != 1 else ''} over {len(results)} images"
