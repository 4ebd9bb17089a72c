"""Resolve a model name to a PyTorch module plus the :class:`ModelInfo` it declares.

Names, in lookup order:

- a ``rtseg train`` checkpoint (``model_best.pth``): it names its arch, classes and mean/std;
- a built-in model name (``camvid-road``) or an rtseg ``.onnx`` file: the network rebuilt
  from its initializers (:mod:`rtseg.export.from_onnx`);
- a registry entry (:mod:`rtseg.export.registry`), e.g. ``lraspp-mbv3-voc``;
- ``torchvision:<name>`` or a bare torchvision name, e.g. ``lraspp_mobilenet_v3_large``;
- ``rtseg:<arch>`` or a bare architecture name from :mod:`rtseg.models` (shared with training).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from rtseg import checkpoint
from rtseg.contract import CAMVID_CLASSES, CAMVID_PALETTE, IMAGENET_MEAN, IMAGENET_STD, ModelInfo, default_palette
from rtseg.errors import ModelError
from rtseg.export import registry, torchvision_models
from rtseg.export.weights import load_state_dict, resolve_weights_file


@dataclass
class BuiltModel:
    """A module ready to export and what it declares (``info.extra["arch"]`` names the architecture)."""

    module: nn.Module
    info: ModelInfo


def rtseg_architectures() -> tuple[str, ...]:
    """Architectures defined in :mod:`rtseg.models`."""
    from rtseg.models import ARCHITECTURES

    return ARCHITECTURES


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
          pretrained: bool = True, registry_dirs: Sequence[str | os.PathLike] = ()) -> BuiltModel:
    """Build a model by checkpoint, registry name or architecture name.

    Args:
        name: checkpoint file, registry entry or architecture (see the module docstring).
        weights: local checkpoint (``.pt``/``.pth``/``.safetensors``) overriding the entry's.
        num_classes: classes for a bare architecture (default: CamVid's 11).
        pretrained: load the registry entry's weights (False: random init, no network).
        registry_dirs: user registry folders (``--registry DIR``), read after the built-ins.
    """
    path = Path(name).expanduser()
    if path.suffix in checkpoint.SUFFIXES and path.is_file():
        return build_checkpoint(path)
    onnx_file = builtin_onnx(name) or (path if path.suffix.lower() == ".onnx" and path.is_file() else None)
    if onnx_file is not None:
        return build_onnx(onnx_file)
    specs = registry.load_registry(registry_dirs)
    if name in specs:
        return build_spec(specs[name], weights=weights, pretrained=pretrained)
    return build_bare(name, weights=weights, num_classes=num_classes)


def builtin_onnx(name: str) -> Path | None:
    """The packaged ONNX file of a built-in model name (``camvid-road``), or None."""
    from rtseg.assets import builtin_model_files

    return builtin_model_files().get(name)


def build_onnx(path: Path) -> BuiltModel:
    """The network of an rtseg ONNX file, rebuilt from its initializers, with the info it declares."""
    from rtseg.export.from_onnx import rebuild_from_onnx

    module, info = rebuild_from_onnx(path)
    return BuiltModel(module, info)


def build_bare(name: str, weights: str | None = None, num_classes: int | None = None) -> BuiltModel:
    """An architecture by name, random init or ``weights``; CamVid classes unless ``num_classes`` differs."""
    arch = builtin_names().get(name, name)
    if num_classes is None or num_classes == len(CAMVID_CLASSES):
        classes, palette = CAMVID_CLASSES, CAMVID_PALETTE
    else:
        classes, palette = tuple(f"class{i}" for i in range(num_classes)), tuple(default_palette(num_classes))
    module = build_arch(arch, len(classes))
    source = "random initialisation"
    if weights:
        load_weights(module, load_state_dict(weights), weights)
        source = f"local file {weights}"
    info = ModelInfo(name=name.split(":")[-1], classes=classes, palette=palette, source=source,
                     extra={"arch": arch})
    return BuiltModel(module.eval(), info)


def build_checkpoint(path: Path) -> BuiltModel:
    """Build from a ``rtseg train`` checkpoint (:class:`rtseg.checkpoint.BestCheckpoint` keys)."""
    ckpt = checkpoint.read_checkpoint(path)
    if not checkpoint.is_training_checkpoint(ckpt):
        raise ModelError(f"{path}: not an rtseg training checkpoint (needs keys "
                         f"{', '.join(checkpoint.REQUIRED_KEYS)}); give an architecture name and --weights {path}")
    module = checkpoint.model_from_checkpoint(ckpt, path)
    num_classes = int(ckpt["num_classes"])
    classes = tuple(ckpt.get("classes") or ())[:num_classes] or tuple(f"class{i}" for i in range(num_classes))
    palette = CAMVID_PALETTE if classes == CAMVID_CLASSES else tuple(default_palette(num_classes))
    val_size = (ckpt.get("args") or {}).get("val_size")
    info = ModelInfo(name=path.parent.name or path.stem, classes=classes, palette=palette,
                     input_size=tuple(val_size) if val_size and len(val_size) == 2 else None,
                     mean=tuple(ckpt.get("mean") or IMAGENET_MEAN), std=tuple(ckpt.get("std") or IMAGENET_STD),
                     source=f"rtseg train checkpoint {path.name} (epoch {ckpt.get('epoch', '?')})",
                     extra={"arch": f"rtseg:{ckpt['arch']}"})
    return BuiltModel(module, info)


def build_spec(spec: registry.ModelSpec, weights: str | None = None, pretrained: bool = True) -> BuiltModel:
    """Build a registry entry: architecture, then weights (local override, torchvision, URL, path).

    Raises:
        ModelError: the entry is a training recipe and no ``weights`` are given.
    """
    if pretrained and not weights and "train" in spec.weights:
        note = f"; {spec.description}" if spec.description else ""
        raise ModelError(f"{spec.name} is a training recipe and ships no weights: train it "
                         f"({spec.weights['train']}), then pass --weights RUN/model_best.pth "
                         f"(or --random-init){note}")
    tv = spec.weights.get("torchvision") if pretrained and not weights else None
    module = build_arch(spec.arch, spec.num_classes, torchvision_weights=tv)
    if weights:
        file, source = resolve_weights_file(path=weights), f"local file {weights}"
    elif pretrained and ("path" in spec.weights or "url" in spec.weights):
        file = resolve_weights_file(path=spec.weights.get("path"), url=spec.weights.get("url"),
                                    sha256=spec.weights.get("sha256"))
        source = spec.info.source or spec.weights.get("url") or spec.weights.get("path", "")
    else:
        file, source = None, (spec.info.source if tv else "random initialisation")
    if file is not None:
        load_weights(module, load_state_dict(file), str(file))
    info = dataclasses.replace(spec.info, source=source or spec.info.source, extra={"arch": spec.arch})
    return BuiltModel(module.eval(), info)


def load_weights(module: nn.Module, state_dict: dict, source: str) -> None:
    """Load a state dict into ``module``; torchvision wrappers take their inner model's keys
    (the training-only ``aux_classifier.*`` keys are dropped)."""
    if isinstance(module, torchvision_models.OutOnly):
        if all(k.startswith("model.") for k in state_dict):
            state_dict = {k[len("model."):]: v for k, v in state_dict.items()}
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("aux_classifier.")}
        module = module.model
    checkpoint.load_state(module, state_dict, source)
