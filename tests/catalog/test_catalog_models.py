"""Every registry entry inside real models, with the check ``attnsurgeon check-module`` runs
(attnsurgeon.checks.contract.check_in_model): after layers 4, 6 and 8 of yolo11n and yolov8n, at scales n and s, the
model
builds, runs at 640x640 and both rectangular sizes, and trains one step with every inserted parameter learning."""

from __future__ import annotations

import pytest

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.checks import contract

NAMES = REGISTRY.names()


@pytest.mark.slow
@pytest.mark.parametrize("scale", contract.SCALES)
@pytest.mark.parametrize("model", ["yolo11n.yaml", "yolov8n.yaml"])
@pytest.mark.parametrize("name", NAMES)
def test_module_in_model(name, model, scale):
    check = contract.check_in_model(REGISTRY.get(name), scale, model)
    assert check.ok, check.detail
