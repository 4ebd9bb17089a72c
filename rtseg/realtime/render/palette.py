"""Class colours as lookup tables: one gather per frame colours a whole label map."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from rtseg.contract import ModelInfo, default_palette
from rtseg.errors import RtsegError


def color_lut(info: ModelInfo) -> np.ndarray:
    """256 x 3 uint8 BGR table: row i is the colour of label i (unknown labels get defaults)."""
    lut = np.array(default_palette(256), dtype=np.uint8)
    if info.palette:
        lut[: len(info.palette)] = np.array(info.palette, dtype=np.uint8)
    return np.ascontiguousarray(lut[:, ::-1])  # RGB -> BGR


def resolve_classes(info: ModelInfo, names: Iterable[str]) -> list[int]:
    """Class names or indices -> indices; unknown names are an error listing the valid ones."""
    indices = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name.isdigit():
            index = int(name)
            if not 0 <= index < 256:
                raise RtsegError(f"class index {index} out of range 0..255")
        elif name in info.classes:
            index = info.classes.index(name)
        else:
            valid = ", ".join(info.classes) or "(model declares no class names; use indices)"
            raise RtsegError(f"unknown class {name!r} for model {info.name}; classes: {valid}")
        indices.append(index)
    return indices


def visible_lut(show: list[int] | None = None, hide: list[int] | None = None) -> np.ndarray:
    """256-entry bool table: which labels are drawn (``show`` keeps only those, ``hide`` removes)."""
    visible = np.zeros(256, bool) if show else np.ones(256, bool)
    if show:
        visible[show] = True
    if hide:
        visible[hide] = False
    return visible
