"""Joint image + mask transforms (torchvision.transforms.v2) for training and evaluation."""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from rtseg.contract import IMAGENET_MEAN, IMAGENET_STD


class TrainPreset:
    """Random scale, crop (padded with ignore), flip, colour jitter, normalise.

    Args:
        crop: (height, width) of the training crop.
        base_size: the shorter image side that scale 1.0 refers to.
        scale: (min, max) random scale factors of ``base_size``.
        ignore_index: label written into padding.
    """

    def __init__(self, crop: tuple[int, int], base_size: int, scale: tuple[float, float] = (0.5, 1.5),
                 ignore_index: int = 255, hflip: float = 0.5, jitter: float = 0.3,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        steps = [v2.RandomResize(int(scale[0] * base_size), int(scale[1] * base_size) + 1, antialias=True),
                 v2.RandomCrop(crop, pad_if_needed=True,
                               fill={tv_tensors.Image: 0, tv_tensors.Mask: ignore_index})]
        if hflip > 0:
            steps.append(v2.RandomHorizontalFlip(hflip))
        if jitter > 0:
            steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=0.02))
        self.transforms = v2.Compose(steps + _to_normalised_tensors(mean, std))

    def __call__(self, image, mask):
        return self.transforms(image, mask)


class EvalPreset:
    """Optional resize to ``size`` (height, width), then normalise; masks resized nearest."""

    def __init__(self, size: tuple[int, int] | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        steps = [v2.Resize(list(size), antialias=True)] if size else []
        self.transforms = v2.Compose(steps + _to_normalised_tensors(mean, std))

    def __call__(self, image, mask):
        return self.transforms(image, mask)


def _to_normalised_tensors(mean, std) -> list:
    """The common tail: float image in 0..1 normalised by mean/std, int64 mask."""
    return [v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None}, scale=True),
            v2.Normalize(mean=list(mean), std=list(std))]
