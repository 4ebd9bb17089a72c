"""Helpers shared by the training tests (imported by name: a unique module name, unlike ``conftest``,
which clashes with tests/export/conftest.py when both folders run together)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_shapes_dataset(root: Path, count: int = 4, size: int = 64, seed: int = 0) -> Path:
    """``images/`` + ``masks/``: class 1 = red-ish disc, class 2 = blue-ish box, 0 = background."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        image = rng.integers(60, 140, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        cx, cy = (int(v) for v in rng.integers(16, 48, 2))
        r = int(rng.integers(6, 14))
        cv2.circle(mask, (cx, cy), r, 1, -1)
        x0, y0 = (int(v) for v in rng.integers(0, size - 20, 2))
        cv2.rectangle(mask, (x0, y0), (x0 + 18, y0 + 12), 2, -1)
        image[mask == 1] = (40, 40, 200)   # BGR: red
        image[mask == 2] = (200, 60, 40)   # BGR: blue
        image = np.clip(image.astype(int) + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"s{i}.png"), image)
        cv2.imwrite(str(root / "masks" / f"s{i}.png"), mask)
    (root / "classes.txt").write_text("background\nred\nblue\n")
    return root
