"""Fixtures several rooms' tests share (a room's own are in its conftest.py), and the environment every test runs in."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("YOLO_VERBOSE", "False")
os.environ.setdefault("YOLO_OFFLINE", "1")
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    # pytest -n N: share the cores instead of N x all of them (oversubscribed OpenMP threads spin and slow every
    # convolution down); set before torch is imported here or in a subprocess a test starts.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    # xdist hands its workers COLUMNS=80; the tests read output as a run with no terminal renders it (as CI's does).
    os.environ.pop("COLUMNS", None)


@pytest.fixture(scope="session")
def torch_threads():
    import torch

    torch.manual_seed(0)
    return torch.get_num_threads()


@pytest.fixture(scope="module")
def one_thread():
    """For a module that checks figures, not speed: one intra-op thread keeps it quick on a CPU shared with other jobs
    (two OpenMP threads contending for busy cores slow every convolution down many times)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def plugin():
    """Register test-only modules the way a plugin would (``@plugin`` over ``@register_module``), and remove them
    afterwards."""
    from attnsurgeon.catalog.registry import _RUNTIME

    names = []

    def add(cls):
        names.append(cls.__name__)
        return cls

    yield add
    for name in names:
        _RUNTIME.pop(name, None)


@pytest.fixture
def clean_registry():
    """Plugins a test adds leave the catalog (and Ultralytics' namespace) as they found them."""
    from attnsurgeon.catalog import REGISTRY, registry
    from attnsurgeon.sources import named_classes, plugins

    pending = dict(named_classes._PENDING)
    saved = (
        dict(REGISTRY._plugins),
        dict(REGISTRY._importers),
        list(REGISTRY.plugin_warnings),
        dict(plugins._FILES),
        dict(registry._RUNTIME),
        dict(REGISTRY.renamed),
    )
    yield REGISTRY
    REGISTRY._plugins, REGISTRY._importers = saved[0], saved[1]
    REGISTRY.plugin_warnings[:] = saved[2]
    plugins._FILES.clear()
    plugins._FILES.update(saved[3])
    registry._RUNTIME.clear()
    registry._RUNTIME.update(saved[4])
    REGISTRY.renamed.clear()
    REGISTRY.renamed.update(saved[5])
    named_classes._PENDING.clear()
    named_classes._PENDING.update(pending)


@pytest.fixture(autouse=True)
def fresh_import_record():
    """Each test reads ``imported`` as a fresh process would: the record of files run is process-wide, and an xdist
    worker runs many test files (other tests' plugin files showed up in this one's report)."""
    from attnsurgeon.sources import file_import

    file_import._IMPORTED.clear()
    yield
