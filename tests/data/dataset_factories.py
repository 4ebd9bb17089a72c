"""Writers for dataset-test fixtures: tiny images, masks, labelme documents, COCO runs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_image(path: Path, height: int = 24, width: int = 32, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    return path


def write_mask(path: Path, mask: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), mask.astype(np.uint8))
    return path


def mask_to_runs(mask: np.ndarray) -> list[int]:
    """COCO run lengths (column-major, starting with a zeros run) of a bool mask."""
    runs, current, n = [], False, 0
    for value in mask.T.ravel():
        if bool(value) != current:
            runs.append(n)
            current, n = bool(value), 0
        n += 1
    runs.append(n)
    return runs


def labelme_doc(image_name: str, shapes: list[dict], height: int = 24, width: int = 32) -> dict:
    return {"version": "5.0.1", "flags": {}, "shapes": shapes, "imagePath": image_name,
            "imageData": None, "imageHeight": height, "imageWidth": width}
