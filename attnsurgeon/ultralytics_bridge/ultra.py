"""The bridge to Ultralytics: the only room that knows its internals.

- :func:`register` makes every catalog module resolvable by name in ``ultralytics.nn.tasks`` (``parse_model`` looks
  names up with ``globals()[name]`` there) and installs the input-channel resolver, with no edit to Ultralytics
  files. It is idempotent and cheap after the first call, and can run on its own in a fresh process (the
  auto-registration hook does exactly that).
- It wraps ``parse_model`` so the plugin files a YAML lists are loaded first
(:mod:`attnsurgeon.ultralytics_bridge.parse_hooks`, which
  also reads each catalog module's input channels), and so ``Augment`` rows build Ultralytics' own block with
  attention inside (:mod:`attnsurgeon.ultralytics_bridge.augment_blocks`).
- :func:`build_model` builds a model from a YAML dict at a scale, the way ``YOLO(path)`` would.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from attnsurgeon._moved import legacy_paths
from attnsurgeon.catalog import REGISTRY
from attnsurgeon.core import yolo_repos
from attnsurgeon.core.scales import scale_row
from attnsurgeon.errors import AttnSurgeonError, CheckpointError, ModelFileError, RegistryError, first_line
from attnsurgeon.sources import plugins
from attnsurgeon.ultralytics_bridge import parse_hooks

_registered: dict[str, type] = {}


def _augmenting(parse_model: Any) -> Any:
    """Wrap Ultralytics' ``parse_model`` so ``Augment`` rows build Ultralytics' own block with attention inside.

    The work is in :mod:`attnsurgeon.ultralytics_bridge.augment_blocks`, imported when a model is parsed: registration
    runs while
    Ultralytics is still being imported, possibly on behalf of that very module.
    """
    if getattr(parse_model, "__attnsurgeon_augment__", False):
        return parse_model

    @functools.wraps(parse_model)
    def parse_model_with_augment(d: dict[str, Any], ch: Any, verbose: bool = True) -> Any:
        from attnsurgeon.ultralytics_bridge import augment_blocks

        return augment_blocks.parse_with_augment(parse_model, d, ch, verbose)

    parse_model_with_augment.__attnsurgeon_augment__ = True  # type: ignore[attr-defined]
    return parse_model_with_augment


def register() -> dict[str, type]:
    """Make catalog and plugin modules resolvable in Ultralytics YAMLs; returns name -> class for everything
    registered. Idempotent; run again after adding a plugin."""
    from ultralytics.nn import tasks

    from attnsurgeon.catalog import base
    from attnsurgeon.ultralytics_bridge.wrappers import WRAPPERS

    classes = {**REGISTRY.load_all(), **WRAPPERS}  # wrappers (IdentityInit) are layers, not catalog entries
    for name, cls in classes.items():
        existing = tasks.__dict__.get(name)
        if existing is not None and existing is not cls and name not in _registered:
            raise RegistryError(
                f"module name {name!r} is already defined by Ultralytics ({existing.__module__}); "
                f"rename the catalog entry {cls.__module__}:{cls.__qualname__}"
            )
        setattr(tasks, name, cls)
        _registered[name] = cls
    tasks.parse_model = _augmenting(tasks.parse_model)  # Augment rows (idempotent)
    # Its AttendedConv must be on the safe-load list before a checkpoint holding one is read. Mid-import (it imported
    # Ultralytics first) this gives the partial module, which then allows its own class when it finishes.
    from attnsurgeon.ultralytics_bridge import augment_blocks  # noqa: F401

    parse_hooks.install(register)  # outermost: loads the plugin files a YAML lists, checks attention rows
    base.set_input_channel_resolver(parse_hooks.input_channels_from_parse_model)
    _register_safe_globals(classes.values())
    return dict(_registered)


def _register_safe_globals(classes: Any) -> None:
    """Allow catalog classes in ``torch.load(weights_only=True)`` (ULTRALYTICS_SAFE_LOAD=1 loads that way).

    A pickled model references every ``nn.Module`` subclass in it, so the private helpers a catalog module builds
    itself from (``_ConvBN``, ``SafeBatchNorm2d``, ...) are allowed too: every ``nn.Module`` subclass defined in an
    imported ``attnsurgeon`` module or in the module that defines a registered class (plugins).
    """
    import sys

    import torch

    allowed = set(classes)
    names = {m for m in list(sys.modules) if m == "attnsurgeon" or m.startswith("attnsurgeon.")}
    names |= {getattr(cls, "__module__", "") for cls in classes}
    for name in names:
        module = sys.modules.get(name)
        for value in list(vars(module).values()) if module is not None else ():
            if isinstance(value, type) and issubclass(value, torch.nn.Module) and value.__module__ == name:
                allowed.add(value)
    from attnsurgeon.sources import named_classes  # how plain nn.Module classes (FILE.py:Class, timm:Class) unpickle

    rebuilds = [plugins.rebuild, named_classes.rebuild_adapter, named_classes.rebuild_file_class]
    plugins.allow_in_safe_load([*allowed, *rebuilds])  # rebuild: how plugin-file modules unpickle
    # checkpoints written before the subpackages name the classes that moved by their old module path
    moved = [(c, old) for c in [*allowed, *rebuilds] for old in legacy_paths(c)]
    if moved and hasattr(torch.serialization, "add_safe_globals"):
        torch.serialization.add_safe_globals(moved)


# --------------------------------------------------------------------------------------------------------------------
# Building


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Ultralytics' logger and stray prints while building and profiling."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        LOGGER.setLevel(level)


def model_class(cfg: dict[str, Any]) -> type:
    """The Ultralytics model class YOLO(path) would use for this YAML."""
    from ultralytics.nn import tasks

    head = str(cfg["head"][-1][2]) if cfg.get("head") else ""
    if head == "RTDETRDecoder":
        return tasks.RTDETRDetectionModel
    if head == "WorldDetect":
        return tasks.WorldModel
    task = tasks.guess_model_task(cfg)
    if head.startswith("YOLOE"):
        return tasks.YOLOESegModel if task == "segment" else tasks.YOLOEModel
    mapping = {
        "detect": tasks.DetectionModel,
        "segment": tasks.SegmentationModel,
        "pose": tasks.PoseModel,
        "obb": tasks.OBBModel,
        "classify": tasks.ClassificationModel,
        "depth": getattr(tasks, "DepthModel", None),
        "semantic": getattr(tasks, "SemanticSegmentationModel", None),
    }
    cls = mapping.get(task)
    if cls is None:
        raise ModelFileError(f"cannot tell which Ultralytics task this model is for (head {head!r})")
    return cls


def build_model(
    cfg: dict[str, Any], scale: str | None = None, yaml_file: str = "model.yaml", seed: int | None = None
) -> Any:
    """Build an Ultralytics model from a plain YAML dict at ``scale`` (as ``YOLO(path)`` would), quietly.

    With ``seed`` the initial weights are reproducible (and the caller's random state is left untouched), so the
    same surgery is always checked on the same weights."""
    import copy

    import torch

    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_model(cfg, scale, yaml_file)
    yolo_repos.refuse_cfg(yaml_file, cfg)  # a YOLOv5/v7/v9-repository file: one line, never Detect's TypeError
    register()
    cfg = copy.deepcopy(cfg)
    scales = cfg.get("scales")
    if scales:
        chosen = scale or next(iter(scales))
        if chosen not in scales:
            raise ModelFileError(f"scale {chosen!r} is not in this YAML; it has {', '.join(scales)}")
        cfg["scale"] = chosen
    cfg["yaml_file"] = yaml_file
    cls = model_class(cfg)
    with quiet():
        model = cls(cfg, ch=cfg.get("channels", 3), verbose=False)
    # What Ultralytics' trainer sets before computing a loss (set_model_attributes).
    model.args = _default_args()
    if getattr(model, "nc", None) is None and "nc" in model.yaml:
        model.nc = model.yaml["nc"]
    return model


def depth_gain(cfg: dict[str, Any], scale: str) -> float:
    """The depth multiple ``parse_model`` builds with (:func:`scales.scale_row`)."""
    return scale_row(cfg, scale).depth


def scaled_repeats(repeats: int, depth: float) -> int:
    """Repeats of a row as ``parse_model`` builds them (its "depth gain"); a row written with 1 stays 1."""
    return max(round(repeats * depth), 1) if repeats > 1 else repeats


class _LayerAsModel:
    """Just what ``BaseModel.fuse`` reads of a model: ``model`` (whose modules it fuses), ``is_fused``, ``info``."""

    def __init__(self, layer: Any) -> None:
        self.model = layer

    def is_fused(self) -> bool:
        return False

    def info(self, **kwargs: Any) -> None:
        return None


def fuse_layer(layer: Any) -> Any:
    """Fuse one layer in place as ``model.fuse()`` fuses a whole model (Conv+BN folded, RepConv merged): Ultralytics'
    own code, so a layer costed alone is the layer as deployed."""
    from ultralytics.nn import tasks

    with quiet():
        tasks.BaseModel.fuse(_LayerAsModel(layer), verbose=False)  # type: ignore[arg-type]
    return layer


def _default_args() -> Any:
    from ultralytics.cfg import get_cfg

    return get_cfg()


def input_channels(model: Any) -> int:
    """Image channels the model reads: the YAML's ``channels`` (Ultralytics stores it in ``model.yaml`` when it
    builds, default 3), so a grayscale ``channels: 1`` model gets 1-channel inputs."""
    return int((getattr(model, "yaml", None) or {}).get("channels", 3))


def model_stride(model: Any) -> int:
    """The stride an input size must be a multiple of (as Ultralytics' check_imgsz: at least 32)."""
    import torch

    stride = getattr(model, "stride", None)
    return max(int(stride.max()), 32) if isinstance(stride, torch.Tensor) else 32


def offline_environment() -> None:
    """Ultralytics must never try the network from attnsurgeon (no downloads at run time)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")


# --------------------------------------------------------------------------------------------------------------------
# Checkpoints


@contextlib.contextmanager
def no_autoinstall() -> Iterator[None]:
    """Ultralytics pip-installs a module a checkpoint names when it is missing; attnsurgeon must never install."""
    from ultralytics.utils import checks

    saved = checks.AUTOINSTALL
    checks.AUTOINSTALL = False
    try:
        yield
    finally:
        checks.AUTOINSTALL = saved


def _load_reason(exc: BaseException) -> str:
    import pickle
    import zipfile

    cause = exc.__cause__ or exc
    if isinstance(cause, (EOFError, pickle.UnpicklingError, zipfile.BadZipFile)) or (
        isinstance(cause, RuntimeError) and "PytorchStreamReader" in str(cause)
    ):
        return f"cannot be read: the file is empty, truncated, corrupted or not a PyTorch file ({first_line(cause)})"
    if isinstance(exc, ModuleNotFoundError):
        return f"needs the Python module {exc.name!r}, which is not installed; it is not a checkpoint of this setup"
    if isinstance(exc, AttributeError) and "has no attribute 'model'" in str(exc):
        held = re.match(r"'(\w+)' object", str(exc))
        what = f"a {held.group(1)}" if held else "an object"
        return f"holds {what}, not an Ultralytics checkpoint (a dict with a 'model' entry, as model.save() writes)"
    return f"not a loadable Ultralytics checkpoint: {first_line(exc)}"


def is_state_dict(value: Any) -> bool:
    import torch

    return isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The dict Ultralytics saved (``model.save()``, a trainer's ``last.pt``/``best.pt``), read as Ultralytics reads it.

    Honours ``ULTRALYTICS_SAFE_LOAD=1``; never downloads and never pip-installs. Raises :class:`CheckpointError` with
    a one-line reason for anything that is not such a file.
    """
    if path.suffix.lower() != ".pt":
        raise CheckpointError(f"{path}: a checkpoint must be a .pt file")
    if not path.is_file():
        what = "is a directory, not a checkpoint" if path.exists() else "no such file"
        raise ModelFileError(f"{path}: {what} (attnsurgeon never downloads weights; give a local .pt file)")
    offline_environment()
    register()
    from ultralytics.nn import tasks

    try:
        with quiet(), no_autoinstall():
            data, _ = tasks.torch_safe_load(str(path))
    except AttnSurgeonError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{path}: {_load_reason(exc)}") from exc
    if is_state_dict(data):
        raise CheckpointError(
            f"{path}: is a plain state dict ({len(data)} tensors) with no architecture; give the checkpoint "
            "Ultralytics writes (model.save('x.pt'), or a trainer's last.pt/best.pt)"
        )
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: holds a {type(data).__name__}, not an Ultralytics checkpoint")
    return data
