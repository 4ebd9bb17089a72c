"""Confusion matrix metrics and `rtseg eval` on a model with a known confusion matrix."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest
import torch

from rtseg.cli import main as cli_main
from rtseg.train.evaluation import evaluate_model
from rtseg.train.metrics import ConfusionMatrix


def test_confusion_matrix_known_values():
    target = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 255])
    pred = torch.tensor([0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0])
    cm = ConfusionMatrix(2)
    cm.update(target, pred)
    assert cm.mat.tolist() == [[3, 1], [2, 4]]          # 255 ignored
    np.testing.assert_allclose(cm.iou(), [3 / 6, 4 / 7])
    assert cm.miou() == pytest.approx((0.5 + 4 / 7) / 2)
    assert cm.pixel_accuracy() == pytest.approx(0.7)
    assert "mIoU" in cm.table(["a", "b"])


def test_absent_class_is_nan_not_zero():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert np.isnan(cm.iou()[2]) and cm.miou() == 1.0


class ColourIsClass(torch.nn.Module):
    """Logits = the normalised RGB input: pure red -> 0, green -> 1, blue -> 2."""

    def forward(self, x):
        return x * 1.0


@pytest.fixture
def colour_model(tmp_path):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "colour.onnx"
    torch.onnx.export(ColourIsClass(), torch.zeros(1, 3, 64, 64), path, opset_version=17, dynamo=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {2: "h", 3: "w"}, "logits": {2: "h", 3: "w"}})
    model = onnx.load(path)
    for key, value in {"classes": '["r", "g", "b"]', "rtseg_contract": "1"}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)
    return path


@pytest.fixture
def quadrants(tmp_path):
    """64x64: quadrants red/green/blue/blue; truth 0/0/2/1, one ignored row in the first."""
    root = tmp_path / "quad"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    image = np.zeros((64, 64, 3), np.uint8)
    image[:32, :32] = (0, 0, 255)      # BGR red
    image[:32, 32:] = (0, 255, 0)      # green
    image[32:, :] = (255, 0, 0)        # blue
    mask = np.zeros((64, 64), np.uint8)
    mask[32:, :32] = 2
    mask[32:, 32:] = 1
    mask[0, :32] = 255
    cv2.imwrite(str(root / "images" / "q.png"), image)
    cv2.imwrite(str(root / "masks" / "q.png"), mask)
    (root / "classes.txt").write_text("r\ng\nb\n")
    return root


def test_eval_onnx_known_confusion_matrix(colour_model, quadrants, tmp_path):
    cm, classes = evaluate_model(colour_model, f"masks:{quadrants}", "val", out=tmp_path / "rep",
                                 progress=False)
    assert classes == ("r", "g", "b")
    assert cm.mat.tolist() == [[992, 1024, 0], [0, 0, 1024], [0, 0, 1024]]
    report = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert report["miou"] == pytest.approx((992 / 2016 + 0 + 1024 / 2048) / 3)
    assert report["pixel_accuracy"] == pytest.approx(2016 / 4064)
    assert (tmp_path / "rep" / "confusion.png").stat().st_size > 0


def test_eval_cli_prints_table(colour_model, quadrants, tmp_path, capsys):
    rc = cli_main(["eval", "--model", str(colour_model), "--data", f"masks:{quadrants}",
                   "--out", str(tmp_path / "r"), "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "mIoU" in out and "pixel acc" in out and (tmp_path / "r" / "per_class.txt").is_file()


def test_eval_cli_missing_model_is_one_line(tmp_path, quadrants, capsys):
    rc = cli_main(["eval", "--model", str(tmp_path / "none.onnx"), "--data", f"masks:{quadrants}"])
    err = capsys.readouterr().err
    assert rc == 2 and "none.onnx" in err and err.count("\n") == 1


def test_eval_without_train_extra_stops_before_any_work(colour_model, quadrants, tmp_path, capsys, monkeypatch):
    """Regression: without matplotlib (the [train] extra) eval scored everything, then died on the plot."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc = cli_main(["eval", "--model", str(colour_model), "--data", f"masks:{quadrants}", "--out", str(tmp_path / "r"),
                   "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "rtseg eval needs matplotlib" in err and "pip install 'rtseg[train]'" in err
    assert not (tmp_path / "r").exists()
