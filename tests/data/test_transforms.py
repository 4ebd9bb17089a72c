"""Joint transforms keep image and mask aligned and pad masks with the ignore index."""

from __future__ import annotations

import torch
from torchvision import tv_tensors

from rtseg.contract import IMAGENET_MEAN, IMAGENET_STD
from rtseg.data import EvalPreset, TrainPreset


def test_train_preset_keeps_image_and_mask_aligned():
    torch.manual_seed(0)
    labels = torch.zeros(40, 60, dtype=torch.int64)
    labels[10:30, 5:25] = 1
    labels[:, 45:] = 2
    image = tv_tensors.Image((labels * 100).to(torch.uint8).expand(3, -1, -1).clone())
    preset = TrainPreset((48, 48), base_size=40, scale=(0.5, 1.5), ignore_index=255, jitter=0.0)
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    for _ in range(10):
        img, mask = preset(image, tv_tensors.Mask(labels))
        assert img.shape == (3, 48, 48) and img.dtype == torch.float32 and mask.dtype == torch.int64
        grey = ((img * std + mean)[0] * 255).round()
        inside = mask != 255
        # away from label edges (antialiased bilinear image vs nearest mask), colours match labels
        m = mask[None, None].float()
        pool = torch.nn.functional.max_pool2d
        interior = inside & (pool(m, 5, 1, 2) == -pool(-m, 5, 1, 2))[0, 0]
        assert torch.all((grey[interior] - mask[interior] * 100).abs() <= 2)
        assert set(mask.unique().tolist()) <= {0, 1, 2, 255}


def test_eval_preset_resizes_mask_nearest():
    image = tv_tensors.Image(torch.zeros(3, 20, 30, dtype=torch.uint8))
    mask = tv_tensors.Mask(torch.randint(0, 3, (20, 30)))
    img, out = EvalPreset((10, 15))(image, mask)
    assert img.shape == (3, 10, 15) and out.shape == (10, 15)
    assert set(out.unique().tolist()) <= {0, 1, 2}
