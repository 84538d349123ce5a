"""Facts attnsurgeon copies from Ultralytics, pinned against the installed Ultralytics so an upgrade that changes one
fails here, loudly, instead of silently for a user."""

from __future__ import annotations

import inspect
import re

import pytest
from ultralytics.nn import tasks

from attnsurgeon.core import graph
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.ultralytics_bridge import checkpoints, ultra

PACKAGED = sorted(model_doc.packaged_models_dir().rglob("*.yaml"))


@pytest.mark.parametrize(
    "name",
    ["yolo11n.yaml", "yolov8s-seg.yaml", "yoloe-11m-seg.yaml", "yoloe-v8l.yaml", "yolov5nu.yaml", "yolo26x-pose",
     "yolov10b.yaml", "yolo12n-cls.yaml", "custom.yaml", "yolo11.yaml", "rtdetr-l.yaml", "my-yolo11s-SE.yaml",
     "yolov8n-p6.yaml", "yolo11m-HaloAttention.yaml", "best-SE.yaml"],
)  # fmt: skip
def test_scale_letter_as_ultralytics_reads_it(name):
    assert model_doc.guess_scale(name) == tasks.guess_model_scale(name)


def test_every_packaged_head_is_known_as_not_a_feature_map():
    heads = set()
    for path in PACKAGED:
        data = model_doc.to_plain(model_doc.loads(path.read_text(), str(path)))
        heads.add(str(data["head"][-1][2]))
    unknown = heads - graph.NON_FEATURE_MAP_MODULES
    assert not unknown, f"packaged models end in heads attnsurgeon does not know: {sorted(unknown)}"


@pytest.mark.parametrize(
    "name",
    ["yolo11n.yaml", "yolo11n-seg.yaml", "yolo11n-pose.yaml", "yolo11n-obb.yaml", "yolo11n-cls.yaml",
     "yolov8s-world.yaml", "yoloe-11s.yaml", "yoloe-11s-seg.yaml", "rtdetr-l.yaml"],
)  # fmt: skip
def test_model_class_is_the_one_ultralytics_builds(name):
    from ultralytics import RTDETR, YOLO

    path, _, _ = model_doc.resolve_model_path(name)
    cfg = model_doc.to_plain(model_doc.load(name).data)
    with ultra.quiet():
        built = (RTDETR if name.startswith("rtdetr") else YOLO)(str(path.with_name(name))).model
    assert ultra.model_class(cfg) is type(built)


def test_checkpoint_reset_keys_cover_the_trainer_state():
    """What strip_optimizer resets, and every trainer-state key a last.pt carries, is reset in a surgery's output."""
    from ultralytics.engine.trainer import BaseTrainer
    from ultralytics.utils.torch_utils import strip_optimizer

    loop = re.search(r"for k in ([^:]+):", inspect.getsource(strip_optimizer)).group(1)
    stripped = set(re.findall(r'"(\w+)"', loop)) | {"epoch"}
    entries = re.findall(r'^(\s*)"(\w+)":', inspect.getsource(BaseTrainer.save_model), re.M)
    top = min(len(indent) for indent, _ in entries)  # the checkpoint dict's own keys, not nested ones ("git")
    saved = {key for indent, key in entries if len(indent) == top}
    kept = {"model", "train_args", "train_metrics", "train_results", "date", "version", "git", "license", "docs"}
    assert stripped <= set(checkpoints._RESET_KEYS)
    assert saved - kept <= set(checkpoints._RESET_KEYS), saved - kept - set(checkpoints._RESET_KEYS)
