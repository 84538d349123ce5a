"""Where the modules of earlier layouts live now, so that what those layouts wrote still loads: the flat layout
(before the rooms), and the rooms' first layout (catalog modules beside the registry, ``catalog.plugins``,
``core.yamlio``).

Checkpoints pickle class paths (``attnsurgeon.wrappers.IdentityInit``, ``attnsurgeon.catalog.cbam.CBAM``),
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
_FLAT = {
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
}  # fmt: skip
# the rooms' first layout -> now: the catalog's modules in catalog/modules/, where a class comes from in sources/,
# the YAML file in core/yamlfile/ (checkpoints pickle ``attnsurgeon.catalog.cbam.CBAM`` and the plugin rebuilders)
_CATALOG_MODULES = [
    "bam", "bi_level_routing_attention", "cascaded_group_attention", "cbam", "coord_att", "cpca",
    "criss_cross_attention", "dattention", "eca", "efficient_attention", "ela", "ema", "ese", "fcanet",
    "focused_linear_attention", "gam", "gc", "gct", "halo_attention", "irmb", "lsk", "lska", "mlca", "msda", "nam",
    "scse", "se", "senetv2", "shuffle_attention", "simam", "sk", "soca", "triplet_attention",
]  # fmt: skip
_ROOMS = {f"catalog.{m}": f"catalog.modules.{m}" for m in _CATALOG_MODULES} | {
    "catalog.layers": "catalog.modules.building_blocks",
    "catalog.plugins": "sources.plugins",
    "catalog.foreign_plugins": "sources",
    "catalog.foreign": "sources.adapter",
    "catalog.sources": "sources.named_classes",
    "catalog.library": "sources.libraries",
    "catalog.file_import": "sources.file_import",
    "catalog.recorded": "sources.recorded",
    "catalog.source_tree": "sources.source_tree",
    "catalog.ultralytics_classes": "sources.ultralytics_classes",
    "core.yamlio": "core.yamlfile.model_doc",
    "core.yamltree": "core.yamlfile.tree_edits",
    "core.yamledit": "core.yamlfile.tree_edits",
    "core.flowstyle": "core.yamlfile.line_layout",
    "core.flowedit": "core.yamlfile.text_writer",
    "core.comments": "core.yamlfile.comments",
    "checks.deploy": "checks.opt_in",
    "checks.export": "checks.onnx_export",
    "checks.formats": "checks.format_exports",
    "checks.val": "checks.val_batch",
    "sweeps.deploy": "sweeps.formats",
    "costs.deployed": "costs.runtime_latency",
    "costs.layers": "costs.per_layer",
    "figures.layers": "figures.new_layers",
    "ops.options": "ops.run_options",
    "cli._report": "cli._report_view",
    "cli._progress": "cli._status_line",
    "ops.adoption": "ops.loading",  # its plan went to ops.adopt_plan; most imports of it loaded a file
}
MOVED: dict[str, str] = {f"attnsurgeon.{old}": f"attnsurgeon.{_ROOMS.get(new, new)}" for old, new in _FLAT.items()}
MOVED |= {f"attnsurgeon.{old}": f"attnsurgeon.{new}" for old, new in _ROOMS.items()}
_OLD_OF: dict[str, list[str]] = {}
for _old, _new in MOVED.items():
    _OLD_OF.setdefault(_new, []).append(_old)


class _AliasLoader:
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)  # the module itself: its attributes (name, spec) are kept

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module ran under its own name."""


class MovedModuleFinder:
    """Resolves an old module name (flat layout, or the rooms' first layout) to the module at its new place."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (importing ``attnsurgeon`` does this)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())


def legacy_paths(obj: type | object) -> list[str]:
    """Every ``module.Qualname`` a checkpoint written by an earlier layout used for a class or function (empty when
    it did not move)."""
    module, qualname = getattr(obj, "__module__", ""), getattr(obj, "__qualname__", "")
    return [f"{old}.{qualname}" for old in _OLD_OF.get(module, [])]
