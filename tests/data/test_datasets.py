"""Dataset readers on fixtures written by the tests (CamVid, mask folders, labelme, COCO)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_factories import labelme_doc, mask_to_runs, write_image, write_mask

from rtseg.data import DatasetError, open_dataset, parse_data_spec
from rtseg.data.rle import decode_counts_string, encode_counts_string, rle_to_mask
from rtseg.errors import RtsegError


def test_camvid_reader(camvid_dir):
    ds = open_dataset(f"camvid:{camvid_dir}", "train")
    assert len(ds) == 2 and len(ds.classes) == 11 and ds.ignore_index == 11
    image, mask = ds[0]
    assert image.shape == (3, 24, 32) and image.dtype == torch.uint8
    assert mask.shape == (24, 32) and set(mask.unique().tolist()) == {3, 8, 11}


def test_mask_folder_infers_classes(mask_dir):
    ds = open_dataset(f"masks:{mask_dir}", "train")
    assert ds.classes == ("class0", "class1", "class2") and ds.ignore_index == 255
    _, mask = ds[1]
    assert mask[0, 0] == 255 and mask[5, 20] == 2


def test_mask_folder_classes_txt(mask_dir):
    (mask_dir / "classes.txt").write_text("bg\nx\ny\nz\n")
    assert open_dataset(str(mask_dir), "train").classes == ("bg", "x", "y", "z")  # kind guessed


def test_labelme_rasterises_shapes_in_order(labelme_dir):
    ds = open_dataset(f"labelme:{labelme_dir}", "train")
    assert ds.classes == ("background", "car", "road")
    _, mask = ds[0]
    assert mask[5, 5] == 0            # background
    assert mask[22, 25] == 2          # road polygon
    assert mask[17, 5] == 1           # car rectangle painted over road
    assert mask[1, 30] == 255         # __ignore__


def test_coco_polygons_and_rle(coco_file):
    ds = open_dataset(f"coco:{coco_file}", "train")
    assert ds.classes == ("background", "road", "car")  # categories sorted by id
    _, mask = ds[0]
    assert mask[15, 15] == 1          # polygon (road)
    assert mask[5, 2] == 2 and mask[12, 2] == 0   # uncompressed RLE: column 2, rows 0..9
    assert mask[21, 31] == 2          # compressed RLE corner
    assert mask[0, 0] == 0


def test_rle_string_round_trip():
    counts = [0, 5, 300, 2, 70000, 1, 3]
    assert decode_counts_string(encode_counts_string(counts)) == counts
    mask = np.zeros((5, 4), bool)
    mask[1:3, 1] = True
    runs = mask_to_runs(mask)
    assert np.array_equal(rle_to_mask({"size": [5, 4], "counts": encode_counts_string(runs)}, 5, 4), mask)


def _bad_image(root: Path) -> str:
    ds = root / "ds"
    (ds / "images").mkdir(parents=True)
    (ds / "images" / "a.png").write_bytes(b"not a png")
    write_mask(ds / "masks" / "a.png", np.zeros((4, 4)))
    return f"masks:{ds}"


def _size_mismatch(root: Path) -> str:
    ds = root / "ds"
    write_image(ds / "images" / "a.png", 24, 32)
    write_mask(ds / "masks" / "a.png", np.zeros((20, 32)))
    return f"masks:{ds}"


def _unknown_mask_label(root: Path) -> str:
    ds = root / "ds"
    write_image(ds / "images" / "a.png", 24, 32)
    mask = np.zeros((24, 32))
    mask[0, 0] = 7
    write_mask(ds / "masks" / "a.png", mask)
    (ds / "classes.txt").write_text("bg\nfg\n")
    return f"masks:{ds}"


def _unknown_labelme_label(root: Path) -> str:
    ds = root / "lm"
    write_image(ds / "a.png")
    (ds / "labels.txt").write_text("__ignore__\n_background_\nroad\n")
    shapes = [{"label": "boat", "points": [[0, 0], [5, 0], [5, 5]], "shape_type": "polygon"}]
    (ds / "a.json").write_text(json.dumps(labelme_doc("a.png", shapes)))
    return f"labelme:{ds}"


def _unknown_coco_category(root: Path) -> str:
    write_image(root / "x.png")
    doc = {"images": [{"id": 1, "file_name": "x.png", "height": 24, "width": 32}],
           "categories": [{"id": 1, "name": "a"}],
           "annotations": [{"id": 9, "image_id": 1, "category_id": 5, "segmentation": []}]}
    (root / "c.json").write_text(json.dumps(doc))
    return f"coco:{root / 'c.json'}"


def _labelme_size_mismatch(root: Path) -> str:
    ds = root / "lm"
    write_image(ds / "a.png", 24, 32)
    (ds / "a.json").write_text(json.dumps(labelme_doc("a.png", [], height=20, width=32)))
    return f"labelme:{ds}"


def _coco_size_mismatch(root: Path) -> str:
    write_image(root / "x.png", 24, 32)
    doc = {"images": [{"id": 1, "file_name": "x.png", "height": 24, "width": 40}],
           "categories": [{"id": 1, "name": "a"}], "annotations": []}
    (root / "c.json").write_text(json.dumps(doc))
    return f"coco:{root / 'c.json'}"


def _missing_list(root: Path) -> str:
    (root / "cv").mkdir()
    return f"camvid:{root / 'cv'}"


@pytest.mark.parametrize("make, message", [
    (_bad_image, r"cannot read image .*a\.png"),
    (_size_mismatch, r"a\.png: mask is 32x20 but image .* is 32x24"),
    (_unknown_mask_label, r"a\.png: unknown label value\(s\) \[7\]"),
    (_unknown_labelme_label, r"a\.json: unknown label 'boat'"),
    (_unknown_coco_category, r"c\.json: annotation 9 has unknown category_id 5"),
    (_labelme_size_mismatch, r"a\.json: annotation says 32x20 but the image is 32x24"),
    (_coco_size_mismatch, r"c\.json \(x\.png\): annotation says 40x24 but the image is 32x24"),
    (_missing_list, r"train\.txt not found"),
])
def test_clear_errors(tmp_path, make, message):
    spec = make(tmp_path)
    with pytest.raises(DatasetError, match=message) as info:
        ds = open_dataset(spec, "train")
        ds[0]
    assert isinstance(info.value, RtsegError) and "\n" not in str(info.value)


def test_unknown_kind_and_missing_path(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        parse_data_spec(f"camvid:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="cannot tell the dataset kind"):
        parse_data_spec(str(tmp_path / "empty"))


def test_splits_joined_with_plus_make_one_dataset(camvid_dir):
    write_image(camvid_dir / "val" / "v0.png", seed=9)
    write_mask(camvid_dir / "valannot" / "v0.png", np.full((24, 32), 5, np.uint8))
    (camvid_dir / "val.txt").write_text("val/v0.png valannot/v0.png\n")
    both = open_dataset(f"camvid:{camvid_dir}", "train+val")
    assert len(both) == 3 and [s.image.name for s in both.samples] == ["f0.png", "f1.png", "v0.png"]
    assert both.classes == open_dataset(f"camvid:{camvid_dir}", "val").classes
    assert (both.load(2)[1] == 5).all()
    with pytest.raises(DatasetError, match="name each split once"):
        open_dataset(f"camvid:{camvid_dir}", "train+train")
    with pytest.raises(DatasetError):
        open_dataset(f"camvid:{camvid_dir}", "train+test")  # no test.txt
