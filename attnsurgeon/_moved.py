"""Where the modules of the flat layout (before 0.2) live now, so that what that layout wrote still loads.

Checkpoints pickle class paths (``attnsurgeon.wrappers.IdentityInit``, ``attnsurgeon.augment_blocks.AttendedConv``),
an installed ``attnsurgeon-autoload.pth`` of an older install imports ``attnsurgeon._autoload``, and users' scripts
and plugins import ``attnsurgeon.api`` or ``attnsurgeon.ultra``. :class:`MovedModuleFinder` answers each old name
with the module at its new place (the same module object, so classes are identical), and :func:`legacy_paths` gives
the old ``module.Class`` strings ``torch.load(weights_only=True)`` must also accept.
"""

from __future__ import annotations

import importlib
import sys
from importlib.machinery import ModuleSpec  # not importlib.abc: it imports typing, and this runs at start-up
from types import ModuleType

# old module (flat layout) -> its module now; one line per module moved into a subpackage
MOVED: dict[str, str] = {
    f"attnsurgeon.{old}": f"attnsurgeon.{new}"
    for old, new in {
        "graph": "core.graph", "positions": "core.positions", "yamlio": "core.yamlio", "yamltree": "core.yamltree",
        "yamledit": "core.yamledit", "augment_graph": "core.augment_graph", "channels": "core.channels",
        "sizes": "core.sizes", "names": "core.names", "report": "core.report", "diskcache": "core.diskcache",
        "ultra": "ultralytics_bridge.ultra", "parse_hooks": "ultralytics_bridge.parse_hooks",
        "_autoload": "ultralytics_bridge.autoload", "wrappers": "ultralytics_bridge.wrappers",
        "augment_blocks": "ultralytics_bridge.augment_blocks", "checkpoints": "ultralytics_bridge.checkpoints",
        "verify": "checks.verify", "contract": "checks.contract", "export_check": "checks.export",
        "half_check": "checks.half", "val_check": "checks.val", "deploy_checks": "checks.deploy",
        "profile": "ops.profile", "flops": "costs.flops", "timing": "costs.timing", "layer_costs": "costs.layers",
        "module_costs": "costs.modules",
        "pipeline": "ops.pipeline", "api": "ops.surgery", "api_augment": "ops.augment", "api_adopt": "ops.adopt",
        "adoption": "ops.adoption", "diagnose": "ops.diagnose", "weights": "ops.weights", "scaffold": "ops.scaffold",
        "sweeper": "sweeps.runner", "sweep_cost": "sweeps.cost", "sweep_plan": "sweeps.plan",
        "sweep_plot": "sweeps.plot",
        "sweep_ray": "sweeps.ray_tune", "sweep_store": "sweeps.store", "sweep_train": "sweeps.train",
    }.items()
}  # fmt: skip
_OLD_OF = {new: old for old, new in MOVED.items()}


class _AliasLoader:
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)  # the module itself: its attributes (name, spec) are kept

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module ran under its own name."""


class MovedModuleFinder:
    """Resolves an old flat-layout name to the module at its new place."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (importing ``attnsurgeon`` does this)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())


def legacy_paths(cls: type) -> list[str]:
    """The ``module.Qualname`` a checkpoint written by the flat layout used for ``cls`` (empty when it did not move)."""
    old = _OLD_OF.get(cls.__module__)
    return [f"{old}.{cls.__qualname__}"] if old else []
