"""Datasets (``KIND:PATH``) and joint transforms for training and evaluation.

Importing this package needs no torch; the readers and transforms load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from rtseg.errors import DatasetError

KINDS = ("camvid", "masks", "labelme", "coco")
_LAZY = {
    "SegmentationDataset": "rtseg.data.base",
    "open_dataset": "rtseg.data.datasets",
    "parse_data_spec": "rtseg.data.datasets",
    "EvalPreset": "rtseg.data.transforms",
    "TrainPreset": "rtseg.data.transforms",
}
__all__ = ["KINDS", "DatasetError", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rtseg.data' has no attribute {name!r}")
