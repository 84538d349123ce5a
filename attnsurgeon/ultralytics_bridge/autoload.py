"""Auto-registration: attnsurgeon's modules resolve in plain Ultralytics, in every process, with no source edits.

Installing attnsurgeon puts ``attnsurgeon-autoload.pth`` into site-packages (see setup.py). Python runs its one line
at start-up; unless ``ATTNSURGEON_AUTOLOAD=0`` it puts a tiny finder on ``sys.meta_path`` that imports nothing until
``ultralytics.nn.tasks`` is imported; then it imports this module, whose finder lets the normal machinery load that
module and, right after it has executed, calls :func:`attnsurgeon.ultralytics_bridge.ultra.register`, then removes
itself. So
``YOLO("x-SE.yaml")``, ``yolo train model=x-SE.yaml`` and the worker processes of multi-GPU training (started from a
generated script) all find the catalog modules, and ``ULTRALYTICS_SAFE_LOAD=1`` loads checkpoints that contain them.

A process that never imports Ultralytics pays one string comparison per import and imports nothing of attnsurgeon. A
failure to register is a warning, never an exception.
"""

import os
import sys

TARGET = "ultralytics.nn.tasks"
ENV_VAR = "ATTNSURGEON_AUTOLOAD"
_OFF = ("0", "false", "no", "off")


def enabled() -> bool:
    """Whether ``ATTNSURGEON_AUTOLOAD`` allows auto-registration (on unless 0/false/no/off)."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in _OFF


class _ChainedLoader:
    """Wraps the real loader of ``ultralytics.nn.tasks``: runs it, then registers attnsurgeon's modules."""

    def __init__(self, loader: object) -> None:
        self.loader = loader

    def create_module(self, spec: object) -> object:
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: object) -> None:
        # The module keeps its real loader (inspect, linecache and pkgutil read it); only this call is ours.
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self.loader  # type: ignore[attr-defined]
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self.loader
        self.loader.exec_module(module)  # type: ignore[attr-defined]
        _registered_hook()

    def __getattr__(self, name: str) -> object:
        return getattr(self.loader, name)


class AutoRegisterFinder:
    """A ``sys.meta_path`` finder that fires once, when ``ultralytics.nn.tasks`` is imported."""

    def __init__(self) -> None:
        self._busy = False

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if fullname != TARGET or self._busy:
            return None
        self._busy = True  # the finders asked below must not ask us again
        try:
            for finder in sys.meta_path:
                if finder is self:
                    continue
                find = getattr(finder, "find_spec", None)
                spec = find(fullname, path, target) if find is not None else None
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._busy = False
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _ChainedLoader(spec.loader)
        return spec

    def invalidate_caches(self) -> None:
        return None


_FINDER = AutoRegisterFinder()


def install() -> bool:
    """Install the finder (idempotent); register at once if Ultralytics is already imported. Returns True if active."""
    if not enabled():
        return False
    if TARGET in sys.modules:
        _registered_hook()
        return True
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    return True


def uninstall() -> None:
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def _registered_hook() -> None:
    uninstall()
    try:
        from attnsurgeon.catalog import REGISTRY
        from attnsurgeon.ultralytics_bridge import ultra

        ultra.register()
        for message in REGISTRY.plugin_warnings:  # broken installed plugins: skipped, the catalog still works
            import warnings

            warnings.warn(f"attnsurgeon: {message}", RuntimeWarning, stacklevel=2)
    except Exception as exc:  # never break the user's import of Ultralytics
        import warnings

        warnings.warn(
            f"attnsurgeon could not register its modules with Ultralytics ({exc.__class__.__name__}: {exc}); "
            f"models that use them will not build in this process. Set {ENV_VAR}=0 to turn auto-registration off.",
            RuntimeWarning,
            stacklevel=2,
        )


install()
