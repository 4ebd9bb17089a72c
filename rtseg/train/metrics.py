"""Confusion-matrix metrics (per-class IoU, mIoU, pixel accuracy) and their plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


class ConfusionMatrix:
    """Accumulates a ``num_classes`` x ``num_classes`` confusion matrix (rows: truth).

    Pixels whose target is outside ``0..num_classes-1`` (the ignore index) are skipped.

    Example:
        >>> cm = ConfusionMatrix(2)
        >>> cm.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]))
        >>> cm.iou().tolist()
        [0.5, 0.5]
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.mat = torch.zeros((num_classes, num_classes), dtype=torch.int64)

    def update(self, target: torch.Tensor, pred: torch.Tensor) -> None:
        """Add a batch; ``target`` and ``pred`` are integer tensors of the same shape."""
        n = self.num_classes
        target, pred = target.flatten().to(torch.int64).cpu(), pred.flatten().to(torch.int64).cpu()
        keep = (target >= 0) & (target < n)
        self.mat += torch.bincount(n * target[keep] + pred[keep], minlength=n * n).reshape(n, n)

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for classes absent from both truth and prediction."""
        h = self.mat.double()
        union = h.sum(0) + h.sum(1) - h.diag()
        return (h.diag() / union).numpy()  # 0/0 -> nan

    def miou(self) -> float:
        """Mean IoU over classes that occur (NaN-aware)."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.mat.sum().item()
        return float(self.mat.diag().sum().item() / total) if total else float("nan")

    def class_accuracy(self) -> np.ndarray:
        h = self.mat.double()
        return (h.diag() / h.sum(1)).numpy()

    def table(self, classes: Sequence[str]) -> str:
        """A plain-text per-class table plus mIoU and pixel accuracy."""
        iou, acc = self.iou(), self.class_accuracy()
        width = max(8, *(len(c) for c in classes))
        lines = [f"{'class':<{width}}  {'IoU %':>7}  {'acc %':>7}"]
        for name, i, a in zip(classes, iou, acc):
            lines.append(f"{name:<{width}}  {_pct(i):>7}  {_pct(a):>7}")
        lines.append(f"{'mIoU':<{width}}  {_pct(self.miou()):>7}")
        lines.append(f"{'pixel acc':<{width}}  {_pct(self.pixel_accuracy()):>7}")
        return "\n".join(lines)


def _pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.2f}"


def plot_confusion(cm: ConfusionMatrix, classes: Sequence[str], path: Path) -> Path:
    """Save a row-normalised confusion matrix as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = cm.mat.double()
    norm = (h / h.sum(1, keepdim=True).clamp(min=1)).numpy()
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.55 * n))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=60, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if norm[i, j] >= 0.01:
                ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(f"mIoU {_pct(cm.miou())} %, pixel acc {_pct(cm.pixel_accuracy())} %")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_history(rows: list[dict], path: Path) -> Path:
    """Save train loss and val mIoU per epoch (rows as written to metrics.csv) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(r["epoch"]) for r in rows]
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax1.plot(epochs, [float(r["train_loss"]) for r in rows], color="tab:red", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("train loss", color="tab:red")
    ax2 = ax1.twinx()
    miou = [(e, float(r["val_miou"])) for e, r in zip(epochs, rows) if r.get("val_miou") not in ("", None)]
    if miou:
        ax2.plot(*zip(*miou), color="tab:blue", marker=".", label="val mIoU")
    ax2.set_ylabel("val mIoU", color="tab:blue")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
