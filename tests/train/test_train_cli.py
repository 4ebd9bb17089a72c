"""`rtseg train` end to end: outputs, --resume, eval on the checkpoint, one-line errors."""

from __future__ import annotations

import csv
import sys

import pytest
import torch

from rtseg.checkpoint import BestCheckpoint, TrainCheckpoint
from rtseg.cli import main as cli_main


@pytest.mark.timeout(120)
def test_train_resume_and_eval_checkpoint(shapes_dir, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "--data", f"masks:{shapes_dir}", "--val-split", "train", "--arch", "effl0_lraspp",
              "--scratch", "--batch-size", "2", "--crop", "32", "32", "--max-steps", "1", "--threads", "1",
              "--out", str(out), "--no-progress"]
    assert cli_main(common + ["--epochs", "2"]) == 0
    assert cli_main(common + ["--epochs", "3", "--resume"]) == 0
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and all(r["val_miou"] for r in rows)
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    assert ckpt["epoch"] == 3 and ckpt["arch"] == "effl0_lraspp" and ckpt["classes"] == ["background", "red", "blue"]
    assert set(ckpt) == set(TrainCheckpoint.__annotations__)  # the documented schema, no more, no less
    assert set(torch.load(out / "model_best.pth", weights_only=True)) == set(BestCheckpoint.__annotations__)
    assert (out / "history.png").stat().st_size > 0
    capsys.readouterr()
    assert cli_main(["eval", "--model", str(out / "model_best.pth"), "--data", f"masks:{shapes_dir}",
                     "--split", "train", "--no-progress"]) == 0
    assert "mIoU" in capsys.readouterr().out
    assert (out / "eval-train-model_best" / "confusion.png").is_file()
    onnx_path = tmp_path / "trained.onnx"  # export reads the same checkpoint through rtseg.checkpoint
    assert cli_main(["export", str(out / "model_best.pth"), "-o", str(onnx_path), "--input-size", "32", "32",
                     "--frames", str(shapes_dir / "images")]) == 0
    printed = capsys.readouterr().out
    assert "rtseg train checkpoint model_best.pth" in printed and f"frames from {shapes_dir / 'images'}" in printed


@pytest.mark.parametrize("extra, message", [
    (["--data", "camvid:/no/such/dir"], "dataset path /no/such/dir does not exist"),
    (["--resume", "/no/ckpt.pth"], "checkpoint /no/ckpt.pth not found"),
])
def test_train_errors_are_one_line(shapes_dir, tmp_path, capsys, extra, message):
    args = ["train", "--data", f"masks:{shapes_dir}", "--out", str(tmp_path / "o"), "--epochs", "1",
            "--scratch", "--no-progress"] + extra
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_train_without_train_extra_stops_before_any_work(shapes_dir, tmp_path, capsys, monkeypatch):
    """Regression: without matplotlib (the [train] extra) a run trained a whole epoch, then died."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc = cli_main(["train", "--data", f"masks:{shapes_dir}", "--out", str(tmp_path / "o"), "--epochs", "1",
                   "--scratch", "--arch", "effl0_lraspp", "--max-steps", "1", "--crop", "32", "32", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "pip install 'rtseg[train]'" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.timeout(120)
def test_train_on_train_plus_val_refuses_to_validate_on_val(shapes_dir, tmp_path, capsys):
    args = ["train", "--data", f"masks:{shapes_dir}", "--train-split", "train+val", "--arch", "effl0_lraspp",
            "--scratch", "--batch-size", "2", "--crop", "32", "32", "--max-steps", "1", "--threads", "1",
            "--epochs", "1", "--out", str(tmp_path / "o"), "--no-progress"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "trains on the val split" in err and "--val-every 0" in err and err.count("\n") == 1
    assert cli_main(args + ["--val-every", "0"]) == 0
    best = torch.load(tmp_path / "o" / "model_best.pth", weights_only=True)
    assert best["epoch"] == 1 and best["args"]["train_split"] == "train+val"
