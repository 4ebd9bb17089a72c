"""The model contract's pre-processing, in one place for the runtime, export and evaluation."""

from __future__ import annotations

import cv2
import numpy as np

from rtseg.contract import ModelInfo


def preprocess(image: np.ndarray, info: ModelInfo, size: tuple[int, int] | None = None) -> np.ndarray:
    """BGR uint8 H x W x 3 -> float32 1 x 3 x h x w, normalised as ``info`` says.

    Resizes (bilinear) to ``size`` (height, width), else ``info.input_size``, else keeps the
    frame size; then scales each channel straight into its NCHW plane as
    ``x / (255 std) - mean / std``, with no colour-conversion or transpose copies.

    Example:
        >>> preprocess(np.zeros((4, 6, 3), np.uint8), ModelInfo(), size=(2, 3)).shape
        (1, 3, 2, 3)
    """
    height, width = size or info.input_size or image.shape[:2]
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (int(width), int(height)), interpolation=cv2.INTER_LINEAR)
    std = np.asarray(info.std, np.float32)
    scale = 1.0 / (255.0 * std)
    shift = np.asarray(info.mean, np.float32) / std
    channels = (2, 1, 0) if info.channel_order == "RGB" else (0, 1, 2)  # frames are BGR
    tensor = np.empty((1, 3, int(height), int(width)), np.float32)
    for plane, channel in enumerate(channels):
        np.multiply(image[:, :, channel], scale[plane], out=tensor[0, plane], casting="unsafe")
        tensor[0, plane] -= shift[plane]
    return tensor
