"""Segmentation decoders: LR-ASPP and a light U-Net decoder (transposed conv or bilinear)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def sep_conv(cin: int, cout: int) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1, each with BN + ReLU."""
    return nn.Sequential(conv_bn_relu(cin, cin, 3, groups=cin), conv_bn_relu(cin, cout, 1))


class LRASPPHead(nn.Module):
    """Lite R-ASPP (Howard et al., MobileNetV3) on a low- and a high-level feature map.

    The global-context branch averages over H and W with ``mean`` so that it exports to ONNX
    as ``ReduceMean`` on any input size.
    """

    def __init__(self, low_channels: int, high_channels: int, num_classes: int, inter: int = 128) -> None:
        super().__init__()
        self.cbr = conv_bn_relu(high_channels, inter)
        self.scale = nn.Sequential(nn.Conv2d(high_channels, inter, 1, bias=False), nn.Sigmoid())
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)
        self.high_classifier = nn.Conv2d(inter, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        x = self.cbr(high) * self.scale(high.mean(dim=(2, 3), keepdim=True))
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.low_classifier(low) + self.high_classifier(x)


class UpBlock(nn.Module):
    """Upsample x2 (transposed conv or bilinear + conv), concatenate the skip, fuse."""

    def __init__(self, cin: int, skip: int, cout: int, mode: str) -> None:
        super().__init__()
        if mode not in ("deconv", "bilinear"):
            raise ValueError(f"upsampling mode must be 'deconv' or 'bilinear', got {mode!r}")
        self.mode = mode
        if mode == "deconv":
            self.up = nn.Sequential(nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False),
                                    nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
        else:
            self.up = conv_bn_relu(cin, cout, 1)
        self.fuse = sep_conv(cout + skip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.mode == "deconv":
            x = self.up(x)[..., : skip.shape[-2], : skip.shape[-1]]  # 2*ceil(h/2) >= h: crop
        else:
            x = F.interpolate(self.up(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, skip], dim=1))


class UNetHead(nn.Module):
    """U-Net-style decoder from stride 32 down to stride 4, logits at stride 4; with
    ``stride2_channels`` one more block fuses the stride-2 features and the logits come at
    stride 2 (thin objects such as poles, 1-3 pixels wide at 360x480, are below one stride-4
    pixel)."""

    def __init__(self, channels: tuple[int, ...], num_classes: int, mode: str,
                 widths: tuple[int, ...] = (96, 64, 48, 24), stride2_channels: int | None = None) -> None:
        super().__init__()
        c4, c8, c16, c32 = channels
        self.up16 = UpBlock(c32, c16, widths[0], mode)
        self.up8 = UpBlock(widths[0], c8, widths[1], mode)
        self.up4 = UpBlock(widths[1], c4, widths[2], mode)
        self.up2 = UpBlock(widths[2], stride2_channels, widths[3], mode) if stride2_channels else None
        self.classifier = nn.Conv2d(widths[3] if self.up2 is not None else widths[2], num_classes, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        f2 = feats[0] if self.up2 is not None else None
        f4, f8, f16, f32 = feats[-4:]
        x = self.up16(f32, f16)
        x = self.up8(x, f8)
        x = self.up4(x, f4)
        if self.up2 is not None:
            x = self.up2(x, f2)
        return self.classifier(x)
