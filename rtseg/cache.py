"""Where rtseg keeps downloaded weights and exported models."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "RTSEG_CACHE"


def cache_dir() -> Path:
    """The cache folder: ``$RTSEG_CACHE`` when set, else ``~/.cache/rtseg`` (not created here)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rtseg"


def weights_dir() -> Path:
    """Folder for downloaded weight files."""
    return cache_dir() / "weights"


def models_dir() -> Path:
    """Folder for exported ONNX models (``rtseg export`` writes here by default)."""
    return cache_dir() / "models"
