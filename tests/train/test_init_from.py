"""``rtseg train --init-from camvid-road``: fine-tuning starts from the shipped weights."""

from __future__ import annotations

import logging

import pytest
import torch

from rtseg.cli import main as cli_main
from rtseg.errors import RtsegError
from rtseg.export.from_onnx import rebuild_from_onnx
from rtseg.models import build_model
from rtseg.train.init_from import init_from

from train_helpers import make_shapes_dataset

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def shipped_state() -> dict[str, torch.Tensor]:
    from rtseg.assets import builtin_model_files

    return rebuild_from_onnx(builtin_model_files()["camvid-road"])[0].state_dict()


def test_one_epoch_from_camvid_road_keeps_its_weights_and_classes(tmp_path, shipped_state, caplog) -> None:
    """A tiny dataset whose classes are sky, road and a new one: one epoch at a negligible learning
    rate leaves the shipped convolutions in place, carries the sky and road classifier rows over
    by name, and starts the new class from scratch."""
    data = make_shapes_dataset(tmp_path / "streets", count=3, size=64)
    (data / "classes.txt").write_text("sky\nroad\npuddle\n")
    out = tmp_path / "run"
    caplog.set_level(logging.INFO, logger="rtseg")
    assert cli_main(["train", "--data", f"masks:{data}", "--val-split", "train", "--init-from", "camvid-road",
                     "--epochs", "1", "--batch-size", "2", "--crop", "64", "64", "--lr", "1e-9",
                     "--threads", "1", "--out", str(out), "--no-progress"]) == 0
    best = torch.load(out / "model_best.pth", weights_only=True)
    assert best["arch"] == "effl0_unet_bilinear" and best["classes"] == ["sky", "road", "puddle"]
    assert best["args"]["init_from"] == "camvid-road"
    weights = best["model"]
    for key in ("encoder._conv_stem.weight", "encoder._blocks.9._depthwise_conv.weight", "decoder.up4.fuse.1.0.weight"):
        assert torch.allclose(weights[key], shipped_state[key], atol=1e-6), key
    classifier, shipped = weights["decoder.classifier.weight"], shipped_state["decoder.classifier.weight"]
    assert torch.allclose(classifier[0], shipped[0], atol=1e-6)  # sky
    assert torch.allclose(classifier[1], shipped[3], atol=1e-6)  # road (CamVid index 3)
    assert not any(torch.allclose(classifier[2], row, atol=1e-3) for row in shipped)  # puddle: new
    assert "2 of 3 classes carried over (new: puddle)" in caplog.text
    assert "(init from camvid-road)" in caplog.text and "ImageNet init" not in caplog.text


def test_init_from_a_checkpoint_and_its_errors(tmp_path, shipped_state) -> None:
    model = build_model("effl0_unet_bilinear", 11)
    path = tmp_path / "w.pth"
    torch.save({"model": shipped_state, "arch": "effl0_unet_bilinear", "num_classes": 11}, path)
    summary = init_from(model, str(path), "effl0_unet_bilinear", [f"class{i}" for i in range(11)])
    assert summary.endswith("all weights") and torch.equal(model.state_dict()["encoder._bn0.bias"],
                                                            shipped_state["encoder._bn0.bias"])
    with pytest.raises(RtsegError, match="its architecture is effl0_unet_bilinear; train with --arch"):
        init_from(build_model("effl0_lraspp", 11), str(path), "effl0_lraspp", ["a"] * 11)
    with pytest.raises(RtsegError, match="give a built-in model"):
        init_from(model, "no-such-model", "effl0_unet_bilinear", ["a"])
