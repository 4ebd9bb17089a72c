"""Mask R-CNN (torchvision) -> ONNX -> the live pipeline: parity with PyTorch, the CLI on an image and a
video, instance records in the JSONL. One small random-init model (MobileNetV3 FPN, 128-160 px working
size) is exported once for the module."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from rtseg.cli import main  # noqa: E402
from rtseg.errors import ModelError  # noqa: E402
from rtseg.realtime.engine import load_model  # noqa: E402
from rtseg.realtime.instances.maskrcnn import (  # noqa: E402
    MaskRcnnEngine,
    is_instance_model,
    paste_mask,
    read_metadata,
    working_size,
)

from factories import make_video  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("maskrcnn") / "m.onnx"
    torch.manual_seed(0)
    code = main(["export", "maskrcnn_mobilenet_v3_large_fpn", "--random-init", "--classes", "car,person",
                 "-o", str(path), "--min-size", "128", "--max-size", "160", "--score-threshold", "0",
                 "--detections", "6"])
    assert code == 0
    return path


def test_export_writes_the_instance_contract_and_matches_pytorch(exported: Path, capsys) -> None:
    meta = read_metadata(exported)
    assert meta["task"] == "instance" and json.loads(meta["classes"]) == ["__background__", "car", "person"]
    assert json.loads(meta["things"]) == ["car", "person"] and meta["min_size"] == "128"
    assert is_instance_model(exported) and not is_instance_model(Path(__file__))


def test_parity_is_measured_on_two_sizes_and_detections_match(exported: Path) -> None:
    from rtseg.export.frames import synthetic_frames
    from rtseg.export.instance import build_for_export, instance_parity

    torch.manual_seed(0)  # the fixture's model: same seed, same random weights and calibration
    built = build_for_export("maskrcnn_mobilenet_v3_large_fpn", classes=["car", "person"], random_init=True,
                             min_size=128, max_size=160, graph_score_threshold=0.0, detections=6)
    frames = synthetic_frames(1, 120, 160, seed=3) + synthetic_frames(1, 150, 100, seed=4)
    report = instance_parity(built.module, exported, frames)
    assert report.detections == 12 and report.matched == 12, report
    assert report.max_box_diff < 0.05 and report.max_score_diff < 1e-3 and report.mask_agreement > 0.999
    assert report.ok and "12/12 detections match PyTorch" in str(report)


def test_engine_pastes_masks_like_torchvision_and_sets_labels_and_instances(exported: Path) -> None:
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    rng = np.random.default_rng(0)
    masks = rng.random((3, 1, 28, 28)).astype(np.float32)
    boxes = np.array([[10.2, 5.5, 60.7, 40.1], [-5, -5, 20, 30], [70, 50, 119.5, 79.9]], np.float32)
    ref = paste_masks_in_image(torch.from_numpy(masks), torch.from_numpy(boxes), (80, 120))[:, 0].numpy() > 0.5
    for k in range(3):
        crop, (x, y) = paste_mask(masks[k, 0], boxes[k], 80, 120)
        ours = np.zeros((80, 120), bool)
        ours[y:y + crop.shape[0], x:x + crop.shape[1]] = crop
        assert (ours == ref[k]).mean() > 0.995
    engine = load_model(str(exported), device="cpu")
    assert isinstance(engine, MaskRcnnEngine) and engine.info.classes[1:] == ("car", "person")
    assert working_size(90, 200, 128, 160) == (72, 160)
    from rtseg.realtime.frame import Frame

    frame = Frame(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8), 0)
    engine.segment(frame)
    found = frame.instances.instances
    assert 1 <= len(found) <= 6 and all(i.score is not None for i in found)
    assert frame.labels.shape == (90, 120) and set(np.unique(frame.labels)) <= {0, 1, 2}
    best = max(found, key=lambda i: i.score)
    x0, y0, x1, y1 = best.box
    assert (frame.labels[y0:y1, x0:x1][best.mask] == best.class_index).all()  # highest score on top


def test_cli_runs_it_on_an_image_and_a_video_with_tracks_in_the_jsonl(exported: Path, tmp_path: Path) -> None:
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.random.default_rng(1).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    assert main(["--source", str(image), "--model", str(exported), "--output", str(tmp_path / "out.png"),
                 "--quiet"]) == 0
    assert cv2.imread(str(tmp_path / "out.png")).shape == (96, 128, 3)
    video = make_video(tmp_path / "in.mp4", n=4, width=128, height=96, noise=True)
    stats = tmp_path / "s.jsonl"
    assert main(["--source", str(video), "--model", str(exported), "--output", str(tmp_path / "out.mp4"),
                 "--stats", str(stats), "--count-line", "0,48,128,48", "--quiet"]) == 0
    lines = [json.loads(line) for line in stats.read_text().splitlines()]
    assert len(lines) == 5 and "summary" in lines[-1]
    records = [r for line in lines[:-1] for r in line["instances"]]
    assert records and all({"id", "class", "box", "area", "score"} <= set(r) for r in records)
    assert set(lines[-1]["summary"]["unique_ids"]) == {"car", "person"}


def test_no_weights_and_no_random_init_is_one_clear_error() -> None:
    from rtseg.export.instance import build_for_export

    with pytest.raises(ModelError, match="--weights FILE"):
        build_for_export("maskrcnn_resnet50_fpn_v2")


def test_weights_of_another_head_fill_everything_that_fits() -> None:
    """COCO weights (91 classes) into a 3-class model: all but the class-specific predictors load."""
    from rtseg.models.instance import build_instance_model, load_instance_weights

    torch.manual_seed(0)
    source = build_instance_model("maskrcnn_mobilenet_v3_large_fpn", 5, min_size=64).state_dict()
    target = build_instance_model("maskrcnn_mobilenet_v3_large_fpn", 3, min_size=64)
    missing = load_instance_weights(target, source, "coco.pth")
    predictors = [f"roi_heads.box_predictor.{layer}.{kind}" for layer in ("bbox_pred", "cls_score")
                  for kind in ("bias", "weight")]
    predictors += [f"roi_heads.mask_predictor.mask_fcn_logits.{kind}" for kind in ("bias", "weight")]
    assert missing == predictors
    assert torch.equal(target.state_dict()["backbone.fpn.layer_blocks.0.0.weight"],
                       source["backbone.fpn.layer_blocks.0.0.weight"])
    with pytest.raises(ModelError, match="no tensor fits"):
        load_instance_weights(target, {"x": torch.zeros(1)}, "junk.pth")
