"""Checks on a built model: forward passes at square and rectangular sizes, one training step, liveness.

Each check returns a :class:`Check`; a failed check says what failed and why (for a size problem: which layer, which
feature-map size). Nothing here prints.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from attnsurgeon.catalog.gradients import gradient_faults
from attnsurgeon.core import sizes
from attnsurgeon.core.graph import Graph
from attnsurgeon.core.report import Check
from attnsurgeon.errors import first_line
from attnsurgeon.ultralytics_bridge import ultra
from attnsurgeon.ultralytics_bridge.wrappers import with_gates_opened


@contextlib.contextmanager
def layer_tracker(model: nn.Module) -> Iterator[dict[str, Any]]:
    """Record the top-level layer being run and the shape of its input, to name the culprit of a failure."""
    state: dict[str, Any] = {}
    handles = []
    layers = getattr(model, "model", None)
    if isinstance(layers, nn.Sequential):
        for index, layer in enumerate(layers):

            def pre_hook(module: nn.Module, args: tuple[Any, ...], index: int = index) -> None:
                state["index"] = index
                state["type"] = getattr(module, "type", type(module).__name__).rsplit(".", 1)[-1]
                x = args[0] if args else None
                state["shape"] = tuple(x.shape) if isinstance(x, torch.Tensor) else None

            handles.append(layer.register_forward_pre_hook(pre_hook))
        if len(layers):
            # The last layer's output is the model's: once it returns, a later failure (a loss, an export step) is
            # not any layer's.
            handles.append(layers[-1].register_forward_hook(lambda *_: state.clear()))
    try:
        yield state
    finally:
        for h in handles:
            h.remove()


def failure_text(state: dict[str, Any], exc: BaseException, hints: dict[int, str]) -> str:
    message = first_line(exc, typed=False)
    if "index" not in state:
        return f"{exc.__class__.__name__}: {message}"
    where = f"layer {state['index']} ({state['type']})"
    shape = state.get("shape")
    size = f" on a {'x'.join(map(str, shape))} feature map" if shape else ""
    hint = hints.get(state["index"], "")
    return f"{where} failed{size}: {exc.__class__.__name__}: {message}{'; ' + hint if hint else ''}"


def all_finite(output: Any) -> bool:
    """True when every floating-point tensor in an output (tensor, dict, list, tuple) is free of NaN and Inf."""
    if isinstance(output, torch.Tensor):
        return bool(torch.isfinite(output).all()) if output.is_floating_point() else True
    if isinstance(output, dict):
        return all(all_finite(v) for v in output.values())
    if isinstance(output, (list, tuple)):
        return all(all_finite(v) for v in output)
    return True


def flatten_tensors(output: Any) -> list[torch.Tensor]:
    """The tensors of a model output in a fixed order (dict values by sorted key, lists and tuples in order)."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        return [t for k in sorted(output) for t in flatten_tensors(output[k])]
    if isinstance(output, (list, tuple)):
        return [t for v in output for t in flatten_tensors(v)]
    return []


def check_forward(model: nn.Module, size: tuple[int, int], hints: dict[int, str] | None = None) -> Check:
    name = f"forward {size[0]}x{size[1]}"
    p = next(model.parameters())
    x = torch.zeros(1, ultra.input_channels(model), *size, device=p.device, dtype=p.dtype)
    x[..., : size[0] // 2, :] = 0.5  # not constant: a constant image hides NaNs from variance-based modules
    model.eval()
    with layer_tracker(model) as state:
        try:
            with torch.inference_mode():
                out = model(x)
        except Exception as exc:
            return Check(name, False, failure_text(state, exc, hints or {}))
    if not all_finite(out):
        return Check(name, False, "output contains NaN or Inf")
    return Check(name, True, "")


def synthetic_batch(model: nn.Module, imgsz: int, batch: int = 2) -> dict[str, Any]:
    """Two images with one object each, with every target a task's Ultralytics loss might read."""
    p = next(model.parameters())
    g = torch.Generator().manual_seed(0)
    img = torch.rand(batch, ultra.input_channels(model), imgsz, imgsz, generator=g).to(p.device, p.dtype)
    n = batch
    cls = torch.arange(n, dtype=torch.float32).remainder(max(int(getattr(model, "nc", 1) or 1), 1)).view(-1, 1)
    boxes = torch.tensor([[0.5, 0.5, 0.3, 0.4], [0.4, 0.6, 0.2, 0.2]] * math.ceil(n / 2))[:n]
    out: dict[str, Any] = {"img": img, "batch_idx": torch.arange(n, dtype=torch.float32), "cls": cls}
    task = task_of(model)
    if task == "obb":
        out["bboxes"] = torch.cat([boxes, torch.full((n, 1), 0.3)], 1)
    else:
        out["bboxes"] = boxes
    mh, mw = imgsz // 4, imgsz // 4
    masks = torch.zeros(batch, mh, mw)
    for b in range(batch):
        x, y, w, h = boxes[b].tolist()
        masks[b, int((y - h / 2) * mh) : int((y + h / 2) * mh), int((x - w / 2) * mw) : int((x + w / 2) * mw)] = 1
    out["masks"] = masks
    out["sem_masks"] = masks.long()
    kpt_shape = getattr(model, "kpt_shape", None) or (getattr(model, "yaml", {}) or {}).get("kpt_shape") or [17, 3]
    nk, nd = int(kpt_shape[0]), int(kpt_shape[1])
    kpts = torch.rand(n, nk, nd, generator=g) * 0.2 + 0.4
    if nd == 3:
        kpts[..., 2] = 1.0
    out["keypoints"] = kpts
    out["depth"] = torch.rand(batch, 1, imgsz, imgsz, generator=g) + 0.5
    out["semantic_mask"] = masks.long().repeat_interleave(4, 1).repeat_interleave(4, 2)
    if task == "classify":
        out["cls"] = cls.view(-1).long()
    return out


@with_gates_opened  # IdentityInit layers: their closed gate would zero the inner gradients
def check_train_step(model: nn.Module, layer_indices: Sequence[int], imgsz: int, hints: dict[int, str]) -> Check:
    """One forward/backward with the model's own loss; every parameter of the given layers needs a finite gradient
    (an exactly-zero one is connected, and noted in the detail)."""
    name = "train step"
    if text_model(model):
        return Check(name, None, f"skipped: {type(model).__name__} trains with text embeddings")
    model.train()
    for q in model.parameters():
        q.grad = None
    batch = synthetic_batch(model, imgsz)
    with layer_tracker(model) as state:
        try:
            loss, _ = model.loss(batch)
            total = loss.sum()
        except Exception as exc:
            return Check(name, False, failure_text(state, exc, hints))
    if not torch.isfinite(total):
        return Check(name, False, f"loss is not finite ({float(total)})")
    try:
        total.backward()
    except Exception as exc:
        return Check(name, False, f"backward failed: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    grads = [(f"layer {i} {pname}", q.grad) for i in layer_indices for pname, q in model.model[i].named_parameters()]
    faults, counted = gradient_faults(grads), len(grads)
    problems = [f"{n}: no gradient" for n in faults.missing] + [f"{n}: non-finite gradient" for n in faults.non_finite]
    idle = faults.zero
    for q in model.parameters():
        q.grad = None
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        return Check(name, False, "; ".join(problems[:3]) + more)
    what = f"{counted} parameter tensors of the edited layers get finite gradients" if counted else "no new layers"
    if idle:
        # Connected (autograd reached them) but exactly zero on this batch at this initialisation: typically a
        # narrow ReLU bottleneck whose units are all inactive (SE with a hidden width of 1). Training can move them;
        # a disconnected parameter has no gradient at all and fails above.
        more = f" (+{len(idle) - 2} more)" if len(idle) > 2 else ""
        what += f"; {len(idle)} of them exactly zero at this initialisation ({', '.join(idle[:2])}{more})"
    return Check(name, True, f"loss {float(total.detach()):.3f}; {what}")


def check_liveness(graph: Graph, new_layers: Sequence[int]) -> Check:
    """Every inserted layer's output must reach an input of the head (else it is a dead end)."""
    last = len(graph) - 1
    dead = [i for i in new_layers if not graph.reaches(i, last)]
    if dead:
        return Check("reaches head", False, f"layer(s) {dead} feed nothing that reaches the head (layer {last})")
    direct = sorted(set(new_layers) & set(graph.outputs()))
    detail = f"head inputs {graph.outputs()}" + (f"; {direct} read directly by the head" if direct else "")
    return Check("reaches head", True, detail)


def check_model_file(
    cfg: dict[str, Any], stem: str, scales: Sequence[str], imgsz: int, layers: Sequence[int]
) -> tuple[list[Check], dict[int, int]]:
    """Build a model YAML at each scale and check it as :func:`check_new_model` does (every parameter of ``layers``
    needs a gradient). Returns the checks and the parameters of ``layers`` at the first scale."""
    checks: list[Check] = []
    params: dict[int, int] = {}
    for scale in scales:
        tag = f" [{scale}]" if len(scales) > 1 else ""
        try:
            model = ultra.build_model(cfg, scale or None, f"{stem}.yaml")
        except Exception as exc:
            checks.append(Check("build" + tag, False, first_line(exc)))
            break
        checks.append(Check("build" + tag, True, f"{len(model.model)} layers at scale {scale or '-'}"))
        params = params or {i: sum(p.numel() for p in model.model[i].parameters()) for i in layers}
        checks.extend(check_new_model(model, layers, {}, imgsz, tag))
    return checks, params


def exception_text(exc: BaseException, debug: bool = False) -> str:
    return "".join(traceback.format_exception(exc)) if debug else str(exc)


def check_new_model(
    new: nn.Module,
    fresh: Sequence[int],
    hints: dict[int, str],
    imgsz: int,
    tag: str = "",
    progress: Callable[[str], None] | None = None,
    copy_for_training: bool = False,
) -> list[Check]:
    """Forward passes at the square and two rectangular sizes, then one training step with the model's own loss in
    which every parameter of the ``fresh`` layers needs a gradient. ``tag`` names the scale in each check's name."""
    from attnsurgeon.ultralytics_bridge import ultra

    step = progress or (lambda text: None)
    stride = ultra.model_stride(new)
    sizes.check_imgsz(imgsz, stride)
    checks: list[Check] = []
    for size in sizes.forward_sizes(imgsz, stride):
        step(f"forward {size[0]}x{size[1]}")
        check = check_forward(new, size, hints)
        check.name += tag
        checks.append(check)
    step("training step")
    # A training step updates BatchNorm statistics: never on a model that is saved.
    trial = copy.deepcopy(new) if copy_for_training else new
    train = check_train_step(trial, fresh, sizes.train_size(imgsz, stride), hints)
    train.name += tag
    checks.append(train)
    return checks


def check_block_kept(
    base: nn.Module, new: nn.Module, layers: Sequence[int], tag: str = ""
) -> tuple[Check, dict[int, dict[str, int]]]:
    """Each augmented layer holds exactly the base block's tensors (same names, same shapes) plus the attention's, and
    the model grew by exactly the attention's parameters. Also returns, per layer, the attention modules and params."""
    from attnsurgeon.ultralytics_bridge.augment_blocks import attended_convs, attention_keys

    problems, kept_tensors, counts, module = [], 0, {}, "-"
    for i in layers:
        attention = attention_keys(new.model[i])
        kept = {k: tuple(v.shape) for k, v in new.model[i].state_dict().items() if k not in attention}
        original = {k: tuple(v.shape) for k, v in base.model[i].state_dict().items()}
        convs = [conv for _, conv in attended_convs(new.model[i])]
        counts[i] = {"modules": len(convs), "params": sum(p.numel() for c in convs for p in c.attn.parameters())}
        module = getattr(convs[0].attn, "module_name", type(convs[0].attn).__name__) if convs else module
        kept_tensors += len(original)
        if kept != original:
            differ = sorted(set(kept.items()) ^ set(original.items()))
            problems.append(f"layer {i}: tensors differ from the base block ({differ[:2]})")
    growth = sum(p.numel() for p in new.parameters()) - sum(p.numel() for p in base.parameters())
    added = sum(c["params"] for c in counts.values())
    if growth != added:
        problems.append(f"params grew by {growth:,} but the attention has {added:,}")
    name = "block kept" + tag
    if problems:
        return Check(name, False, "; ".join(problems)), counts
    blocks = f"{len(layers)} block{'s' * (len(layers) > 1)}"
    modules = sum(c["modules"] for c in counts.values())
    detail = (
        f"{blocks} keep all {kept_tensors} tensors (names, shapes); {modules} {module} add {added:,} params, the growth"
    )
    return Check(name, True, detail), counts


# --------------------------------------------------------------------------------------------------------------------
# Shared by the opt-in checks (attnsurgeon.checks.opt_in)


def task_of(model: nn.Module) -> str:
    """The Ultralytics task of a built model (a model built from a YAML has no ``task`` attribute yet)."""
    from ultralytics.nn.tasks import guess_model_task

    # Ultralytics' guess has no answer for an RT-DETR head (its RTDETR class sets "detect" itself).
    return getattr(model, "task", None) or guess_model_task(getattr(model, "yaml", None) or model) or "detect"


def text_model(model: nn.Module) -> bool:
    """World and YOLOE models need text embeddings to predict, validate and export; the checks skip them."""
    return type(model).__name__ in ("WorldModel", "YOLOEModel", "YOLOESegModel")


def working_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A float32 eval-mode copy on ``device``, with Ultralytics' task set."""
    clone = copy.deepcopy(model).float().to(device).eval()
    clone.task = task_of(model)
    return clone


def calibrated_copy(model: nn.Module, imgsz: int, device: torch.device) -> nn.Module:
    """A float32 eval copy whose batch-norm statistics come from two random images, as a trained model's come from
    data. With a fresh model's unit statistics, activations shrink with depth until the output hardly depends on
    the input (adding 1 after layer 0 of yolo11n moves its output by 1e-7 of its range), which would hide any error
    a check looks for."""
    clone = working_copy(model, device)
    norms = [m for m in clone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: after one batch, exactly that batch's statistics
    images = torch.cat([sample_image(model, (imgsz, imgsz), device, seed) for seed in (1, 2)])
    clone.train()
    with torch.no_grad():
        clone(images)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    return clone.eval()


def sample_image(model: nn.Module, size: Sequence[int], device: torch.device, seed: int = 0) -> torch.Tensor:
    """A reproducible random image in [0, 1] with the model's own input channels."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, ultra.input_channels(model), *size, generator=g).to(device)


def failed(name: str, state: dict[str, Any], exc: BaseException, hints: dict[int, str], what: str = "") -> Check:
    """A failed check naming the layer (from :func:`verify.layer_tracker`) and the known fix, if any."""
    text = failure_text(state, exc, hints)
    fix = known_fix(str(exc))
    prefix = f"{what}: " if what else ""
    return Check(name, False, f"{prefix}{text}{'; fix: ' + fix if fix and fix not in text else ''}")


def square_and_rect(model: nn.Module, imgsz: int) -> list[tuple[int, int]]:
    """imgsz x imgsz and the first rectangular size of :func:`sizes.rect_sizes` (480x640 for 640)."""
    return [(imgsz, imgsz), sizes.rect_sizes(imgsz, ultra.model_stride(model))[0]]


# Errors whose cause and fix are known; the first pattern that matches an exception's text adds its hint.
KNOWN_FIXES: tuple[tuple[str, str], ...] = (
    (
        r"expected (scalar type|both|self\.dtype|.*same dtype)|dtypes? (must )?match|same dtype|"
        r"found dtype|but got (Half|BFloat16|Float)",
        "a tensor made inside the module keeps float32 while its input is half precision: create it with "
        "dtype=x.dtype (torch.zeros(..., dtype=x.dtype, device=x.device)) or cast it with .to(x.dtype)",
    ),
    (
        r"not implemented for '(Half|BFloat16)'",
        "this operation has no half-precision kernel on this device: compute it in float32 inside the module "
        "(y = op(x.float()).to(x.dtype))",
    ),
    (
        r"Exporting the operator|to ONNX opset version",
        "rewrite the operation with ONNX-exportable ops (matmul, softmax, reshape, conv), or give it a symbolic "
        "(torch.onnx.register_custom_op_symbolic)",
    ),
)


def known_fix(text: str) -> str:
    """The hint for an error message, or '' when its fix is not known."""
    return next((hint for pattern, hint in KNOWN_FIXES if re.search(pattern, text, re.IGNORECASE)), "")
