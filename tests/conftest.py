from __future__ import annotations

import os

import pytest

os.environ.setdefault("YOLO_VERBOSE", "False")
os.environ.setdefault("YOLO_OFFLINE", "1")


@pytest.fixture(scope="session")
def torch_threads():
    import torch

    torch.manual_seed(0)
    return torch.get_num_threads()
