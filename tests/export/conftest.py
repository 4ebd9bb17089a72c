"""Fixtures for the export tests: tiny modules, frames (real when ../shared exists), helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
from torch import nn  # noqa: E402

from export_helpers import ROAD_CLIP, TinySeg  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_frames() -> list[np.ndarray]:
    """Four structured 180x240 BGR frames (no shared data needed)."""
    from rtseg.export.frames import synthetic_frames as make

    return make(4, 180, 240, seed=1)


@pytest.fixture(scope="session")
def road_frames() -> list[np.ndarray]:
    """Frames of the shared road clip (skips when ../shared is absent): 24 frames, stride 9."""
    if not ROAD_CLIP.is_file():
        pytest.skip(f"shared road clip not found at {ROAD_CLIP}")
    from rtseg.export.frames import read_frames

    return read_frames(ROAD_CLIP, limit=24, stride=9)


@pytest.fixture(scope="session")
def frames(request) -> list[np.ndarray]:
    """Real road frames when available, else synthetic ones (the core suite needs no shared data)."""
    if ROAD_CLIP.is_file():
        return request.getfixturevalue("road_frames")[:4]
    return request.getfixturevalue("synthetic_frames")


@pytest.fixture()
def tiny() -> nn.Module:
    torch.manual_seed(0)
    return TinySeg(5).eval()


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    """An empty RTSEG_CACHE for the test."""
    monkeypatch.setenv("RTSEG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
