"""Ultralytics' exporter and ``AutoBackend`` for the deployment formats, with nothing installed behind the user's back.

``yolo export format=openvino`` and ``yolo predict model=x_openvino_model/`` call ``check_requirements``, which
pip-installs a missing runtime. attnsurgeon never installs (docs/architecture.md, Trust): :func:`no_installs` swaps
that function, in ``ultralytics.utils.checks`` and in every loaded Ultralytics module holding a reference to it, for
one that raises :class:`MissingExtraError` naming the extra to install. :func:`require` checks a format's packages
before any work, so a missing package is one line, not a half-done export.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from attnsurgeon.errors import MissingExtraError

EXTRA = "pip install 'attnsurgeon[deploy]'"
# The formats attnsurgeon exports, checks and times: Ultralytics' format name -> the Python modules it imports.
FORMATS: dict[str, tuple[str, ...]] = {
    "onnx": ("onnx", "onnxruntime"),
    "torchscript": (),
    "openvino": ("openvino",),
    "ncnn": ("ncnn", "pnnx"),
}
LABELS = {"onnx": "ONNX", "torchscript": "TorchScript", "openvino": "OpenVINO", "ncnn": "NCNN"}


def require(fmt: str) -> None:
    """A :class:`MissingExtraError` naming the extra when a package ``fmt`` needs cannot be imported."""
    for module in FORMATS[fmt]:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingExtraError(
                f"{LABELS[fmt]} needs the Python package {module!r}, which is not installed ({EXTRA})"
            ) from exc


def _refusing(original: Callable[..., bool]) -> Callable[..., bool]:
    def check_requirements(requirements: Any = (), exclude: Any = (), install: bool = True, **kwargs: Any) -> bool:
        """Ultralytics' check, never installing: a requirement not met is a one-line error."""
        if isinstance(requirements, Path) or original(requirements, exclude, install=False, **kwargs):
            return True
        if not install:
            return False
        wanted = [requirements] if isinstance(requirements, str) else list(requirements)
        names = ", ".join("/".join(r) if isinstance(r, (list, tuple)) else str(r) for r in wanted)
        raise MissingExtraError(
            f"Ultralytics needs {names}, which is not installed here; attnsurgeon never installs "
            f"packages ({EXTRA}, or pip install the versions named)"
        )

    check_requirements.refuses_install = True  # type: ignore[attr-defined]
    return check_requirements


@contextlib.contextmanager
def no_installs() -> Iterator[None]:
    """Within: every ``check_requirements`` Ultralytics can reach refuses to install (see module docstring)."""
    from ultralytics.utils import checks

    original = checks.check_requirements
    guard = _refusing(original)
    patched = [(checks, "AUTOINSTALL", checks.AUTOINSTALL)]
    checks.AUTOINSTALL = False
    for name, module in list(sys.modules.items()):
        if name.startswith("ultralytics") and getattr(module, "check_requirements", None) is original:
            patched.append((module, "check_requirements", original))
            module.check_requirements = guard  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module, attr, value in reversed(patched):
            setattr(module, attr, value)


@contextlib.contextmanager
def fds_to(sink: IO[Any], fds: Sequence[int] = (1, 2)) -> Iterator[None]:
    """What native code writes on file descriptors ``fds`` goes to ``sink`` instead (pnnx writes its passes on 1 and
    2, NCNN its load errors on 2)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    try:
        for fd in fds:
            os.dup2(sink.fileno(), fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, old in zip(fds, saved, strict=True):
            os.dup2(old, fd)
            os.close(old)


@contextlib.contextmanager
def silent_fds() -> Iterator[None]:
    """Silence what native code prints on file descriptors 1 and 2."""
    with open(os.devnull, "w") as null, fds_to(null):
        yield


def export(model: Any, fmt: str, size: Sequence[int], folder: Path, dynamic: bool = False) -> tuple[Any, str]:
    """``yolo export format=fmt imgsz=h,w batch=1 device=cpu`` of ``model`` into ``folder``: (the PyTorch model as
    the exporter prepared it, the exported file or folder). Exceptions are the exporter's."""
    from ultralytics.engine.exporter import Exporter

    from attnsurgeon.ultralytics_bridge.ultra import quiet

    require(fmt)
    if not getattr(model, "task", None):  # a model built from a YAML; the exporter reads the task from it
        from ultralytics.nn.tasks import guess_model_task

        model.task = guess_model_task(model)
    model.pt_path = str(folder / "model.pt")  # the exporter writes beside it: model.torchscript, model_ncnn_model/
    overrides: dict[str, Any] = {"format": fmt, "imgsz": list(size), "device": "cpu", "batch": 1}
    if dynamic:
        overrides["dynamic"] = True
    if fmt == "onnx":
        overrides["simplify"] = False
    with no_installs(), quiet(), silent_fds():
        exporter = Exporter(overrides=overrides)
        path = exporter(model)
    return exporter.model, str(path)


def load(path: str | Path) -> Any:
    """The exported file as ``yolo predict model=path`` loads it: Ultralytics' ``AutoBackend`` on the CPU."""
    import torch
    from ultralytics.nn.autobackend import AutoBackend

    from attnsurgeon.ultralytics_bridge.ultra import quiet

    with no_installs(), quiet(), contextlib.ExitStack() as stack:
        if str(path).endswith("_ncnn_model"):  # NCNN prints a .param it cannot load on the C stderr and goes on:
            stack.enter_context(silent_fds())  # ncnn_param.load_problem says it in one line
        return AutoBackend(str(path), device=torch.device("cpu"), fp16=False, verbose=False)


def precision(backend: Any) -> str:
    """The precision the runtime computes in as loaded: OpenVINO picks bf16 on CPUs that have it, NCNN stores and
    computes in fp16 where the CPU can (its default options), unless told otherwise."""
    inner = getattr(backend, "backend", None)
    compiled = getattr(inner, "ov_compiled_model", None)
    if compiled is not None:
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        return str(hint.to_string() if hasattr(hint, "to_string") else hint)
    net = getattr(inner, "net", None)
    if net is not None and getattr(getattr(net, "opt", None), "use_fp16_storage", False):
        return "f16"
    return "f32"


def float32_run(backend: Any, path: str | Path) -> Callable[[Any], list[Any]] | None:
    """For a runtime that computes in a lower precision here (OpenVINO in bf16, NCNN in fp16): the same file loaded
    to compute in f32, as a function of the input tensor (a translation error then shows above float32 noise). None
    when the runtime computes in f32 already."""
    # NCNN's options say fp16 only where the CPU offers it, and layers may still compute in it: its f32 run is always
    # made, so a translation error is judged against float32 noise whatever the options report
    if precision(backend) == "f32" and getattr(backend, "format", "") != "ncnn":
        return None
    folder = Path(path)
    if getattr(backend, "format", "") == "ncnn":
        return _ncnn_f32(folder if folder.is_file() else next(folder.glob("*.param")))
    import openvino as ov

    xml = folder if folder.is_file() else next(folder.glob("*.xml"))
    core = ov.Core()
    f32 = core.compile_model(core.read_model(str(xml)), "CPU", {"INFERENCE_PRECISION_HINT": ov.Type.f32})
    return lambda x: [*f32(x.cpu().numpy()).values()]


def _ncnn_f32(param: Path) -> Callable[[Any], list[Any]]:
    """The NCNN files run as Ultralytics' NCNN backend runs them, with fp16 storage and arithmetic off."""
    import ncnn
    import numpy as np

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = False
    net.load_param(str(param))
    net.load_model(str(param.with_suffix(".bin")))

    def run(x: Any) -> list[Any]:
        outputs = []
        for sample in x.cpu().numpy():
            with net.create_extractor() as ex:
                ex.input(net.input_names()[0], ncnn.Mat(sample))
                outputs.append([np.array(ex.extract(name)[1]) for name in sorted(net.output_names())])
        return [np.stack(y) for y in zip(*outputs, strict=True)]

    return run
