"""``rtseg train --init-from``: start from trained weights instead of ImageNet.

The source is a built-in model name (``camvid-road``: its network is rebuilt from the
packaged ONNX file, :mod:`rtseg.export.from_onnx`, with BatchNorm statistics measured on
the built-in demo clip), an rtseg ``.onnx`` file, or a ``.pth`` checkpoint (``rtseg train``'s,
or a plain state dict). Classes are matched by name: the classifier rows of classes both
models have are copied, classes new to the dataset start from scratch, and the log says which.

Example:
    >>> init_from(model, "camvid-road", "effl0_unet_bilinear", ["sky", "road", "puddle"])  # doctest: +SKIP
    'camvid-road (rtseg/assets/camvid-road.onnx): 2 of 3 classes carried over (new: puddle)'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from rtseg import checkpoint
from rtseg.errors import RtsegError

log = logging.getLogger(__name__)


def source_weights(spec: str) -> tuple[dict[str, torch.Tensor], str | None, list[str] | None, str]:
    """(state dict, architecture or None, class names or None, description) of ``spec``."""
    from rtseg.assets import builtin_model_files

    path = builtin_model_files().get(spec) or Path(spec).expanduser()
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise RtsegError(f"--init-from {spec}: no such model file")
        import onnx

        from rtseg.export.from_onnx import onnx_arch, trainable_from_onnx

        arch = onnx_arch(onnx.load(str(path), load_external_data=False))
        module, info = trainable_from_onnx(path)
        return module.state_dict(), arch, list(info.classes), f"{spec} ({path})"
    if path.suffix in checkpoint.SUFFIXES:
        ckpt = checkpoint.read_checkpoint(path)
        state = checkpoint.state_dict_of(ckpt, path)
        if checkpoint.is_training_checkpoint(ckpt):
            return state, str(ckpt["arch"]), list(ckpt.get("classes") or []) or None, str(path)
        return state, None, None, str(path)
    names = ", ".join(builtin_model_files()) or "none"
    raise RtsegError(f"--init-from {spec}: give a built-in model ({names}), an .onnx file or a "
                     f"{'/'.join(checkpoint.SUFFIXES)} checkpoint")


def init_from(model: nn.Module, spec: str, arch: str, classes: Sequence[str]) -> str:
    """Load ``spec``'s weights into ``model`` (in place); returns a one-line summary.

    Raises:
        RtsegError: another architecture, or weights that do not fit apart from the classifier.
    """
    state, source_arch, source_classes, description = source_weights(spec)
    if source_arch is not None and source_arch != arch:
        raise RtsegError(f"--init-from {spec}: its architecture is {source_arch}; train with --arch {source_arch}")
    own = model.state_dict()
    rows = _class_rows(source_classes, classes)
    loaded, skipped = {}, []
    for key, target in own.items():
        value = state.get(key)
        if value is None:
            skipped.append(key)
        elif value.shape == target.shape and (rows is None or not _is_classifier(key, value, source_classes)):
            loaded[key] = value
        elif _is_classifier(key, value, source_classes) and value.shape[1:] == target.shape[1:]:
            merged = target.clone()
            for new, old in (rows or {}).items():
                merged[new] = value[old]
            loaded[key] = merged
        else:
            skipped.append(key)
    if skipped:
        raise RtsegError(f"--init-from {spec}: weights do not fit {arch} ({len(skipped)} tensors, e.g. "
                         f"{', '.join(skipped[:3])})")
    model.load_state_dict(loaded)
    if rows is None:
        return f"{description}: all weights"
    new = [c for i, c in enumerate(classes) if i not in rows]
    return (f"{description}: {len(rows)} of {len(classes)} classes carried over"
            + (f" (new: {', '.join(new)})" if new else ""))


def _class_rows(source: Sequence[str] | None, target: Sequence[str]) -> dict[int, int] | None:
    """Target class index -> source class index for the names both have; None: same classes."""
    if source is None or list(source) == list(target):
        return None
    return {i: list(source).index(name) for i, name in enumerate(target) if name in source}


def _is_classifier(key: str, value: torch.Tensor, source_classes: Sequence[str] | None) -> bool:
    """A per-class tensor: its first dimension is the source's class count (classifier weight/bias)."""
    return (source_classes is not None and "classifier" in key and value.ndim >= 1
            and value.shape[0] == len(source_classes))
