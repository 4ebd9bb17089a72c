"""COCO instance JSON (polygons and RLE) rasterised to semantic label maps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from rtseg.data.base import DEFAULT_IGNORE, Sample, SegmentationDataset, blank_label_map, load_json
from rtseg.data.rle import rle_to_mask
from rtseg.errors import DatasetError


def coco(path: Path, split: str, **kwargs) -> SegmentationDataset:
    """COCO instance JSON (polygons and RLE) rasterised to semantic label maps.

    ``path`` is the JSON file, or a folder holding ``{split}.json`` or
    ``annotations/instances_{split}*.json``. Classes: ``background`` (0) then categories
    sorted by id. Images are looked up beside the JSON, in ``images/`` there, or in
    ``../images`` and ``../{split}``.
    """
    ann_file = _coco_file(path, split)
    doc = load_json(ann_file)
    for key in ("images", "annotations", "categories"):
        if key not in doc:
            raise DatasetError(f"{ann_file}: not a COCO file (no {key!r})")
    cats = sorted(doc["categories"], key=lambda c: c["id"])
    classes = ["background"] + [str(c["name"]) for c in cats]
    cat_index = {c["id"]: i + 1 for i, c in enumerate(cats)}
    per_image: dict[int, list[dict]] = {}
    for ann in doc["annotations"]:
        if ann.get("category_id") not in cat_index:
            raise DatasetError(f"{ann_file}: annotation {ann.get('id')} has unknown category_id "
                               f"{ann.get('category_id')!r}")
        per_image.setdefault(ann["image_id"], []).append(ann)
    samples = []
    for info in doc["images"]:
        image = _find_image(ann_file, info["file_name"], split)
        anns = per_image.get(info["id"], [])
        samples.append(Sample(image, ann_file, _coco_rasteriser(ann_file, info, anns, cat_index)))
    return SegmentationDataset(samples, classes, DEFAULT_IGNORE, name=str(ann_file), **kwargs)


def _coco_file(path: Path, split: str) -> Path:
    if path.is_file():
        return path
    candidates = [path / f"{split}.json", *sorted((path / "annotations").glob(f"instances_{split}*.json"))]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DatasetError(f"no COCO JSON for split {split!r} in {path} (looked for {split}.json and "
                       f"annotations/instances_{split}*.json)")


def _find_image(ann_file: Path, file_name: str, split: str) -> Path:
    base = ann_file.parent
    for folder in (base, base / "images", base.parent / "images", base.parent / split):
        if (folder / file_name).is_file():
            return folder / file_name
    return base / file_name  # reading it raises a DatasetError naming this path


def _coco_rasteriser(ann_file: Path, info: dict, anns: list[dict],
                     cat_index: dict[int, int]) -> Callable[[int, int], np.ndarray]:
    def rasterise(height: int, width: int) -> np.ndarray:
        declared = (info.get("height", height), info.get("width", width))
        mask = blank_label_map(f"{ann_file} ({info['file_name']})", declared, height, width)
        for ann in anns:
            value = cat_index[ann["category_id"]]
            seg = ann.get("segmentation")
            if isinstance(seg, list):
                polys = [np.round(np.asarray(p, np.float64).reshape(-1, 2)).astype(np.int32)
                         for p in seg if len(p) >= 6]
                if polys:
                    cv2.fillPoly(mask, polys, int(value))
            elif isinstance(seg, dict):
                try:
                    mask[rle_to_mask(seg, height, width)] = value
                except (ValueError, KeyError) as exc:
                    raise DatasetError(f"{ann_file}: annotation {ann.get('id')}: bad RLE: {exc}") from None
        return mask

    return rasterise
