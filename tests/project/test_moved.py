"""The flat layout's module names still import, as the very modules at their new places (attnsurgeon/_moved.py)."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from attnsurgeon._moved import MOVED

PACKAGE = Path(__file__).resolve().parents[2] / "attnsurgeon"


def test_every_old_name_maps_to_a_module_that_exists_and_no_old_file_is_left():
    for old, new in MOVED.items():
        where = PACKAGE.parent / new.replace(".", "/")
        assert where.with_suffix(".py").is_file() or (where / "__init__.py").is_file(), new  # a module or a package
        assert not (PACKAGE.parent / (old.replace(".", "/") + ".py")).exists(), f"{old} is still a file"


@pytest.mark.parametrize("old", ["attnsurgeon.api", "attnsurgeon.ultra", "attnsurgeon.wrappers", "attnsurgeon.sweeper"])
def test_an_old_name_is_the_same_module(old):
    assert importlib.import_module(old) is importlib.import_module(MOVED[old])


def test_from_import_of_old_names():
    from attnsurgeon.api import insert
    from attnsurgeon.wrappers import IdentityInit  # what checkpoints pickle

    from attnsurgeon.ops.surgery import insert as new_insert
    from attnsurgeon.ultralytics_bridge.wrappers import IdentityInit as NewIdentityInit

    assert insert is new_insert and IdentityInit is NewIdentityInit


def test_a_pickle_naming_the_old_path_loads_the_class():
    from attnsurgeon.ultralytics_bridge.wrappers import IdentityInit

    # protocol 2 global opcode: module and name, as torch.save writes a class reference
    data = b"\x80\x02cattnsurgeon.wrappers\nIdentityInit\nq\x00."
    assert pickle.loads(data) is IdentityInit


def test_an_old_autoload_pth_line_still_registers_in_a_fresh_process():
    # an install from before the move left a .pth that imports attnsurgeon._autoload
    code = (
        "import attnsurgeon._autoload as hook, sys; from ultralytics.nn import tasks; "
        "import attnsurgeon.ultralytics_bridge.autoload as new; print(hook is new, hasattr(tasks, 'SE'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["True", "True"]
