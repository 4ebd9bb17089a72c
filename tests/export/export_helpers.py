"""Helpers shared by the export tests (imported by name; tests/ has no packages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
ROAD_CLIP = SHARED / "media" / "road_solidWhiteRight.mp4"
CAMVID = SHARED / "data" / "camvid"


class TinySeg(nn.Module):
    """Stride-2 conv encoder + 1x1 classifier + bilinear upsample: logits at input resolution."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(16, num_classes, 1)

    def forward(self, x):
        return F.interpolate(self.head(self.body(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)


def bn_calibrate(module: nn.Module, x: np.ndarray) -> nn.Module:
    """Set BatchNorm running stats from one batch of real input.

    A randomly initialised torchvision model (running var 1, mean 0) predicts one class
    everywhere, which would make any parity check pass trivially; with data-set statistics
    its label maps follow the image structure and disagreements can show.
    """
    for mod in module.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.reset_running_stats()
            mod.momentum = None
    module.train()
    with torch.no_grad():
        module(torch.from_numpy(x))
    return module.eval()
