"""Each catalog module's cost at the reference point (C=256, 20x20, batch 1): params and exact GFLOPs.

Computing needs torch (seconds); ``list`` must answer in well under a second, so results are cached in the user's
cache directory, keyed by a hash of the module sources and the torch version. The cache is an optimisation only:
delete it and the figures are recomputed the same.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from attnsurgeon.catalog.registry import CATALOG_DIR, ModuleSpec
from attnsurgeon.core.diskcache import cache_dir, prune

REFERENCE_CHANNELS = 256
REFERENCE_SIZE = (20, 20)


def _torch_version_file() -> bytes:
    # torch/version.py names the exact build; reading it is far cheaper than importlib.metadata or torch itself.
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return b""
    path = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    return path.read_bytes() if path.is_file() else b""


def _fingerprint(specs: list[ModuleSpec]) -> str:
    digest = hashlib.sha256()
    digest.update(_torch_version_file())
    files = {Path(s.source) for s in specs if s.source} | {
        CATALOG_DIR / "modules" / "building_blocks.py",
        CATALOG_DIR / "base.py",
    }
    for path in sorted(files):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def compute(spec_name: str) -> dict[str, Any]:
    import torch

    from attnsurgeon.catalog import REGISTRY
    from attnsurgeon.costs.flops import count_params, exact_flops

    torch.manual_seed(0)
    module = REGISTRY.load_class(spec_name)(REFERENCE_CHANNELS).eval()
    flops, _ = exact_flops(module, torch.zeros(1, REFERENCE_CHANNELS, *REFERENCE_SIZE))
    return {"params": count_params(module), "gflops": flops / 1e9}


def reference_costs(specs: list[ModuleSpec], compute_missing: bool = True) -> dict[str, dict[str, Any]]:
    """name -> {"params", "gflops"} at the reference point, from the cache or computed (and then cached)."""
    path = cache_dir() / f"catalog-costs-{_fingerprint(specs)}.json"
    cached: dict[str, dict[str, Any]] = {}
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
        except (OSError, ValueError):
            cached = {}
    missing = [s.name for s in specs if s.name not in cached]
    if missing and compute_missing:
        for name in missing:
            cached[name] = compute(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            prune(path.parent, "catalog-costs-*.json")  # stale catalog versions never pile up
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cached, indent=1, sort_keys=True))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only home only costs speed
    return {s.name: cached[s.name] for s in specs if s.name in cached}
