"""attnsurgeon: insert attention modules into Ultralytics YOLO models (YAMLs and .pt checkpoints).

The public API, usable from a notebook as well as from the ``attnsurgeon`` command::

    import attnsurgeon

    report = attnsurgeon.insert("yolo11n.yaml", "SE", after=8, output="yolo11n-SE.yaml")
    report = attnsurgeon.insert("best.pt", "SE", after=8, output="best-SE.pt", identity_init=True)
    report = attnsurgeon.insert("yolo11n.yaml", "CBAM", after=["heads", "p5"])  # named positions
    report = attnsurgeon.replace("yolo11n-CBAM.yaml", "every:CBAM", "ECA")  # or remove(..., at="every:CBAM")
    attnsurgeon.register()  # catalog modules resolvable by name in this process's Ultralytics
    new, base = attnsurgeon.profile_model(["yolo11n-SE.yaml", "yolo11n.yaml"])  # params, FLOPs, latency
    rows = attnsurgeon.sweep("yolo11n.yaml", modules="SE,CBAM", at="8,10", output="sweep")  # every variant compared

Every name is imported on first use, so ``import attnsurgeon`` costs nothing and imports neither torch nor Ultralytics
(the auto-registration hook imports this package at interpreter start-up).
"""

# Keep this file nearly free of imports: it runs in every process that imports Ultralytics (see
# ultralytics_bridge/autoload.py). One small module: the old flat-layout names keep resolving (see _moved.py).
from attnsurgeon import _moved

_moved.install()

__all__ = [
    "InsertReport",
    "RunOptions",
    "__version__",
    "adopt",
    "augment",
    "build_model",
    "cam",
    "check_module",
    "errors",
    "insert",
    "insert_checkpoint",
    "load_checkpoint",
    "new_module",
    "plan_augment",
    "plan_insert",
    "plot_model",
    "profile_model",
    "register",
    "remove",
    "replace",
    "show",
    "sweep",
]

_LAZY = {
    "InsertReport": "attnsurgeon.core.report",
    "RunOptions": "attnsurgeon.ops.run_options",
    "adopt": "attnsurgeon.ops.adopt",
    "insert": "attnsurgeon.ops.surgery",
    "plan_insert": "attnsurgeon.ops.surgery",
    "augment": "attnsurgeon.ops.augment",
    "plan_augment": "attnsurgeon.ops.augment",
    "show": "attnsurgeon.ops.show",
    "remove": "attnsurgeon.ops.surgery",
    "replace": "attnsurgeon.ops.surgery",
    "sweep": "attnsurgeon.sweeps.runner",
    "check_module": "attnsurgeon.ops.scaffold",
    "new_module": "attnsurgeon.ops.scaffold",
    "register": "attnsurgeon.ultralytics_bridge.ultra",
    "build_model": "attnsurgeon.ultralytics_bridge.ultra",
    "insert_checkpoint": "attnsurgeon.ops.surgery",
    "load_checkpoint": "attnsurgeon.ultralytics_bridge.checkpoints",
    "plot_model": "attnsurgeon.figures.diagram",
    "cam": "attnsurgeon.figures.cam",
}


def __getattr__(name: str) -> object:
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name == "errors":
        value = importlib.import_module("attnsurgeon.errors")
    elif name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("attnsurgeon")
        except PackageNotFoundError:
            value = "0+unknown"
    else:
        raise AttributeError(f"module 'attnsurgeon' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def profile_model(*args: object, **kwargs: object) -> object:
    """What ``attnsurgeon profile`` measures; see :func:`attnsurgeon.ops.profile.profile` (imports torch when
    called)."""
    from attnsurgeon.ops.profile import profile

    return profile(*args, **kwargs)  # type: ignore[arg-type]
