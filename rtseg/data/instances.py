"""Instance annotations for ``rtseg train --task instance``: labelme polygons -> COCO -> Mask R-CNN targets.

labelme folders are converted to one COCO document (:func:`labelme_to_coco`: one object per
shape, shapes sharing a ``group_id`` are one object); a COCO JSON file is read as it is. The
COCO document is then the one format: :class:`InstanceDataset` rasterises each object's
polygons (or RLE) into a mask and gives torchvision's detection targets, and the evaluation
compares predictions with the same document (mask AP, :mod:`rtseg.train.instance`).
"""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import torch

from rtseg.data.base import load_json, read_classes, read_rgb
from rtseg.data.coco import _coco_file, _find_image
from rtseg.data.datasets import parse_data_spec
from rtseg.data.rle import rle_to_mask
from rtseg.errors import DatasetError


def shape_polygon(shape: dict) -> np.ndarray | None:
    """A labelme shape (polygon, rectangle, circle) as an N x 2 polygon, or None for other kinds."""
    points = np.asarray(shape.get("points", []), np.float64)
    kind = shape.get("shape_type") or "polygon"
    if kind == "polygon" and len(points) >= 3:
        return points
    if kind == "rectangle" and len(points) == 2:
        (x0, y0), (x1, y1) = points
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    if kind == "circle" and len(points) == 2:
        centre, edge = points
        radius = float(np.hypot(*(edge - centre)))
        angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        return centre + radius * np.stack([np.cos(angles), np.sin(angles)], 1)
    return None


def labelme_to_coco(folder: str | Path, classes: list[str] | None = None) -> dict:
    """All labelme ``*.json`` files of ``folder`` -> a COCO instance document (polygons, boxes, areas).

    Categories: ``classes`` (background left out), else ``labels.txt`` beside the files, else
    the sorted labels found. ``__ignore__`` shapes are left out.

    Example:
        >>> doc = labelme_to_coco("annotated/")  # doctest: +SKIP
        >>> [c["name"] for c in doc["categories"]], len(doc["annotations"])  # doctest: +SKIP
        (['ball', 'box'], 14)
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DatasetError(f"no labelme .json files in {folder}")
    docs = {f: load_json(f) for f in files}
    if classes is None:
        declared = read_classes(folder, folder, name="labels.txt")
        if declared is not None:
            classes = [c for c in declared if c not in ("_background_", "background", "__background__")]
        else:
            found = {str(s.get("label")) for d in docs.values() for s in d.get("shapes", [])}
            classes = sorted(found - {"__ignore__", "background", "_background_"})
    category = {name: i + 1 for i, name in enumerate(classes)}
    images, annotations = [], []
    for image_id, (path, doc) in enumerate(docs.items(), start=1):
        if "imagePath" not in doc:
            raise DatasetError(f"{path}: not a labelme file (no 'imagePath')")
        image_path = (path.parent / doc["imagePath"]).resolve()
        height, width = doc.get("imageHeight"), doc.get("imageWidth")
        if not (height and width):  # the evaluation needs every image's size
            height, width = read_rgb(image_path).shape[:2]
        images.append({"id": image_id, "file_name": str(image_path), "height": int(height), "width": int(width)})
        objects: dict[object, list[dict]] = {}
        for k, shape in enumerate(doc.get("shapes", [])):
            label = shape.get("label")
            if label == "__ignore__":
                continue
            if label not in category:
                raise DatasetError(f"{path}: unknown label {label!r}; known: {', '.join(classes)}")
            group = shape.get("group_id")
            objects.setdefault((label, group) if group is not None else (label, None, k), []).append(shape)
        for key, shapes in objects.items():
            polygons = [p for p in (shape_polygon(s) for s in shapes) if p is not None]
            if not polygons:
                continue
            allpts = np.concatenate(polygons)
            x0, y0 = allpts.min(0)
            x1, y1 = allpts.max(0)
            area = float(sum(abs(cv2.contourArea(p.astype(np.float32))) for p in polygons))
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category[key[0]],
                                "segmentation": [p.ravel().round(2).tolist() for p in polygons],
                                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                                "area": area, "iscrowd": 0})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": i, "name": n} for n, i in category.items()]}


def read_instance_data(spec: str, split: str = "train") -> dict:
    """``labelme:FOLDER`` or ``coco:FILE.json`` (or a bare path) -> a COCO document with
    absolute image paths; a labelme folder with a ``split`` subfolder uses that."""
    kind, path = parse_data_spec(spec)
    if kind == "labelme":
        folder = path / split if (path / split).is_dir() else path
        return labelme_to_coco(folder)
    if kind == "coco":
        ann_file = _coco_file(path, split)
        doc = load_json(ann_file)
        for key in ("images", "annotations", "categories"):
            if key not in doc:
                raise DatasetError(f"{ann_file}: not a COCO file (no {key!r})")
        doc = dict(doc, images=[dict(i, file_name=str(_find_image(ann_file, i["file_name"], split)))
                                for i in doc["images"]])
        return doc
    raise DatasetError(f"--task instance reads labelme or COCO annotations, not {kind!r} ({spec})")


def split_holdout(doc: dict, fraction: float, seed: int = 0) -> tuple[dict, dict]:
    """Split a COCO document's images into (train, held out) documents; at least one image each.

    Raises:
        DatasetError: fewer than two images.
    """
    ids = [i["id"] for i in doc["images"]]
    if len(ids) < 2:
        raise DatasetError(f"need at least 2 annotated images to hold some out for evaluation, got {len(ids)}")
    random.Random(seed).shuffle(ids)
    count = min(len(ids) - 1, max(1, int(round(fraction * len(ids)))))
    held = set(ids[:count])
    return _subset(doc, set(ids) - held), _subset(doc, held)


def _subset(doc: dict, ids: set[int]) -> dict:
    return dict(doc, images=[i for i in doc["images"] if i["id"] in ids],
                annotations=[a for a in doc["annotations"] if a["image_id"] in ids])


def object_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """One COCO annotation's pixels (polygons or RLE) as a uint8 H x W mask."""
    seg = ann.get("segmentation")
    mask = np.zeros((height, width), np.uint8)
    if isinstance(seg, list):
        polys = [np.round(np.asarray(p, np.float64).reshape(-1, 2)).astype(np.int32) for p in seg if len(p) >= 6]
        if polys:
            cv2.fillPoly(mask, polys, 1)
    elif isinstance(seg, dict):
        mask[rle_to_mask(seg, height, width)] = 1
    return mask


class InstanceDataset(torch.utils.data.Dataset):
    """A COCO document as Mask R-CNN samples: (float RGB 3 x H x W in 0..1, target dict).

    The target has ``boxes`` (N x 4, x0 y0 x1 y1 from the mask), ``labels`` (N), ``masks``
    (N x H x W uint8) and ``image_id``. ``flip`` mirrors half of the samples (training).
    Objects whose mask is empty at the image's size are skipped.
    """

    def __init__(self, doc: dict, flip: bool = False) -> None:
        self.doc, self.flip = doc, flip
        self.images = list(doc["images"])
        if not self.images:
            raise DatasetError("no images in the annotations")
        self.by_image: dict[int, list[dict]] = {}
        for ann in doc["annotations"]:
            self.by_image.setdefault(ann["image_id"], []).append(ann)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        info = self.images[index]
        image = read_rgb(Path(info["file_name"]))
        height, width = image.shape[:2]
        masks, labels = [], []
        for ann in self.by_image.get(info["id"], []):
            if ann.get("iscrowd"):
                continue
            mask = object_mask(ann, height, width)
            if mask.any():
                masks.append(mask)
                labels.append(int(ann["category_id"]))
        masks_arr = np.stack(masks) if masks else np.zeros((0, height, width), np.uint8)
        if self.flip and random.random() < 0.5:
            image, masks_arr = image[:, ::-1], masks_arr[:, :, ::-1]
        boxes = [_mask_box(m) for m in masks_arr]
        target = {"boxes": torch.tensor(np.array(boxes, np.float32).reshape(-1, 4)),
                  "labels": torch.tensor(labels, dtype=torch.int64),
                  "masks": torch.from_numpy(np.ascontiguousarray(masks_arr)),
                  "image_id": int(info["id"])}
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0
        return tensor, target


def _mask_box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def collate(batch):
    """Lists of images and targets (detection models take lists)."""
    return tuple(zip(*batch))
