"""labelme JSON annotations (polygon, rectangle, circle) rasterised to label maps."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from rtseg.data.base import (
    DEFAULT_IGNORE,
    Sample,
    SegmentationDataset,
    blank_label_map,
    load_json,
    read_classes,
    split_dir,
)
from rtseg.errors import DatasetError

log = logging.getLogger(__name__)


def labelme(root: Path, split: str, **kwargs) -> SegmentationDataset:
    """labelme JSON files (polygon, rectangle, circle shapes) rasterised to label maps.

    Classes: ``labels.txt`` (labelme convention: ``__ignore__`` skipped, ``_background_``
    first) beside the JSON files, else ``background`` plus the sorted labels found.
    Shapes labelled ``__ignore__`` become ignored pixels; later shapes paint over earlier ones.
    """
    base = split_dir(root, split)
    files = sorted(base.glob("*.json"))
    if not files:
        raise DatasetError(f"no labelme .json files in {base}")
    docs = {f: load_json(f) for f in files}
    classes = read_classes(root, base, name="labels.txt")
    if classes is None:
        labels = {s.get("label") for d in docs.values() for s in d.get("shapes", [])} - {"__ignore__"}
        classes = ["background"] + sorted(str(label) for label in labels if label != "background")
    index = {name: i for i, name in enumerate(classes)}
    samples = []
    for path, doc in docs.items():
        if "imagePath" not in doc:
            raise DatasetError(f"{path}: not a labelme file (no 'imagePath')")
        for shape in doc.get("shapes", []):
            label = shape.get("label")
            if label != "__ignore__" and label not in index:
                raise DatasetError(f"{path}: unknown label {label!r}; known: {', '.join(classes)}")
        image = path.parent / doc["imagePath"]
        samples.append(Sample(image, path, _labelme_rasteriser(path, doc, index)))
    return SegmentationDataset(samples, classes, DEFAULT_IGNORE, name=str(base), **kwargs)


def _labelme_rasteriser(path: Path, doc: dict, index: dict[str, int]) -> Callable[[int, int], np.ndarray]:
    def rasterise(height: int, width: int) -> np.ndarray:
        declared = (doc.get("imageHeight", height), doc.get("imageWidth", width))
        mask = blank_label_map(str(path), declared, height, width)
        for shape in doc.get("shapes", []):
            value = DEFAULT_IGNORE if shape["label"] == "__ignore__" else index[shape["label"]]
            points = np.asarray(shape.get("points", []), np.float64)
            kind = shape.get("shape_type") or "polygon"
            if kind == "polygon" and len(points) >= 3:
                cv2.fillPoly(mask, [np.round(points).astype(np.int32)], int(value))
            elif kind == "rectangle" and len(points) == 2:
                (x0, y0), (x1, y1) = np.round(points).astype(int)
                cv2.rectangle(mask, (x0, y0), (x1, y1), int(value), thickness=-1)
            elif kind == "circle" and len(points) == 2:
                centre, edge = points
                radius = int(round(float(np.hypot(*(edge - centre)))))
                cv2.circle(mask, tuple(int(v) for v in np.round(centre)), radius, int(value), thickness=-1)
            else:
                log.debug("%s: skipping %s shape with %d points", path, kind, len(points))
        return mask

    return rasterise
