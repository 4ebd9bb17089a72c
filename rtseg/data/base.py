"""What every dataset reader returns: checked image/label pairs as a torch Dataset.

Items are ``(tv_tensors.Image uint8 (3, H, W), tv_tensors.Mask int64 (H, W))`` after optional
joint transforms. Labels are ``0..len(classes)-1``; ``ignore_index`` marks pixels left out of
the loss and the metrics (CamVid: 11 = void; other formats: 255).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image as PILImage
from torchvision import tv_tensors

from rtseg.errors import DatasetError

log = logging.getLogger(__name__)

DEFAULT_IGNORE = 255


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


def blank_label_map(source: str, declared: tuple[int, int], height: int, width: int) -> np.ndarray:
    """Zeros of the image's size, after checking the (height, width) an annotation file declares."""
    if tuple(declared) != (height, width):
        raise DatasetError(f"{source}: annotation says {declared[1]}x{declared[0]} but the image is {width}x{height}")
    return np.zeros((height, width), np.uint8)


def split_dir(root: Path, split: str) -> Path:
    """``root/split`` when it exists, else ``root`` itself (with a warning)."""
    if (root / split).is_dir():
        return root / split
    log.warning("%s has no %s/ folder: using the whole folder for the %s split", root, split, split)
    return root


def read_classes(root: Path, base: Path, name: str = "classes.txt") -> list[str] | None:
    """Class names from ``name`` in ``base`` or ``root`` (one per line), or None."""
    for folder in (base, root):
        path = folder / name
        if path.is_file():
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
            names = [n for n in names if n != "__ignore__"]
            if not names:
                raise DatasetError(f"{path}: no class names")
            return names
    return None


def load_json(path: Path) -> dict:
    """A JSON object from ``path``; :class:`DatasetError` naming the file otherwise."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read JSON {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    return doc
