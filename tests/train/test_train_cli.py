"""`rtseg train` end to end: outputs, --resume, eval on the checkpoint, one-line errors."""

from __future__ import annotations

import csv

import pytest
import torch

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
    assert {"model", "optimizer", "scheduler", "args"} <= set(ckpt)
    assert (out / "history.png").stat().st_size > 0
    capsys.readouterr()
    assert cli_main(["eval", "--model", str(out / "model_best.pth"), "--data", f"masks:{shapes_dir}",
                     "--split", "train", "--no-progress"]) == 0
    assert "mIoU" in capsys.readouterr().out
    assert (out / "eval-train-model_best" / "confusion.png").is_file()


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
