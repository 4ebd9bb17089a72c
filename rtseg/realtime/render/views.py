"""The four ways to show a label map over its frame. Each returns a new image."""

from __future__ import annotations

import cv2
import numpy as np

VIEW_MODES = ("overlay", "mask", "side-by-side", "contours")
_KERNEL = np.ones((3, 3), np.uint8)


def color_mask(labels: np.ndarray, lut: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Colour each pixel by its class (one table gather); hidden classes are black."""
    colors = lut if visible.all() else np.where(visible[:, None], lut, 0).astype(np.uint8)
    return colors[labels]


def overlay(image: np.ndarray, labels: np.ndarray, lut: np.ndarray, visible: np.ndarray,
            alpha: float) -> np.ndarray:
    """Alpha-blend the colour mask over the image; hidden classes show the plain image."""
    blended = cv2.addWeighted(image, 1.0 - alpha, lut[labels], alpha, 0.0)
    if not visible.all():
        np.copyto(blended, image, where=~visible[labels][..., None])
    return blended


def contours(image: np.ndarray, labels: np.ndarray, lut: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Draw class boundaries (2 px) in the class colour over the image."""
    edges = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, _KERNEL) > 0
    edges &= visible[labels]
    out = image.copy()
    out[edges] = lut[labels[edges]]
    return out


def render_view(mode: str, image: np.ndarray, labels: np.ndarray, lut: np.ndarray,
                visible: np.ndarray, alpha: float) -> np.ndarray:
    """Dispatch on ``mode`` (one of :data:`VIEW_MODES`)."""
    if mode == "overlay":
        return overlay(image, labels, lut, visible, alpha)
    if mode == "mask":
        return color_mask(labels, lut, visible)
    if mode == "contours":
        return contours(image, labels, lut, visible)
    if mode == "side-by-side":
        return np.hstack([image, color_mask(labels, lut, visible), overlay(image, labels, lut, visible, alpha)])
    raise ValueError(f"view mode must be one of {VIEW_MODES}, got {mode!r}")
