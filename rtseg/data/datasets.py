"""Open a dataset by ``KIND:PATH``: CamVid lists, image/mask folders, labelme or COCO JSON.

Each format has its own module; all return a :class:`rtseg.data.base.SegmentationDataset`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rtseg.data import KINDS
from rtseg.data.base import SegmentationDataset
from rtseg.data.camvid import camvid
from rtseg.data.coco import coco
from rtseg.data.labelme import labelme
from rtseg.data.masks import mask_folder
from rtseg.errors import DatasetError

__all__ = ["KINDS", "READERS", "DatasetError", "SegmentationDataset", "open_dataset", "parse_data_spec"]

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
    """Open a dataset from a ``KIND:PATH`` spec for one split (``train``/``val``/...), or for
    several joined with ``+`` (``train+val``: one dataset holding both, in that order)."""
    kind, path = parse_data_spec(spec)
    names = split.split("+")
    if len(names) == 1:
        return READERS[kind](path, split, transforms=transforms, cache=cache)
    if len(set(names)) != len(names) or not all(names):
        raise DatasetError(f"split {split!r}: name each split once, joined with '+' (e.g. train+val)")
    parts = [READERS[kind](path, name, cache=cache) for name in names]
    first = parts[0]
    for name, part in zip(names[1:], parts[1:]):
        if (part.classes, part.ignore_index) != (first.classes, first.ignore_index):
            raise DatasetError(f"split {split!r}: {name} has other classes or another ignored label than {names[0]}")
    return SegmentationDataset([s for part in parts for s in part.samples], first.classes, first.ignore_index,
                               transforms=transforms, cache=cache, name=f"{first.name} ({split})")


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
