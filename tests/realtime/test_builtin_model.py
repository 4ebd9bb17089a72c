"""The road model that ships inside the package: present, small, described, and right."""


import cv2
import numpy as np
import pytest

from rtseg.assets import ASSETS, demo_clip
from rtseg.contract import CAMVID_CLASSES, CAMVID_PALETTE
from rtseg.realtime.engine import default_model_name, load_model

from factories import CAMVID, read_video

MODEL = ASSETS / "camvid-road.onnx"


def test_road_model_ships_and_is_the_default() -> None:
    assert MODEL.exists(), "rtseg/assets/camvid-road.onnx must ship with the package"
    assert MODEL.stat().st_size < 10 * 1024 * 1024
    assert default_model_name() == "camvid-road"
    engine = load_model(device="cpu")
    assert engine.info.name == "camvid-road"
    assert engine.info.classes == CAMVID_CLASSES and engine.info.palette == CAMVID_PALETTE
    assert engine.info.input_size == (360, 480) and engine.info.license and engine.info.source


@pytest.mark.parametrize("index", [0, 100, 200])
def test_road_model_sees_road_below_and_sky_above_on_the_demo_clip(index: int) -> None:
    """Model quality on the clip that ships in the package (no ../shared needed): the lane
    ahead is road, the top of the frame is sky, and no car is seen on the empty lane."""
    _, images = read_video(demo_clip())
    labels = load_model(device="cpu")(images[index])
    h, w = labels.shape
    road, sky, car = (CAMVID_CLASSES.index(c) for c in ("road", "sky", "car"))
    lane_ahead = labels[int(h * 0.75):int(h * 0.9), int(w * 0.4):int(w * 0.6)]
    top = labels[: int(h * 0.15)]
    assert (lane_ahead == road).mean() > 0.8
    assert (top == sky).mean() > 0.6
    assert (lane_ahead == car).mean() < 0.05


@pytest.mark.skipif(not (CAMVID / "val.txt").exists(), reason=f"CamVid not found at {CAMVID}")
def test_road_model_quality_on_camvid_val_frames() -> None:
    """mIoU on every 10th val frame, void excluded (the full score is in the model card)."""
    engine = load_model(device="cpu")
    pairs = [line.split() for line in (CAMVID / "val.txt").read_text().splitlines() if line.strip()][::10]
    confusion = np.zeros((11, 11), np.int64)
    for image_rel, label_rel in pairs:
        image = cv2.imread(str(CAMVID / image_rel), cv2.IMREAD_COLOR)
        target = cv2.imread(str(CAMVID / label_rel), cv2.IMREAD_UNCHANGED)
        predicted = engine(image)
        valid = target < 11
        confusion += np.bincount(11 * target[valid].astype(np.int64) + predicted[valid],
                                 minlength=121).reshape(11, 11)
    iou = np.diag(confusion) / (confusion.sum(0) + confusion.sum(1) - np.diag(confusion)).clip(min=1)
    assert iou.mean() > 0.55, f"mIoU {iou.mean():.3f}"
    assert iou[CAMVID_CLASSES.index("road")] > 0.85
