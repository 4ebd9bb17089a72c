"""The networks behind :data:`rtseg.models.ARCHITECTURES`: EfficientNet-Lite0/1/2 + LR-ASPP/U-Net, and
torchvision's MobileNetV3 LR-ASPP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rtseg.models.effnet_lite import EfficientNetLiteEncoder
from rtseg.models.heads import LRASPPHead, UNetHead

# MBConv blocks kept per encoder: all but the last block of the stride-32 stage and the 320-channel
# (Lite2: 352) block, i.e. all but the last two; the 1280-channel head is dropped too.
ENCODER_BLOCKS = {"lite0": 14, "lite1": 19, "lite2": 19}
EFFL0_BLOCKS = ENCODER_BLOCKS["lite0"]  # 3 of the 4 stride-32 blocks: ~7.7 MB fp32 in ONNX, ~30 ms at 360x480


class EncoderDecoder(nn.Module):
    """EfficientNet-Lite encoder (``lite0``, ``lite1``, ``lite2``) + LR-ASPP or U-Net decoder, logits
    upsampled to the input."""

    def __init__(self, num_classes: int, decoder: str, pretrained: bool, encoder: str = "lite0") -> None:
        super().__init__()
        self.encoder = EfficientNetLiteEncoder(encoder, ENCODER_BLOCKS[encoder])
        if pretrained:
            self.encoder.load_imagenet()
        c = self.encoder.channels
        self.decoder_name = decoder
        if decoder == "lraspp":
            self.decoder = LRASPPHead(c[1], c[3], num_classes)
        elif decoder.endswith("_s2"):  # U-Net down to stride 2
            self.encoder.with_stride2()
            self.decoder = UNetHead(c, num_classes, mode=decoder.removesuffix("_s2"),
                                    stride2_channels=self.encoder.channels2)
        else:
            self.decoder = UNetHead(c, num_classes, mode=decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        if self.decoder_name == "lraspp":
            logits = self.decoder(feats[-3], feats[-1])
        else:
            logits = self.decoder(feats)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


class TorchvisionLRASPP(nn.Module):
    """torchvision's LR-ASPP MobileNetV3 returning a tensor instead of a dict."""

    def __init__(self, num_classes: int, large: bool) -> None:
        super().__init__()
        from torchvision.models._utils import IntermediateLayerGetter
        from torchvision.models.mobilenetv3 import mobilenet_v3_large, mobilenet_v3_small
        from torchvision.models.segmentation.lraspp import LRASPPHead as TVHead

        backbone = (mobilenet_v3_large if large else mobilenet_v3_small)(
            weights=None, dilated=True).features
        stage = [0] + [i for i, b in enumerate(backbone) if getattr(b, "_is_cn", False)] + [len(backbone) - 1]
        low, high = stage[-4], stage[-1]
        self.backbone = IntermediateLayerGetter(backbone, return_layers={str(low): "low", str(high): "high"})
        self.head = TVHead(backbone[low].out_channels, backbone[high].out_channels, num_classes, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        out = self.head(feats)
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
