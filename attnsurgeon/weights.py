"""Surgery on Ultralytics checkpoints: the same insertion as on a YAML, with every trained weight carried over.

``insert_checkpoint("best.pt", "SE", after=8)`` reads the checkpoint's architecture (``model.yaml``), splices the new
row in with :func:`attnsurgeon.graph.insert`, builds the new model at the checkpoint's scale, and moves the state
dict: layer ``model.{old}.`` becomes ``model.{new}.`` through the surgery's index map. Every original tensor must find
a home of the same shape; the inserted layers keep their fresh initialisation (or start as the identity with
``identity_init=True``). The output is a checkpoint Ultralytics loads (``YOLO("best-SE.pt")``) and trains from, plus
the new YAML beside it. The input file is only ever read.
"""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from attnsurgeon import graph as graph_mod
from attnsurgeon import ultra
from attnsurgeon.errors import AttnSurgeonError, CheckpointError, UsageError, VerificationError
from attnsurgeon.graph import Graph

IDENTITY_TOLERANCE = 1e-5  # max |Δ| between original and identity-initialised outputs
IDENTITY_CHECK_SIZE = 320
_LAYER_KEY = re.compile(r"^model\.(\d+)\.(.+)$")
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
        from attnsurgeon.yamlio import guess_scale

        return str(self.cfg.get("scale") or guess_scale(str(self.cfg.get("yaml_file") or "")))


@dataclass
class MoveStats:
    """What :func:`move_weights` did."""

    moved: int  # original tensors copied into the new model
    renumbered: int  # of those, how many changed layer index
    fresh: int  # tensors of inserted layers, left as initialised

    def describe(self) -> str:
        return (
            f"{self.moved} original tensors carried over ({self.renumbered} to a new layer index); "
            f"{self.fresh} new tensors freshly initialised"
        )


# --------------------------------------------------------------------------------------------------------------------
# Loading


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


# --------------------------------------------------------------------------------------------------------------------
# Moving weights


def _new_key(key: str, index_map: dict[int, int]) -> str | None:
    match = _LAYER_KEY.match(key)
    if not match:
        return key
    old = int(match.group(1))
    if old not in index_map:
        return None
    return f"model.{index_map[old]}.{match.group(2)}"


def _in_layers(key: str, layers: set[int]) -> bool:
    match = _LAYER_KEY.match(key)
    return bool(match) and int(match.group(1)) in layers


def _examples(keys: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def move_weights(old: Any, new: Any, index_map: dict[int, int], new_layers: Iterable[int]) -> MoveStats:
    """Copy every tensor of ``old`` into ``new`` at its layer's new index; inserted layers keep their initialisation.

    Strict: every original tensor needs a tensor of the same shape at its new key, and every tensor of ``new``
    outside ``new_layers`` needs an original. Raises :class:`CheckpointError` naming the keys otherwise.
    """
    import torch

    inserted = set(new_layers)
    old_sd = old.state_dict()
    new_sd = new.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    homeless, mismatched = [], []
    renumbered = 0
    for key, value in old_sd.items():
        target = _new_key(key, index_map)
        if target is None or target not in new_sd:
            homeless.append(key)
        elif tuple(new_sd[target].shape) != tuple(value.shape):
            mismatched.append(f"{key} {tuple(value.shape)} -> {target} {tuple(new_sd[target].shape)}")
        else:
            mapped[target] = value
            renumbered += target != key
    missing = [k for k in new_sd if k not in mapped and not _in_layers(k, inserted)]
    if homeless or mismatched or missing:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensors the architecture needs are missing: {_examples(missing)}")
        if homeless:
            parts.append(f"{len(homeless)} tensors have no place in the architecture: {_examples(homeless)}")
        if mismatched:
            parts.append(f"{len(mismatched)} tensors have another shape: {_examples(mismatched)}")
        fused = any(k.endswith(".conv.bias") for k in homeless) and any(".bn." in k for k in missing)
        hint = "; the model looks fused (model.fuse()), save it unfused" if fused else ""
        raise CheckpointError(f"the checkpoint's weights do not fit its own architecture: {'; '.join(parts)}{hint}")
    result = new.load_state_dict({**new_sd, **mapped}, strict=True)
    del result
    fresh = sum(1 for k in new_sd if _in_layers(k, inserted))
    return MoveStats(moved=len(mapped), renumbered=renumbered, fresh=fresh)


# --------------------------------------------------------------------------------------------------------------------
# The new YAML


def new_config(ckpt: Checkpoint, result: graph_mod.SurgeryResult, yaml_file: str) -> dict[str, Any]:
    """The checkpoint's architecture with the surgery's rows (a plain dict, as ``model.yaml``)."""
    cfg = copy.deepcopy(ckpt.cfg)
    rows = [
        [r.from_ if isinstance(r.from_, int) else list(r.from_), r.repeats, r.module, _plain(list(r.args))]
        for r in result.graph.rows
    ]
    n_backbone = sum(1 for r in result.graph.rows if r.section == "backbone")
    cfg["backbone"], cfg["head"] = rows[:n_backbone], rows[n_backbone:]
    cfg["yaml_file"] = yaml_file
    return cfg


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def yaml_text(cfg: dict[str, Any], header: str = "") -> str:
    """Ultralytics-style YAML for an architecture dict: one flow-style row per layer with its index as a comment."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    from attnsurgeon import yamlio

    def flow(items: Sequence[Any]) -> CommentedSeq:
        seq = CommentedSeq(flow(x) if isinstance(x, (list, tuple)) else x for x in items)
        seq.fa.set_flow_style()
        return seq

    data = CommentedMap()
    index = 0
    for key, value in cfg.items():
        if key in ("yaml_file", "scale"):  # Ultralytics derives both from the file name
            continue
        if key in ("backbone", "head"):
            seq = CommentedSeq()
            for position, row in enumerate(value):
                seq.append(flow(row))
                seq.yaml_add_eol_comment(f"# {index}", position, column=0)
                index += 1
            data[key] = seq
        elif key == "scales" and isinstance(value, dict):
            data[key] = CommentedMap((k, flow(v)) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            data[key] = flow(value)
        else:
            data[key] = value
    if header:
        data.yaml_set_start_comment(header)
    return yamlio.dump(data)


# --------------------------------------------------------------------------------------------------------------------
# Checks


def max_output_difference(a: Any, b: Any, size: int = IDENTITY_CHECK_SIZE) -> float:
    """Max |Δ| between two models' eval outputs on the same random image (float32, CPU or their device)."""
    import torch

    device = next(a.parameters()).device
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, int(a.yaml.get("channels", 3)), size, size, generator=g).to(device)
    outputs = []
    for model in (a, b):
        model.eval()
        with torch.inference_mode():
            outputs.append(_flatten(model(x)))
    if len(outputs[0]) != len(outputs[1]):
        return float("inf")
    diffs = [(p.float() - q.float()).abs().max().item() for p, q in zip(*outputs, strict=True) if p.numel()]
    return max(diffs, default=0.0)


def _flatten(output: Any) -> list[Any]:
    import torch

    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        return [t for k in sorted(output) for t in _flatten(output[k])]
    if isinstance(output, (list, tuple)):
        return [t for v in output for t in _flatten(v)]
    return []


def _checks(base: Any, new: Any, new_layers: list[int], stats: MoveStats, identity_init: bool, imgsz: int) -> list[Any]:
    from attnsurgeon import verify

    checks = [verify.Check("weights moved", True, stats.describe())]
    stride = ultra.model_stride(new)
    if imgsz % stride:
        raise UsageError(f"--imgsz {imgsz} is not a multiple of the model stride {stride}")
    for size in [(imgsz, imgsz), *verify.rect_sizes(imgsz, stride)]:
        checks.append(verify.check_forward(new, size))
    trial = copy.deepcopy(new)  # a training step updates BatchNorm statistics: never on the model that is saved
    size = max(2 * stride, min(imgsz, 320) // stride * stride)
    checks.append(verify.check_train_step(trial, new_layers, size, {}))  # opens IdentityInit gates itself
    del trial
    if identity_init:
        diff = max_output_difference(base, new)
        ok = diff <= IDENTITY_TOLERANCE
        checks.append(
            verify.Check(
                "identity at init",
                ok,
                f"outputs equal the original's: max |Δ| {diff:.2e} at {IDENTITY_CHECK_SIZE}x{IDENTITY_CHECK_SIZE}"
                if ok
                else f"outputs differ from the original's by up to {diff:.2e} (> {IDENTITY_TOLERANCE:g})",
            )
        )
    return checks


# --------------------------------------------------------------------------------------------------------------------
# The whole operation


def default_output(source: Path, module: str) -> Path:
    return source.with_name(f"{source.stem}-{module}.pt")


def insert_checkpoint(
    model: str | Path,
    module: str,
    after: int | Sequence[int],
    args: Sequence[Any] | str | None = None,
    output: str | Path | None = None,
    force: bool = False,
    rewire: str = "all",
    identity_init: bool = False,
    scale: str | None = None,
    imgsz: int = 640,
    verify: bool = True,
    write: bool = True,
) -> Any:
    """Insert ``module`` after each layer in ``after`` of an Ultralytics checkpoint; returns an ``InsertReport``.

    Writes ``output`` (default ``<stem>-<Module>.pt`` beside the input) and the new architecture as the same name
    with ``.yaml``. Nothing is written unless every check passed; the input is never modified.
    """
    import torch

    from attnsurgeon import api, profile, yamlio

    source = Path(model).expanduser()
    spec, values = api.module_args(module, args)
    api.check_imgsz(imgsz)
    out = Path(output).expanduser() if output is not None else default_output(source, spec.name)
    if out.suffix.lower() != ".pt":
        raise UsageError(f"-o {out}: the output of a checkpoint surgery must be a .pt file (the YAML goes beside it)")
    yaml_out = out.with_suffix(".yaml")
    if write:
        for path in (out, yaml_out):
            yamlio.check_output(path, force, inputs=(source,))

    ckpt = load_checkpoint(source)
    if scale not in (None, ckpt.scale):
        raise UsageError(f"--scale does not apply to a checkpoint ({source.name} is scale {ckpt.scale or '-'!r})")
    row_module, row_args = api.surgery_row(spec, values, identity_init)
    result = graph_mod.insert(ckpt.graph, after, row_module, row_args, rewire=rewire)  # type: ignore[arg-type]
    new_layers = [i.index for i in result.insertions]
    cfg = new_config(ckpt, result, yaml_out.name)

    base = ckpt.model.float()  # load_checkpoint's own copy; the file is never touched
    try:
        new = ultra.build_model(cfg, ckpt.scale or None, yaml_out.name)
    except AttnSurgeonError:
        raise
    except Exception as exc:
        from attnsurgeon.verify import Check

        detail = ultra.first_line(exc)
        raise VerificationError(
            f"check 'build' failed: {detail}; nothing was written", [Check("build", False, detail)]
        ) from exc
    if type(new) is not type(base):
        raise CheckpointError(
            f"{source}: the architecture rebuilds as {type(new).__name__}, but the checkpoint holds a "
            f"{type(base).__name__}"
        )
    try:
        stats = move_weights(base, new, result.index_map, new_layers)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc
    for attr in ("names", "task", "transforms"):
        if attr in vars(base):
            setattr(new, attr, copy.deepcopy(getattr(base, attr)))

    warnings: list[str] = []
    name_scale = yamlio.guess_scale(yaml_out)
    if ckpt.scale and cfg.get("scales") and name_scale != ckpt.scale:
        what = f"scale letter {name_scale!r}" if name_scale else "no scale letter"
        warnings.append(
            f"{yaml_out.name} has {what} in its name, so YOLO('{yaml_out.name}') builds it at another scale than "
            f"the checkpoint's {ckpt.scale!r}; YOLO('{out.name}') is unaffected"
        )
    header = (
        f"{yaml_out.name}: the architecture of {out.name}, written by attnsurgeon\n"
        f"{source.name} with {spec.name} {values}{' (identity-initialised)' if identity_init else ''} inserted after "
        f"layer{'s' if len(result.insertions) > 1 else ''} {', '.join(str(i.after) for i in result.insertions)}"
    )
    text = yaml_text(cfg, header)
    report = api.InsertReport(
        output=out if write else None,
        source=source,
        module=spec.name,
        args=values,
        rewire=rewire,
        inserted=api.inserted_rows(result),
        changed=api.changed_rows(ckpt.graph, result),
        warnings=warnings,
        yaml_text=text,
    )
    if verify:
        report.checks = _checks(base, new, new_layers, stats, identity_init, imgsz)
        failed = [c for c in report.checks if c.ok is False]
        if failed:
            raise VerificationError(
                f"check '{failed[0].name}' failed: {failed[0].detail}; nothing was written", report.checks
            )
        base_g, new_g = profile.ultralytics_gflops(base, imgsz), profile.ultralytics_gflops(new, imgsz)
        report.costs[ckpt.scale] = (
            api.ModelCost(ckpt.scale, profile.count_params(base), base_g.value, base_g.source),
            api.ModelCost(ckpt.scale, profile.count_params(new), new_g.value, new_g.source),
        )
    if write:
        payload = checkpoint_dict(ckpt, new, result, spec.name, values, identity_init)
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        yamlio.write_atomic(yaml_out, text)
        yamlio.write_atomic(out, buffer.getvalue())
    return report


def checkpoint_dict(
    ckpt: Checkpoint,
    new: Any,
    result: graph_mod.SurgeryResult,
    module: str,
    args: list[Any],
    identity_init: bool,
) -> dict[str, Any]:
    """The output checkpoint: the input's keys, the new model in the input's dtype, trainer state reset."""
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
    out["attnsurgeon"] = {
        "source": ckpt.path.name,
        "module": module,
        "args": copy.deepcopy(args),
        "identity_init": identity_init,
        "inserted": [{"after": i.after, "index": i.index} for i in result.insertions],
        "index_map": dict(result.index_map),
    }
    return out
