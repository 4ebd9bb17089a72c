"""The four ways to show a label map over its frame. Each returns a new image."""

from __future__ import annotations

import cv2
import numpy as np

VIEW_MODES = ("overlay", "mask", "side-by-side", "contours")
_KERNEL = np.ones((3, 3), np.uint8)


def colorize(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """H x W labels -> H x W x 3 colours through a 256-entry table (cv2.LUT: ~7x numpy indexing)."""
    return cv2.LUT(cv2.merge((labels, labels, labels)), lut.reshape(256, 1, 3))


def color_mask(labels: np.ndarray, lut: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Colour each pixel by its class; hidden classes are black."""
    colors = lut if visible.all() else np.where(visible[:, None], lut, 0).astype(np.uint8)
    return colorize(labels, colors)


def overlay(image: np.ndarray, labels: np.ndarray, lut: np.ndarray, visible: np.ndarray,
            alpha: float) -> np.ndarray:
    """Alpha-blend the colour mask over the image; hidden classes show the plain image."""
    blended = cv2.addWeighted(image, 1.0 - alpha, colorize(labels, lut), alpha, 0.0)
    if not visible.all():
        hidden = cv2.LUT(labels, np.where(visible, 0, 255).astype(np.uint8))
        cv2.copyTo(image, hidden, blended)
    return blended


def contours(image: np.ndarray, labels: np.ndarray, lut: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Draw class boundaries (2 px) in the class colour over the image."""
    edges = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, _KERNEL) > 0
    edges &= visible[labels]
    out = image.copy()
    out[edges] = lut[labels[edges]]  # only boundary pixels: a small gather
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
