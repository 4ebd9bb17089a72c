"""The real CamVid copy under ../shared (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtseg.data import open_dataset

CAMVID = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "camvid"


@pytest.mark.skipif(not (CAMVID / "val.txt").is_file(),
                    reason="CamVid not found at ../shared/data/camvid (relative to the repo root)")
def test_camvid_val_split_reads():
    ds = open_dataset(f"camvid:{CAMVID}", "val")
    assert len(ds) == 101 and ds.ignore_index == 11
    image, mask = ds.load(0)
    assert image.shape == (360, 480, 3) and mask.shape == (360, 480) and mask.max() <= 11
