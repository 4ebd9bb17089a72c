"""Losses: cross-entropy with ignore index, optional class weights, OHEM."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rtseg.data.datasets import SegmentationDataset


class OhemCrossEntropy(nn.Module):
    """Online hard example mining: mean CE over pixels whose true-class probability is below
    ``thresh``, keeping at least ``min_kept_ratio`` of the valid pixels (the hardest ones)."""

    def __init__(self, ignore_index: int, thresh: float = 0.7, min_kept_ratio: float = 1 / 16,
                 weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.thresh = -float(np.log(thresh))
        self.min_kept_ratio = min_kept_ratio
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction="none").flatten()
        valid = (target.flatten() != self.ignore_index)
        loss = loss[valid]
        if loss.numel() == 0:
            return logits.sum() * 0.0
        min_kept = max(1, int(self.min_kept_ratio * loss.numel()))
        hard = loss[loss > self.thresh]
        if hard.numel() < min_kept:
            hard = loss.topk(min_kept).values
        return hard.mean()


def class_weights(dataset: SegmentationDataset, kind: str) -> torch.Tensor | None:
    """Class weights from label frequencies in ``dataset`` (untransformed masks).

    ``enet``: 1 / ln(1.02 + p) (Paszke et al., ENet); ``median``: median(p) / p (median
    frequency balancing); both normalised to mean 1. ``none``: None.
    """
    if kind == "none":
        return None
    n = len(dataset.classes)
    counts = np.zeros(n, np.float64)
    for i in range(len(dataset)):
        mask = dataset.load(i)[1]
        counts += np.bincount(mask[mask < n].ravel(), minlength=n)[:n]
    freq = counts / max(counts.sum(), 1)
    if kind == "enet":
        weights = 1.0 / np.log(1.02 + freq)
    elif kind == "median":
        present = freq[freq > 0]
        weights = np.where(freq > 0, np.median(present) / np.maximum(freq, 1e-12), 0.0)
    else:
        raise ValueError(f"class weights must be none, enet or median, got {kind!r}")
    weights = weights / weights[freq > 0].mean()
    return torch.tensor(weights, dtype=torch.float32)
