"""Why NCNN cannot load an exported model, named as NCNN's op and, where it can be found, the model's layer.

Ultralytics' NCNN export (pnnx) can write a ``.param`` that NCNN then refuses, for instance a ``Reshape`` pnnx could
not give static parameters, or an op NCNN has no layer for. NCNN says so only on the C stderr (``layer load_param 93
reshape_176 failed``), and ``AutoBackend`` goes on with an empty network whose first call raises ``IndexError: list
index out of range``. This reads the ``.param`` again with NCNN itself, takes NCNN's own message, and names the op;
the layer of the model is found from the nearest convolution that feeds the op, whose shape (out and in channels,
kernel) is matched against the model's convolutions: named only when exactly one layer has such a convolution.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LOAD_FAILED = re.compile(r"layer load_param (\d+) (\S+) failed")
_NOT_REGISTERED = re.compile(r"layer (\S+) not exists or registered")
_CONVOLUTIONS = {"Convolution", "ConvolutionDepthWise"}


@dataclass(frozen=True)
class ParamLayer:
    """One line of an NCNN ``.param``: op type, name, input and output blobs, ``k=v`` parameters."""

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[str, str]


def read_param(path: Path) -> list[ParamLayer]:
    """The layers of a ``.param`` file in order (its first two lines are the magic number and the counts)."""
    layers = []
    for line in path.read_text(encoding="utf-8").splitlines()[2:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        n_in, n_out = int(fields[2]), int(fields[3])
        blobs = fields[4 : 4 + n_in + n_out]
        params = dict(f.split("=", 1) for f in fields[4 + n_in + n_out :] if "=" in f)
        layers.append(ParamLayer(fields[0], fields[1], tuple(blobs[:n_in]), tuple(blobs[n_in:]), params))
    return layers


def _ncnn_says(param: Path) -> str:
    """What NCNN writes on the C stderr while it loads ``param`` (empty when it loads)."""
    import ncnn

    from attnsurgeon.ultralytics_bridge.exporting import fds_to

    with tempfile.TemporaryFile() as err:
        with fds_to(err, (2,)):
            code = ncnn.Net().load_param(str(param))
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    return text if code != 0 else ""


def _feeding_convolution(layers: list[ParamLayer], failing: ParamLayer) -> ParamLayer | None:
    """The nearest convolution upstream of ``failing`` (breadth first over the blob graph)."""
    producer = {blob: layer for layer in layers for blob in layer.outputs}
    queue, seen = list(failing.inputs), set()
    while queue:
        blob = queue.pop(0)
        layer = producer.get(blob)
        if layer is None or layer.name in seen:
            continue
        seen.add(layer.name)
        if layer.type in _CONVOLUTIONS:
            return layer
        queue.extend(layer.inputs)
    return None


def _conv_shape(conv: ParamLayer) -> tuple[int, int, int] | None:
    """(out channels, in channels per group, kernel) of an NCNN convolution, from its weight count."""
    try:
        out, kernel, weights = int(conv.params["0"]), int(conv.params.get("1", "1")), int(conv.params["6"])
    except (KeyError, ValueError):
        return None
    per_out = weights // max(out * kernel * kernel, 1)
    return out, per_out, kernel


def _layers_with(model: Any, shape: tuple[int, int, int]) -> list[int]:
    """Indices of the model's layers that hold a convolution of ``shape``."""
    from torch import nn

    found = []
    for index, layer in enumerate(getattr(model, "model", [])):
        for m in layer.modules():
            if isinstance(m, nn.Conv2d):
                mine = (m.out_channels, m.in_channels // m.groups, m.kernel_size[0])
                if mine == shape and index not in found:
                    found.append(index)
    return found


def unloaded(backend: Any) -> bool:
    """Whether ``AutoBackend`` went on with an empty NCNN network (it has no inputs when its ``.param`` failed)."""
    net = getattr(getattr(backend, "backend", None), "net", None)
    return net is not None and not net.input_names()


def load_problem(folder: str | Path, model: Any) -> str | None:
    """Why NCNN cannot load the export in ``folder`` (``model.ncnn.param``), naming the op and, where the match is
    unique, the layer of ``model`` (the PyTorch model the exporter traced); None when it loads."""
    param = Path(folder) / "model.ncnn.param"
    if not param.is_file():
        return None
    said = _ncnn_says(param)
    if not said:
        return None
    layers = read_param(param)
    missing = _NOT_REGISTERED.search(said)
    if missing:
        return f"NCNN has no layer for op {missing.group(1)} that the export uses"
    failed = _LOAD_FAILED.search(said)
    if not failed or int(failed.group(1)) >= len(layers):
        return f"NCNN cannot load the export: {said.strip().splitlines()[0]}"
    failing = layers[int(failed.group(1))]
    what = f"NCNN cannot load op {failing.type} ({failing.name}) as exported"
    if not failing.params and failing.type in {"Reshape", "Slice", "Permute", "Crop"}:
        what += " (pnnx wrote it without parameters: a shape it could not make static)"
    conv = _feeding_convolution(layers, failing)
    shape = _conv_shape(conv) if conv is not None else None
    owners = _layers_with(model, shape) if shape is not None else []
    if len(owners) == 1:
        index = owners[0]
        kind = type(model.model[index]).__name__
        return f"{what}, in layer {index} ({kind}), after its {shape[2]}x{shape[2]} convolution to {shape[0]} channels"
    return what
