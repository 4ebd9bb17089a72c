"""Resolve a model name to a PyTorch module plus the :class:`ModelInfo` it declares.

Names, in lookup order:

- a registry entry (``configs/models/*.yaml``), e.g. ``lraspp-mbv3-voc``;
- ``torchvision:<name>`` or a bare torchvision name, e.g. ``lraspp_mobilenet_v3_large``;
- ``rtseg:<arch>`` or a bare architecture name from :mod:`rtseg.models` (shared with training);
- a ``rtseg train`` checkpoint (``model_best.pth``): it names its arch, classes and mean/std.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from rtseg.contract import CAMVID_CLASSES, CAMVID_PALETTE, IMAGENET_MEAN, IMAGENET_STD, ModelInfo, default_palette
from rtseg.errors import ModelError, first_line
from rtseg.export import registry, torchvision_models
from rtseg.export import weights as weights_mod

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


@dataclass
class BuiltModel:
    """A module ready to export, with what it declares and where it came from."""

    module: nn.Module
    info: ModelInfo
    arch: str


def rtseg_architectures() -> tuple[str, ...]:
    """Architectures defined in :mod:`rtseg.models` (empty while that package lacks them)."""
    try:
        from rtseg import models
    except ImportError:
        return ()
    return tuple(getattr(models, "ARCHITECTURES", ()))


def builtin_names() -> dict[str, str]:
    """Built-in architecture names -> ``family:name`` (torchvision and rtseg)."""
    names = {n: f"torchvision:{n}" for n in torchvision_models.TORCHVISION_MODELS}
    names.update({a: f"rtseg:{a}" for a in rtseg_architectures()})
    return names


def build_arch(arch: str, num_classes: int, torchvision_weights: str | None = None) -> nn.Module:
    """Build ``family:name`` (or a bare name) with random init or torchvision weights, in eval mode."""
    family, _, name = arch.partition(":") if ":" in arch else ("", "", arch)
    if family in ("", "torchvision") and name in torchvision_models.TORCHVISION_MODELS:
        return torchvision_models.build_torchvision(name, num_classes, torchvision_weights)
    if family in ("", "rtseg") and name in rtseg_architectures():
        if torchvision_weights:
            raise ModelError(f"{arch}: torchvision weights apply to torchvision models only")
        from rtseg.models import build_model

        return build_model(name, num_classes=num_classes, pretrained=False).eval()
    known = ", ".join(builtin_names())
    raise ModelError(f"unknown architecture {arch!r}; known: {known}")


def build(name: str, weights: str | None = None, num_classes: int | None = None,
          pretrained: bool = True) -> BuiltModel:
    """Build a model by registry name or architecture name.

    Args:
        name: registry entry or architecture (see the module docstring).
        weights: local checkpoint (``.pt``/``.pth``/``.safetensors``) overriding the entry's.
        num_classes: classes for a bare architecture (default: CamVid's 11).
        pretrained: load the registry entry's weights (False: random init, no network).
    """
    if Path(name).suffix in CHECKPOINT_SUFFIXES and Path(name).expanduser().is_file():
        return build_checkpoint(Path(name).expanduser())
    specs = registry.load_registry()
    if name in specs:
        return build_spec(specs[name], weights=weights, pretrained=pretrained)
    arch = builtin_names().get(name, name)
    if num_classes is None:
        classes, palette = CAMVID_CLASSES, CAMVID_PALETTE
    else:
        classes = CAMVID_CLASSES if num_classes == len(CAMVID_CLASSES) else tuple(
            f"class{i}" for i in range(num_classes))
        palette = CAMVID_PALETTE if num_classes == len(CAMVID_CLASSES) else tuple(default_palette(num_classes))
    module = build_arch(arch, len(classes))
    source = "random initialisation"
    if weights:
        load_checkpoint(module, weights_mod.load_state_dict(weights), weights)
        source = f"local file {weights}"
    info = ModelInfo(name=name.split(":")[-1], classes=classes, palette=palette, source=source,
                     extra={"arch": arch})
    return BuiltModel(module.eval(), info, arch)


def build_checkpoint(path: Path) -> BuiltModel:
    """Build from a ``rtseg train`` checkpoint (keys ``model``, ``arch``, ``num_classes``,
    optional ``classes``, ``mean``, ``std``, ``args.val_size``), loaded weights-only."""
    import torch

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{path}: cannot load as a weights-only checkpoint ({first_line(exc)})") from None
    if not isinstance(ckpt, dict) or "arch" not in ckpt or "model" not in ckpt:
        raise ModelError(f"{path}: not an rtseg training checkpoint (no 'arch'/'model'); "
                         f"give an architecture name and --weights {path}")
    num_classes = int(ckpt.get("num_classes") or len(ckpt.get("classes") or ()))
    classes = tuple(ckpt.get("classes") or ())[:num_classes] or tuple(f"class{i}" for i in range(num_classes))
    palette = CAMVID_PALETTE if classes == CAMVID_CLASSES else tuple(default_palette(num_classes))
    module = build_arch(str(ckpt["arch"]), num_classes)
    load_checkpoint(module, weights_mod._unwrap(ckpt, path), str(path))
    val_size = (ckpt.get("args") or {}).get("val_size")
    info = ModelInfo(name=path.parent.name or path.stem, classes=classes, palette=palette,
                     input_size=tuple(val_size) if val_size and len(val_size) == 2 else None,
                     mean=tuple(ckpt.get("mean") or IMAGENET_MEAN), std=tuple(ckpt.get("std") or IMAGENET_STD),
                     source=f"rtseg train checkpoint {path.name} (epoch {ckpt.get('epoch', '?')})",
                     extra={"arch": f"rtseg:{ckpt['arch']}"})
    return BuiltModel(module.eval(), info, f"rtseg:{ckpt['arch']}")


def build_spec(spec: registry.ModelSpec, weights: str | None = None, pretrained: bool = True) -> BuiltModel:
    """Build a registry entry: architecture, then weights (local override, torchvision, URL, path)."""
    tv = spec.weights.get("torchvision") if pretrained and not weights else None
    module = build_arch(spec.arch, spec.num_classes, torchvision_weights=tv)
    if weights:
        file, source = weights_mod.resolve_weights_file(path=weights), f"local file {weights}"
    elif pretrained and ("path" in spec.weights or "url" in spec.weights):
        file = weights_mod.resolve_weights_file(path=spec.weights.get("path"), url=spec.weights.get("url"),
                                                sha256=spec.weights.get("sha256"))
        source = spec.info.source or spec.weights.get("url") or spec.weights.get("path", "")
    else:
        file, source = None, (spec.info.source if tv else "random initialisation")
    if file is not None:
        load_checkpoint(module, weights_mod.load_state_dict(file), str(file))
    info = dataclasses.replace(spec.info, source=source or spec.info.source,
                               extra={"arch": spec.arch})
    return BuiltModel(module.eval(), info, spec.arch)


def load_checkpoint(module: nn.Module, state_dict: dict, source: str) -> None:
    """Load a state dict into ``module``; torchvision wrappers take their inner model's keys
    (the training-only ``aux_classifier.*`` keys are dropped)."""
    if isinstance(module, torchvision_models.OutOnly):
        if all(k.startswith("model.") for k in state_dict):
            state_dict = {k[len("model."):]: v for k, v in state_dict.items()}
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("aux_classifier.")}
        module = module.model
    weights_mod.load_into(module, state_dict, source)
