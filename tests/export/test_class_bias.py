"""rtseg calibrate: per-class logit biases found by search, scored held out, folded into a real ONNX graph."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import onnx
import pytest
import torch

from rtseg.cli import main as cli_main
from rtseg.export.class_bias import confusion, cross_validate, fit_biases, fold_biases, mean_iou, per_class_iou
from rtseg.export.exporter import export_model, ort_session

from export_helpers import TinySeg, bn_calibrate
from factories import make_channel_argmax_model


def shifted_logits(rng: np.random.Generator, n: int = 6000, shift: float = 0.45) -> tuple[np.ndarray, np.ndarray]:
    """Three classes; class 2's logits sit ``shift`` too low, so it is under-predicted."""
    labels = rng.integers(0, 3, n)
    logits = rng.normal(0, 0.3, (n, 3)).astype(np.float32)
    logits[np.arange(n), labels] += 1.0
    logits[:, 2] -= shift
    return logits, labels


def test_search_finds_the_missing_bias_and_leaves_the_rest() -> None:
    logits, labels = shifted_logits(np.random.default_rng(0))
    before = mean_iou(confusion(labels, logits.argmax(1), 3))
    bias = fit_biases(logits, labels, 3)
    after = mean_iou(confusion(labels, (logits + bias).argmax(1), 3))
    relative = bias[2] - bias[:2].mean()  # only differences between classes matter
    assert 0.3 <= relative <= 0.6, bias
    assert after > before + 0.03
    assert per_class_iou(confusion(labels, (logits + bias).argmax(1), 3))[2] > \
        per_class_iou(confusion(labels, logits.argmax(1), 3))[2] + 0.05
    only = fit_biases(logits, labels, 3, only=[2])
    assert only[0] == only[1] == 0 and 0.3 <= only[2] <= 0.6


def test_balanced_logits_get_no_bias_and_held_out_scores_are_pooled() -> None:
    logits, labels = shifted_logits(np.random.default_rng(1), shift=0.0)
    assert np.abs(fit_biases(logits, labels, 3)).max() <= 0.1
    frames = np.array_split(np.arange(len(labels)), 6)
    cv = cross_validate([logits[i] for i in frames], [labels[i] for i in frames], 3, folds=3)
    assert cv.before.sum() == cv.after.sum() == len(labels)  # every pixel scored once, held out
    assert len(cv.biases) == 3
    with pytest.raises(ValueError, match="folds"):
        cross_validate([logits], [labels], 3, folds=2)


def tiny_model(frames, seed: int = 0):
    """A 5-class TinySeg with BatchNorm statistics of real frames, its info and a 2-frame input batch."""
    from rtseg.contract import ModelInfo
    from rtseg.realtime.preprocess import preprocess

    torch.manual_seed(seed)
    info = ModelInfo(name="tiny", classes=("a", "b", "c", "d", "e"), input_size=(64, 96))
    x = np.concatenate([preprocess(f, info) for f in frames[:2]])
    return bn_calibrate(TinySeg(5), x), info, x


def test_fold_into_the_classifier_conv_shifts_the_logits_exactly(tmp_path, frames) -> None:
    module, info, x = tiny_model(frames)
    source = export_model(module, tmp_path / "tiny.onnx", info, frames=frames[:2]).path
    biases = np.array([0.0, 0.5, -0.25, 0.0, 1.0], np.float32)
    how = fold_biases(source, tmp_path / "calibrated.onnx", biases)
    assert "classifier convolution" in how

    def run(path):
        session = ort_session(path, with_logits=True)
        names = [o.name for o in session.get_outputs()]
        outs = session.run(None, {session.get_inputs()[0].name: x})
        return dict(zip(names, outs))

    old, new = run(source), run(tmp_path / "calibrated.onnx")
    logits_name = [n for n in old if n not in ("labels", "confidence")][0]
    np.testing.assert_allclose(new[logits_name], old[logits_name] + biases.reshape(1, -1, 1, 1), atol=1e-4)
    np.testing.assert_array_equal(new["labels"], (old[logits_name] + biases.reshape(1, -1, 1, 1)).argmax(1))
    assert (new["labels"] != old["labels"]).any()  # the biases were large enough to matter
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "calibrated.onnx")).metadata_props}
    assert json.loads(meta["class_bias"]) == pytest.approx(biases.tolist())
    fold_biases(tmp_path / "calibrated.onnx", tmp_path / "twice.onnx", biases)  # metadata keeps the sum
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "twice.onnx")).metadata_props}
    assert json.loads(meta["class_bias"]) == pytest.approx((2 * biases).tolist())


def make_boundary_dataset(root, count: int = 6, size: int = 64, margin: int = 51):
    """Masks for the channel-argmax model's classes, but blue wins where B + margin > R: the model
    (plain argmax) under-predicts blue by ``margin`` grey levels (0.2 in its logits)."""
    rng = np.random.default_rng(3)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        r = rng.integers(60, 255, (size, size))
        b = np.clip(r + rng.choice([-120, -40, 40], (size, size)) + rng.integers(-8, 8, (size, size)), 0, 255)
        g = np.zeros_like(r)
        image = np.stack([b, g, r], -1).astype(np.uint8)  # BGR on disk
        mask = np.where(b.astype(int) + margin > r, 2, 0).astype(np.uint8)  # 0 red, 2 blue
        cv2.imwrite(str(root / "images" / f"f{i:02d}.png"), image)
        cv2.imwrite(str(root / "masks" / f"f{i:02d}.png"), mask)
    (root / "classes.txt").write_text("red\ngreen\nblue\n")
    return root


def test_cli_calibrates_a_real_model_end_to_end(tmp_path, capsys) -> None:
    model = make_channel_argmax_model(tmp_path / "channels.onnx", output="labels")
    data = make_boundary_dataset(tmp_path / "data")
    out = tmp_path / "calibrated.onnx"
    assert cli_main(["calibrate", "--model", str(model), "--data", f"masks:{data}", "--split", "train",
                     "--folds", "3", "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "Add node" in text  # no convolution to fold into: an Add before the ArgMax
    assert "held out, after" in text
    # the calibrated model, run by rtseg eval as users run it, now matches the masks everywhere
    assert cli_main(["eval", "--model", str(out), "--data", f"masks:{data}", "--split", "train",
                     "--out", str(tmp_path / "eval"), "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["pixel_accuracy"] > 0.999
    assert cli_main(["eval", "--model", str(model), "--data", f"masks:{data}", "--split", "train",
                     "--out", str(tmp_path / "eval0"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "eval0" / "metrics.json").read_text())["pixel_accuracy"] < 0.8


def test_cli_refuses_bad_requests_and_never_writes_through_a_link(tmp_path, capsys) -> None:
    model = make_channel_argmax_model(tmp_path / "channels.onnx", output="labels")
    data = make_boundary_dataset(tmp_path / "data", count=2)
    base = ["calibrate", "--model", str(model), "--data", f"masks:{data}", "--split", "train", "--no-progress"]
    assert cli_main(base + ["--classes", "purple"]) == 2
    assert "purple" in capsys.readouterr().err
    original = model.read_bytes()
    assert cli_main(base + ["-o", str(model)]) == 2
    assert "is the model being calibrated" in capsys.readouterr().err
    assert model.read_bytes() == original
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "planted.onnx"
    os.symlink(victim, link)
    assert cli_main(base + ["-o", str(link)]) == 0
    assert victim.read_text() == "keep me" and not link.is_symlink()
    assert cli_main(["calibrate", "--model", str(tmp_path / "missing.onnx"), "--data", f"masks:{data}"]) == 2
    assert "model not found" in capsys.readouterr().err


def test_fold_into_an_fp16_model_keeps_its_precision(tmp_path, frames) -> None:
    from rtseg.export.exporter import to_fp16

    module, info, x = tiny_model(frames, seed=1)
    fp32 = export_model(module, tmp_path / "tiny.onnx", info, frames=frames[:2]).path
    half = to_fp16(fp32, tmp_path / "tiny.fp16.onnx")
    biases = np.array([0.0, 0.0, 2.0, 0.0, 0.0], np.float32)
    fold_biases(half, tmp_path / "calibrated.fp16.onnx", biases)
    old = ort_session(half, with_logits=True)
    new = ort_session(tmp_path / "calibrated.fp16.onnx", with_logits=True)
    name = old.get_inputs()[0].name
    old_labels, old_logits = old.run(None, {name: x})[0], old.run(None, {name: x})[-1]
    new_labels, new_logits = new.run(None, {name: x})[0], new.run(None, {name: x})[-1]
    assert new_logits.dtype == old_logits.dtype
    np.testing.assert_allclose(new_logits.astype(np.float32), old_logits.astype(np.float32)
                               + biases.reshape(1, -1, 1, 1), atol=2e-2)
    assert (new_labels == 2).sum() > (old_labels == 2).sum()


def test_an_int8_model_gets_an_add_before_its_argmax(tmp_path, frames) -> None:
    """Quantized (QDQ) graphs have an int32 conv bias behind Q/DQ nodes: the biases go into an Add."""
    module, info, x = tiny_model(frames)
    int8 = export_model(module, tmp_path / "tiny.int8.onnx", info, frames=frames[2:4], int8=True,
                        calib_frames=frames[:2]).path
    biases = np.array([0.0, 0.0, 2.0, 0.0, 0.0], np.float32)
    assert "Add node" in fold_biases(int8, tmp_path / "calibrated.onnx", biases)
    old, new = ort_session(int8, with_logits=True), ort_session(tmp_path / "calibrated.onnx", with_logits=True)
    before, after = old.run(None, {"images": x}), new.run(None, {"images": x})
    np.testing.assert_allclose(after[-1], before[-1] + biases.reshape(1, -1, 1, 1), atol=1e-5)
    np.testing.assert_array_equal(after[0], (before[-1] + biases.reshape(1, -1, 1, 1)).argmax(1))
