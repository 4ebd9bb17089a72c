"""Instance-segmentation architectures (Mask R-CNN, torchvision) shared by training and export.

- ``maskrcnn_resnet50_fpn_v2``: torchvision's Mask R-CNN v2 (ResNet-50 FPN, 46 M parameters);
  COCO weights from a local file (``--weights``), e.g. torchvision's
  ``maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth``.
- ``maskrcnn_mobilenet_v3_large_fpn``: torchvision's Mask R-CNN heads on the MobileNetV3-Large
  FPN backbone of ``fasterrcnn_mobilenet_v3_large_fpn`` (torchvision has no MobileNet Mask
  R-CNN of its own); a local ``fasterrcnn_mobilenet_v3_large_fpn`` COCO checkpoint fills
  everything but the mask head.

Both take a list of RGB float images in 0..1 and normalise and resize inside (the image's
shorter side to ``min_size``, the longer at most ``max_size``). The MobileNet backbone's batch
norm is frozen (as in torchvision's mobile detectors); ResNet-50 v2's is torchvision's
trainable one, and ``rtseg train --task instance`` keeps every batch norm's statistics fixed,
so fine-tuning on batches of one or two images is stable.

Example:
    >>> model = build_instance_model("maskrcnn_mobilenet_v3_large_fpn", num_classes=3, min_size=160)
    >>> sorted(model.eval()([torch.rand(3, 120, 160)])[0])
    ['boxes', 'labels', 'masks', 'scores']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtseg.errors import ModelError

if TYPE_CHECKING:
    import torch
    from torch import nn

INSTANCE_ARCHITECTURES = ("maskrcnn_resnet50_fpn_v2", "maskrcnn_mobilenet_v3_large_fpn")
COCO_SOURCE = "torchvision Mask R-CNN (COCO categories)"


def build_instance_model(arch: str, num_classes: int, *, min_size: int = 800, max_size: int = 1333,
                         score_threshold: float = 0.05, detections: int = 100, **options) -> nn.Module:
    """A randomly initialised Mask R-CNN of ``arch`` with ``num_classes`` classes (background included).

    Args:
        arch: one of :data:`INSTANCE_ARCHITECTURES`.
        num_classes: classes including the background at index 0.
        min_size, max_size: the internal resize of the input image.
        score_threshold: detections below this score are dropped inside the model.
        detections: at most this many detections per image.
        options: more keywords of torchvision's ``MaskRCNN`` (e.g. ``box_batch_size_per_image``).

    Raises:
        ModelError: unknown architecture or fewer than 2 classes.
    """
    if arch not in INSTANCE_ARCHITECTURES:
        raise ModelError(f"unknown instance architecture {arch!r}; choose one of {', '.join(INSTANCE_ARCHITECTURES)}")
    if num_classes < 2:
        raise ModelError(f"an instance model needs the background and at least one class, got {num_classes}")
    from torchvision.models.detection import MaskRCNN, maskrcnn_resnet50_fpn_v2
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import _mobilenet_extractor
    from torchvision.models.mobilenetv3 import mobilenet_v3_large
    from torchvision.ops import misc as misc_nn_ops

    options = dict(min_size=min_size, max_size=max_size, box_score_thresh=score_threshold,
                   box_detections_per_img=detections, **options)
    if arch == "maskrcnn_resnet50_fpn_v2":
        return maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=num_classes, **options)
    backbone = mobilenet_v3_large(weights=None, norm_layer=misc_nn_ops.FrozenBatchNorm2d)
    backbone = _mobilenet_extractor(backbone, True, 6)
    anchors = AnchorGenerator(((32, 64, 128, 256, 512),) * 3, ((0.5, 1.0, 2.0),) * 3)
    return MaskRCNN(backbone, num_classes, rpn_anchor_generator=anchors, **options)


def calibrate_random_init(model: nn.Module, image: torch.Tensor) -> nn.Module:
    """Give an untrained model varied outputs: every batch norm's statistics from one image.

    With random weights and batch norm at its initial statistics, activations shrink layer
    after layer (about 1e-8 at the end of the MobileNet backbone), so every detection gets
    the same score and PyTorch and onnxruntime break the ties differently. Setting each
    batch norm's running mean and variance from its input on ``image`` (in forward order, in
    one pass) keeps activations near unit scale, as after training. For random-init exports
    and tests only; trained weights are never touched by this.
    """
    import torch
    from torch import nn
    from torchvision.ops import misc as misc_nn_ops

    def calibrate(module, inputs, output):
        x = inputs[0]
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        module.running_var.copy_(x.var(dim=(0, 2, 3)) + 1e-3)
        return module(x)  # normalised with the new statistics (the hook is off for this call)

    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, misc_nn_ops.FrozenBatchNorm2d))]
    hooks = [m.register_forward_hook(_once(calibrate)) for m in norms]
    try:
        with torch.no_grad():
            model.eval()([image])
    finally:
        for hook in hooks:
            hook.remove()
        for norm in norms:
            norm.__dict__.pop("_calibrated", None)
    return model


def _once(hook):
    def wrapped(module, inputs, output):
        if getattr(module, "_calibrated", False):
            return output
        module._calibrated = True
        return hook(module, inputs, output)

    return wrapped


def coco_categories() -> list[str]:
    """torchvision's 91 COCO category names (index = label, ``__background__`` first, ``N/A`` gaps)."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights

    return list(MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.meta["categories"])


def load_instance_weights(model: nn.Module, state: dict, source: str) -> list[str]:
    """Load matching tensors (same name and shape) into ``model``; returns the names left as they were.

    A Faster R-CNN checkpoint fills a Mask R-CNN's backbone, RPN and box head; a checkpoint with
    other classes fills everything but the class-specific predictors.

    Raises:
        ModelError: nothing in ``state`` fits the model.
    """
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    if not fitting:
        raise ModelError(f"{source}: no tensor fits the architecture (names or shapes differ)")
    model.load_state_dict(fitting, strict=False)
    return sorted(set(own) - set(fitting))
