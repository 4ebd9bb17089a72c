"""``rtseg train --task instance``: labelme polygons -> COCO -> a 2-epoch Mask R-CNN fine-tune evaluated by
mask AP on held-out images, on a tiny labelme set written here."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pycocotools")

from rtseg.cli import main  # noqa: E402
from rtseg.data.instances import InstanceDataset, labelme_to_coco, split_holdout  # noqa: E402


def make_labelme(folder: Path, count: int = 6, size: tuple[int, int] = (96, 128), seed: int = 0) -> Path:
    """Each image: a red box (rectangle shape), a yellow ball (circle shape) and a two-part green
    polygon object (two shapes sharing a group_id)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(count):
        image = rng.integers(90, 140, (*size, 3)).astype(np.uint8)
        x, y = (int(v) for v in rng.integers(4, 40, 2))
        cv2.rectangle(image, (x, y), (x + 28, y + 22), (40, 40, 220), -1)
        bx, by = int(rng.integers(70, 100)), int(rng.integers(16, 40))
        cv2.circle(image, (bx, by), 12, (30, 200, 220), -1)
        part1 = [[10, 70], [40, 70], [40, 90], [10, 90]]
        part2 = [[50, 72], [70, 72], [60, 90]]
        for part in (part1, part2):
            cv2.fillPoly(image, [np.array(part, np.int32)], (40, 180, 40))
        cv2.imwrite(str(folder / f"im{i}.png"), image)
        shapes = [{"label": "box", "points": [[x, y], [x + 28, y + 22]], "shape_type": "rectangle"},
                  {"label": "ball", "points": [[bx, by], [bx + 12, by]], "shape_type": "circle"},
                  {"label": "plant", "points": part1, "shape_type": "polygon", "group_id": 1},
                  {"label": "plant", "points": part2, "shape_type": "polygon", "group_id": 1}]
        (folder / f"im{i}.json").write_text(json.dumps({"imagePath": f"im{i}.png", "shapes": shapes}))
    return folder


def test_labelme_becomes_coco_objects_and_mask_targets(tmp_path: Path) -> None:
    doc = labelme_to_coco(make_labelme(tmp_path / "set", count=2))
    assert [c["name"] for c in doc["categories"]] == ["ball", "box", "plant"]
    assert len(doc["images"]) == 2 and doc["images"][0]["height"] == 96  # size read from the image
    assert len(doc["annotations"]) == 6  # the two plant shapes are one object per image
    plant = next(a for a in doc["annotations"] if a["category_id"] == 3)
    assert len(plant["segmentation"]) == 2 and plant["bbox"] == [10.0, 70.0, 60.0, 20.0]
    image, target = InstanceDataset(doc)[0]
    assert image.shape == (3, 96, 128) and 0 <= float(image.min()) and float(image.max()) <= 1
    assert target["labels"].tolist() == [2, 1, 3] and target["masks"].shape == (3, 96, 128)
    assert target["boxes"][1].tolist() == [float(v) for v in _box(target["masks"][1].numpy())]
    train, held = split_holdout(doc, 0.5)
    assert len(train["images"]) == len(held["images"]) == 1
    assert {a["image_id"] for a in held["annotations"]} == {held["images"][0]["id"]}


def _box(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.mark.timeout(150)
def test_two_epoch_fine_tune_runs_evaluates_mask_ap_and_exports(tmp_path: Path, capsys) -> None:
    data = make_labelme(tmp_path / "set")
    out = tmp_path / "run"
    code = main(["train", "--task", "instance", "--data", f"labelme:{data}", "--epochs", "2", "--batch-size", "2",
                 "--max-steps", "1", "--min-size", "96", "--max-size", "128", "--holdout", "0.34", "--out", str(out),
                 "--no-progress"])
    assert code == 0
    assert "held-out mask AP" in capsys.readouterr().out
    history = json.loads((out / "metrics.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    for row in history:
        assert row["images"] == 2 and row["objects"] == 6  # 2 of 6 images held out, 3 objects each
        assert 0.0 <= row["mask_ap"] <= 1.0 and 0.0 <= row["box_ap"] <= 1.0 and np.isfinite(row["loss"])
    from rtseg.checkpoint import read_checkpoint
    from rtseg.export.instance import build_for_export, is_instance_request

    ckpt = read_checkpoint(out / "model_best.pth")
    assert ckpt["task"] == "instance" and ckpt["classes"] == ["__background__", "ball", "box", "plant"]
    assert is_instance_request(str(out / "model_best.pth"))
    built = build_for_export(str(out / "model_best.pth"))  # what rtseg export runs on it
    assert built.info.extra["min_size"] == "96" and built.info.classes[1:] == ("ball", "box", "plant")
    state = built.module.state_dict()
    assert all(torch_equal(state[k], v) for k, v in ckpt["model"].items())


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_instance_flags_are_checked(tmp_path: Path, capsys) -> None:
    data = make_labelme(tmp_path / "set", count=2)
    assert main(["train", "--data", f"labelme:{data}", "--arch", "maskrcnn_resnet50_fpn_v2", "--out",
                 str(tmp_path / "r")]) == 2
    assert "add --task instance" in capsys.readouterr().err
    assert main(["train", "--task", "instance", "--data", f"labelme:{data}", "--arch", "effl0_lraspp",
                 "--out", str(tmp_path / "r")]) == 2
    assert "--task instance needs --arch" in capsys.readouterr().err
