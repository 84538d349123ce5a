"""Facts defined once (issue 21): where two copies used to give different answers, the one left gives the behaviour
a user sees everywhere."""

from __future__ import annotations

import importlib

import pytest

from attnsurgeon import errors
from attnsurgeon.catalog import name_rules
from attnsurgeon.checks import verify


def test_first_line_is_one_function_everywhere():
    from attnsurgeon.catalog import entry_points
    from attnsurgeon.checks import contract
    from attnsurgeon.ops import pipeline, profile
    from attnsurgeon.sweeps import cost as sweep_cost
    from attnsurgeon.sweeps import runner as sweeper
    from attnsurgeon.ultralytics_bridge import ultra

    for module in (ultra, entry_points, contract, profile, sweep_cost, sweeper, verify):
        assert module.first_line is errors.first_line, module.__name__
    assert not hasattr(pipeline, "first_line") and pipeline.errors is errors


def test_first_line_behaviour():
    # the copies disagreed here: one kept Ultralytics' "ERROR ❌" prefix and no class name, the other neither
    exc = RuntimeError("ERROR ❌ weights do not fit\n  more detail")
    assert errors.first_line(exc) == "RuntimeError: weights do not fit"
    assert errors.first_line(exc, typed=False) == "weights do not fit"
    assert errors.first_line(KeyError()) == "KeyError"
    assert errors.first_line(ValueError("  "), typed=False) == "ValueError"  # no text: the class, never ""
    # a failing layer's message (verify) goes through the same rule
    assert verify.failure_text({}, exc, {}) == "RuntimeError: weights do not fit"


def test_ultralytics_names_are_exactly_what_parse_model_can_resolve():
    """The one reader of tasks.py. Oracle: parse_model looks a row's module up with ``globals()[name]`` in
    ultralytics.nn.tasks, so a name is known iff it is an attribute of that module once imported. The old second
    reader (every ``from ... import`` anywhere in the file) also took imports made inside functions (CLIP,
    attempt_download_asset), which a YAML row cannot use; the other lacked the model classes."""

    tasks = importlib.import_module("ultralytics.nn.tasks")
    names = name_rules.ultralytics_names()
    assert {"Conv", "C3k2", "Detect", "TorchVision", "Index", "DetectionModel", "parse_model"} <= names
    assert not names & {"CLIP", "attempt_download_asset", "build_text_model"}
    missing = sorted(n for n in names if not hasattr(tasks, n))
    assert missing == [], missing


@pytest.mark.parametrize("name", ["CLIP", "attempt_download_asset"])
def test_adopt_does_not_take_a_function_local_import_for_a_module(name):

    assert name not in name_rules.ultralytics_names()
