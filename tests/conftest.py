from __future__ import annotations

import os
from pathlib import Path

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


def module_meta(**extra):
    """register_module's paper fields for a module a test defines in place (``@register_module(**module_meta())``)."""
    return dict(
        category="spatial",
        paper="test",
        venue="test",
        year=2024,
        link="https://example.org",
        reference="https://example.org",
        **extra,
    )


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


PLUGIN_HEADER = '''"""A plugin written by a test."""

import torch
from attnsurgeon.catalog import register_module
from attnsurgeon.catalog.base import AttentionModule

'''
PLUGIN_META = (
    'category="channel", paper="Squeeze-and-Excitation Networks", venue="CVPR", year=2018, '
    'link="https://arxiv.org/abs/1709.01507", reference="https://github.com/hujie-frank/SENet"'
)


def gate_plugin(
    name: str = "TestGate", extra: str = "", init: str = "c1: int, reduction: int = 4", body: str = ""
) -> str:
    """Source of a plugin file registering one channel-gate module (``body`` replaces the forward's return)."""
    return (
        PLUGIN_HEADER
        + f'''
@register_module({PLUGIN_META}{extra})
class {name}(AttentionModule):
    """A channel gate from pooled features."""

    def __init__(self, {init}) -> None:
        super().__init__()
        c1 = locals().get("c1", 8)
        self.fc = torch.nn.Conv2d(c1, c1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        {body or "return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))"}
'''
    )


# --------------------------------------------------------------------------------------------------------------------
# Golden files


def check_golden(*pairs: tuple[Path, str | bytes]) -> None:
    """Compare each output with its golden file; with ``ATTNSURGEON_UPDATE_GOLDEN`` set, write them all and skip.

    Updating must not pass: a test that writes its golden and compares it with itself cannot fail, so a run that
    updates says so (skipped) and the next plain run is the one that checks. Structural asserts belong before the call,
    so they run in both modes.
    """
    if os.environ.get("ATTNSURGEON_UPDATE_GOLDEN"):
        for path, actual in pairs:
            path.write_bytes(actual if isinstance(actual, bytes) else actual.encode())
        pytest.skip(f"ATTNSURGEON_UPDATE_GOLDEN: wrote {', '.join(p.name for p, _ in pairs)}")
    for path, actual in pairs:
        expected = path.read_bytes() if isinstance(actual, bytes) else path.read_text()
        assert actual == expected, f"{path.name} differs (ATTNSURGEON_UPDATE_GOLDEN=1 rewrites it)"


@pytest.fixture
def golden():
    """:func:`check_golden`, for a test that takes ``golden`` as an argument."""
    return check_golden


@pytest.fixture(autouse=True)
def fresh_import_record():
    """Each test reads ``imported`` as a fresh process would: the record of files run is process-wide, and an xdist
    worker runs many test files (other tests' plugin files showed up in this one's report)."""
    from attnsurgeon.sources import file_import

    file_import._IMPORTED.clear()
    yield
