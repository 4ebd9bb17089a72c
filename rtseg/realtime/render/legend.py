"""Class names with their colours, drawn once into a tile and pasted onto each frame."""

from __future__ import annotations

import cv2
import numpy as np

from rtseg.contract import ModelInfo

FONT = cv2.FONT_HERSHEY_SIMPLEX


class Legend:
    """Annotator: pastes a legend of the visible classes at the top-right corner (in place).

    Drawn once into a tile at construction; ``annotate`` only copies it.
    """

    def __init__(self, info: ModelInfo, lut: np.ndarray, visible: np.ndarray, scale: float = 0.5) -> None:
        entries = [(i, name) for i, name in enumerate(info.classes) if visible[i]]
        line = int(22 * scale / 0.5)
        width = 12 + line + max((cv2.getTextSize(n, FONT, scale, 1)[0][0] for _, n in entries), default=0)
        tile = np.full((line * len(entries) + 8, width, 3), 32, np.uint8)
        for row, (index, name) in enumerate(entries):
            y = 4 + row * line
            color = tuple(int(c) for c in lut[index])
            cv2.rectangle(tile, (6, y + 3), (6 + line - 6, y + line - 3), color, -1)
            cv2.putText(tile, name, (10 + line, y + line - 6), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
        self.tile = tile if entries else None

    def annotate(self, image: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        if self.tile is None:
            return image
        th, tw = self.tile.shape[:2]
        h, w = image.shape[:2]
        th, tw = min(th, h), min(tw, w)
        image[:th, w - tw:] = self.tile[:th, :tw]
        return image
