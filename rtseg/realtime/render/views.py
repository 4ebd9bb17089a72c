"""The four ways to show a label map over its frame, as annotators. Each returns a new image."""

from __future__ import annotations

import cv2
import numpy as np

from rtseg.realtime.controls import VIEW_MODES
from rtseg.realtime.render.base import Annotator

__all__ = ["VIEW_MODES", "ContoursView", "MaskView", "OverlayView", "SideBySideView", "colorize", "make_view"]

_KERNEL = np.ones((3, 3), np.uint8)


def colorize(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """H x W labels -> H x W x 3 colours through a 256-entry table (cv2.LUT: ~7x numpy indexing)."""
    return cv2.LUT(cv2.merge((labels, labels, labels)), lut.reshape(256, 1, 3))


class MaskView:
    """Each pixel in its class colour; hidden classes black. Returns a new image."""

    def __init__(self, lut: np.ndarray, visible: np.ndarray) -> None:
        self.colors = lut if visible.all() else np.where(visible[:, None], lut, 0).astype(np.uint8)

    def annotate(self, image: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return colorize(labels, self.colors)


class OverlayView:
    """The colour mask alpha-blended over the image; hidden classes show the plain image.
    Returns a new image."""

    def __init__(self, lut: np.ndarray, visible: np.ndarray, alpha: float) -> None:
        self.lut, self.alpha = lut, alpha
        self.hidden = None if visible.all() else np.where(visible, 0, 255).astype(np.uint8)

    def annotate(self, image: np.ndarray, labels: np.ndarray) -> np.ndarray:
        blended = cv2.addWeighted(image, 1.0 - self.alpha, colorize(labels, self.lut), self.alpha, 0.0)
        if self.hidden is not None:
            cv2.copyTo(image, cv2.LUT(labels, self.hidden), blended)
        return blended


class ContoursView:
    """Class boundaries (2 px) in the class colour over the image. Returns a new image."""

    def __init__(self, lut: np.ndarray, visible: np.ndarray) -> None:
        self.lut, self.visible = lut, visible

    def annotate(self, image: np.ndarray, labels: np.ndarray) -> np.ndarray:
        edges = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, _KERNEL) > 0
        edges &= self.visible[labels]
        out = image.copy()
        out[edges] = self.lut[labels[edges]]  # only boundary pixels: a small gather
        return out


class SideBySideView:
    """Image, colour mask and overlay next to each other (3x as wide). Returns a new image."""

    def __init__(self, lut: np.ndarray, visible: np.ndarray, alpha: float) -> None:
        self.mask, self.overlay = MaskView(lut, visible), OverlayView(lut, visible, alpha)

    def annotate(self, image: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.hstack([image, self.mask.annotate(image, labels), self.overlay.annotate(image, labels)])


def make_view(mode: str, lut: np.ndarray, visible: np.ndarray, alpha: float) -> Annotator:
    """The view annotator for ``mode`` (one of :data:`VIEW_MODES`)."""
    if mode == "overlay":
        return OverlayView(lut, visible, alpha)
    if mode == "mask":
        return MaskView(lut, visible)
    if mode == "contours":
        return ContoursView(lut, visible)
    if mode == "side-by-side":
        return SideBySideView(lut, visible, alpha)
    raise ValueError(f"view mode must be one of {', '.join(VIEW_MODES)}, got {mode!r}")
