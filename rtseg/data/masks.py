"""Plain image/mask folder pairs matched by file stem."""

from __future__ import annotations

from pathlib import Path

from rtseg.data.base import (
    DEFAULT_IGNORE,
    Sample,
    SegmentationDataset,
    read_classes,
    read_mask,
    split_dir,
)
from rtseg.errors import DatasetError
from rtseg.suffixes import IMAGE_SUFFIXES


def mask_folder(root: Path, split: str, **kwargs) -> SegmentationDataset:
    """``images/`` and ``masks/`` with matching file stems (optionally under ``{split}/``).

    Class names come from ``classes.txt`` (one per line) beside the folders, else from the
    largest label found (``class0..classN``); 255 is ignored.
    """
    base = split_dir(root, split)
    images_dir, masks_dir = base / "images", base / "masks"
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise DatasetError(f"mask-folder dataset needs {d}")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    samples = []
    for image in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        if image.stem not in masks:
            raise DatasetError(f"no mask for image {image} in {masks_dir}")
        samples.append(Sample(image, masks[image.stem]))
    classes = read_classes(root, base)
    if classes is None:
        top = 0
        for s in samples:
            labels = read_mask(s.label)
            top = max(top, int(labels[labels != DEFAULT_IGNORE].max(initial=0)))
        classes = [f"class{i}" for i in range(top + 1)]
    return SegmentationDataset(samples, classes, DEFAULT_IGNORE, name=str(base), **kwargs)
