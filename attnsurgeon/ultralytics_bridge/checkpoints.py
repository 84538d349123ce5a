"""Ultralytics checkpoints in and out: read one (with its architecture as a layer graph), write a new one.

Reading goes through :func:`attnsurgeon.ultralytics_bridge.ultra.read_checkpoint` (Ultralytics' own loader,
``ULTRALYTICS_SAFE_LOAD``
honoured, never a download or a pip install). Writing keeps the input's keys, stores the new model in the input's
dtype and resets the trainer state that described the old parameter list. Moving tensors between two models is
:mod:`attnsurgeon.ops.weights`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from attnsurgeon.core.graph import Graph
from attnsurgeon.core.yamlfile.model_doc import guess_scale
from attnsurgeon.errors import AttnSurgeonError, CheckpointError
from attnsurgeon.ultralytics_bridge import ultra

# Trainer state that describes the old parameter list or the old run; reset in the output (as strip_optimizer does).
_RESET_KEYS = {
    "ema": None,
    "optimizer": None,
    "scaler": None,
    "updates": None,
    "best_fitness": None,
    "stopper": None,
    "modelopt": None,
    "epoch": -1,
}


@dataclass
class Checkpoint:
    """A loaded Ultralytics checkpoint: the whole dict, and the model it holds (EMA when present)."""

    path: Path
    data: dict[str, Any]
    key: str  # "ema" or "model": where the model came from
    model: Any  # an Ultralytics BaseModel
    cfg: dict[str, Any]  # the architecture (model.yaml), a plain dict
    graph: Graph
    dtype: Any  # the dtype the model was saved in (Ultralytics saves float16)
    trainable: bool  # whether its parameters were saved with requires_grad

    @property
    def scale(self) -> str:
        return str(self.cfg.get("scale") or guess_scale(str(self.cfg.get("yaml_file") or "")))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read an Ultralytics checkpoint (``model.save()`` output, or a trainer's ``last.pt``/``best.pt``).

    Honours ``ULTRALYTICS_SAFE_LOAD=1`` as Ultralytics does; never downloads and never pip-installs. Raises
    :class:`CheckpointError` with a one-line reason for anything that is not a usable checkpoint.
    """
    from torch import nn

    path = Path(path).expanduser()
    data = ultra.read_checkpoint(path)
    key = "ema" if data.get("ema") is not None else "model"
    model = data.get(key)
    if model is None:
        keys = ", ".join(map(str, list(data)[:8])) or "none"
        raise CheckpointError(f"{path}: not an Ultralytics checkpoint: it has no 'model' or 'ema' entry (keys: {keys})")
    if ultra.is_state_dict(model) or isinstance(model, dict):
        raise CheckpointError(
            f"{path}: its '{key}' entry is a state dict, not a model, so the architecture is unknown; give the "
            "checkpoint Ultralytics writes (model.save('x.pt'), or a trainer's last.pt/best.pt)"
        )
    if not isinstance(model, nn.Module) or not isinstance(getattr(model, "model", None), nn.Sequential):
        raise CheckpointError(f"{path}: its '{key}' entry is a {type(model).__name__}, not an Ultralytics model")
    cfg = getattr(model, "yaml", None)
    if not isinstance(cfg, dict) or not isinstance(cfg.get("backbone"), list) or not isinstance(cfg.get("head"), list):
        raise CheckpointError(
            f"{path}: the model carries no architecture (model.yaml with 'backbone' and 'head'); attnsurgeon "
            "cannot tell which layer is which"
        )
    cfg = copy.deepcopy(cfg)
    try:
        graph = Graph.from_sections(cfg["backbone"], cfg["head"])
        graph.validate()
    except AttnSurgeonError as exc:
        raise CheckpointError(f"{path}: the checkpoint's architecture is not valid: {exc}") from exc
    if len(graph) != len(model.model):
        raise CheckpointError(
            f"{path}: the architecture lists {len(graph)} layers but the model has {len(model.model)}; the "
            "checkpoint is inconsistent"
        )
    params = list(model.parameters())
    return Checkpoint(
        path=path,
        data=data,
        key=key,
        model=model,
        cfg=cfg,
        graph=graph,
        dtype=params[0].dtype if params else None,
        trainable=any(p.requires_grad for p in params),
    )


def new_config(ckpt: Checkpoint, graph: Graph, yaml_file: str) -> dict[str, Any]:
    """The checkpoint's architecture with the rows of ``graph`` (a plain dict, as ``model.yaml``)."""
    cfg = copy.deepcopy(ckpt.cfg)
    rows = [
        [r.from_ if isinstance(r.from_, int) else list(r.from_), r.repeats, r.module, _plain(r.args)]
        for r in graph.rows
    ]
    n_backbone = sum(1 for r in graph.rows if r.section == "backbone")
    cfg["backbone"], cfg["head"] = rows[:n_backbone], rows[n_backbone:]
    cfg["yaml_file"] = yaml_file
    return cfg


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def checkpoint_dict(ckpt: Checkpoint, new: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The output checkpoint: the input's keys, the new model in the input's dtype, trainer state reset, and
    ``record`` (what attnsurgeon did: source, operation, module, index map) under the ``attnsurgeon`` key."""
    import ultralytics

    model = copy.deepcopy(new)
    if ckpt.dtype is not None:
        model = model.to(ckpt.dtype)
    model.args = copy.deepcopy(getattr(ckpt.model, "args", None) or ckpt.data.get("train_args") or {})
    if hasattr(model, "criterion"):
        model.criterion = None
    for p in model.parameters():
        p.requires_grad_(ckpt.trainable)
    out = dict(ckpt.data)
    for key, value in _RESET_KEYS.items():
        if key in out:
            out[key] = value
    out["model"] = model
    out["date"] = datetime.now().astimezone().isoformat()
    out["version"] = ultralytics.__version__
    out["attnsurgeon"] = copy.deepcopy(record)
    return out
