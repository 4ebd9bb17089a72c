"""The weight-free engine: Otsu's threshold splits a frame into foreground and background."""

from __future__ import annotations

import time

import cv2
import numpy as np

from rtseg.contract import ModelInfo
from rtseg.realtime.frame import Frame


class OtsuEngine:
    """Foreground/background by Otsu's threshold on a blurred grey image (no weights).

    The smaller of the two regions is called foreground (label 1).
    """

    provider = "opencv"
    description = "Otsu foreground/background thresholding (no weights)"

    def __init__(self) -> None:
        self.info = ModelInfo(name="otsu", classes=("background", "foreground"),
                              palette=((0, 0, 0), (255, 64, 64)), output="labels",
                              source="built-in Otsu thresholding", license="Apache-2.0")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        grey = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (5, 5), 0)
        _, mask = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        if np.count_nonzero(mask) * 2 > mask.size:
            mask = 1 - mask
        return mask

    def segment(self, frame: Frame) -> None:
        t0 = time.perf_counter()
        frame.labels = self(frame.image)
        frame.timings["infer"] = time.perf_counter() - t0
