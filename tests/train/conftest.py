"""A tiny synthetic segmentation set (coloured shapes on noise) written by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from train_helpers import make_shapes_dataset

torch.set_num_threads(1)


@pytest.fixture
def shapes_dir(tmp_path: Path) -> Path:
    return make_shapes_dataset(tmp_path / "shapes")
