"""The torchvision segmentation models rtseg exports, behind one builder.

torchvision's segmentation models return ``{"out": logits, "aux": ...}``; :class:`OutOnly`
turns that into a plain logits tensor and the auxiliary head is dropped (it is for training).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from rtseg.errors import ModelError, first_line

log = logging.getLogger(__name__)

# name -> (builder in torchvision.models.segmentation, weights enum class name)
TORCHVISION_MODELS: dict[str, tuple[str, str]] = {
    "lraspp_mobilenet_v3_large": ("lraspp_mobilenet_v3_large", "LRASPP_MobileNet_V3_Large_Weights"),
    "deeplabv3_mobilenet_v3_large": ("deeplabv3_mobilenet_v3_large", "DeepLabV3_MobileNet_V3_Large_Weights"),
    "deeplabv3_resnet50": ("deeplabv3_resnet50", "DeepLabV3_ResNet50_Weights"),
    "fcn_resnet50": ("fcn_resnet50", "FCN_ResNet50_Weights"),
}


class OutOnly(nn.Module):
    """Wrap a torchvision segmentation model so that ``forward`` returns the ``out`` logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = self.model(x)
        return out["out"] if isinstance(out, dict) else out


def weights_enum(name: str, member: str = "DEFAULT"):
    """The torchvision weights enum member (no download happens here)."""
    from torchvision.models import segmentation

    builder, enum_name = _entry(name)
    enum = getattr(segmentation, enum_name)
    try:
        return enum.DEFAULT if member == "DEFAULT" else enum[member]
    except KeyError:
        raise ModelError(f"torchvision weights {member!r} not in {enum_name} "
                         f"(have: DEFAULT, {', '.join(m.name for m in enum)})") from None


def weight_categories(name: str, member: str = "DEFAULT") -> tuple[str, ...]:
    """Class names of a torchvision weights enum member, from its metadata (no download)."""
    return tuple(weights_enum(name, member).meta["categories"])


def build_torchvision(name: str, num_classes: int, weights: str | None = None) -> nn.Module:
    """Build a torchvision segmentation model, wrapped by :class:`OutOnly`, in eval mode.

    Args:
        name: a key of :data:`TORCHVISION_MODELS`.
        num_classes: output classes (must match the weights' classes when ``weights`` is set).
        weights: None for random initialisation (no download), or a weights enum member
            name such as ``"DEFAULT"`` / ``"COCO_WITH_VOC_LABELS_V1"`` (downloads via torch hub
            into ``$TORCH_HOME`` on first use).
    """
    from torchvision.models import segmentation

    builder_name, _ = _entry(name)
    builder = getattr(segmentation, builder_name)
    if weights:
        enum = weights_enum(name, weights)
        expected = len(enum.meta["categories"])
        if num_classes != expected:
            raise ModelError(f"torchvision weights {enum} have {expected} classes, not {num_classes}")
        try:
            model = builder(weights=enum)
        except Exception as exc:  # noqa: BLE001 - network / hash errors from torch.hub
            raise ModelError(f"cannot fetch torchvision weights {enum} ({type(exc).__name__}: "
                             f"{first_line(exc)}); put the file in "
                             f"$TORCH_HOME/hub/checkpoints or use a local --weights path") from None
    else:
        model = builder(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
    if getattr(model, "aux_classifier", None) is not None:
        model.aux_classifier = None
    return OutOnly(model).eval()


def _entry(name: str) -> tuple[str, str]:
    try:
        return TORCHVISION_MODELS[name]
    except KeyError:
        raise ModelError(f"unknown torchvision model {name!r}; known: {', '.join(TORCHVISION_MODELS)}") from None
