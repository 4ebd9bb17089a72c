"""Checkpoints: the keys ``rtseg train`` writes, and the one place any checkpoint is read or written.

``rtseg train`` writes two plain dicts with ``torch.save``: ``checkpoint.pth`` every epoch
(:class:`TrainCheckpoint`, everything ``--resume`` restores) and ``model_best.pth``
(:class:`BestCheckpoint`, the weights that scored best). Both carry :class:`ModelMeta`, so
evaluation and export rebuild the network from the file alone. Every read is
``torch.load(weights_only=True)`` (:func:`read_checkpoint`): a checkpoint cannot run code.

Example:
    >>> module, ckpt = load_model_checkpoint("runs/camvid-road/model_best.pth")  # doctest: +SKIP
    >>> ckpt["arch"], ckpt["num_classes"]  # doctest: +SKIP
    ('effl0_unet_bilinear', 11)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from rtseg.errors import ModelError, first_line

if TYPE_CHECKING:
    from torch import nn

SUFFIXES = (".pt", ".pth", ".ckpt")
# keys under which training scripts (rtseg's and others') nest the model's state dict
NESTED_KEYS = ("model", "state_dict", "model_state_dict", "model_state")
REQUIRED_KEYS = ("model", "arch", "num_classes")


class ModelMeta(TypedDict):
    """What every ``rtseg train`` checkpoint says about its network."""

    arch: str  # a name of rtseg.models.ARCHITECTURES
    num_classes: int
    classes: list[str]
    ignore_index: int
    mean: list[float]  # per channel, RGB pixels scaled to 0..1
    std: list[float]
    pretrained: bool  # encoder initialised from ImageNet


class BestCheckpoint(ModelMeta):
    """``model_best.pth``: the weights with the best validation mIoU (the EMA weights with ``--ema``)."""

    model: dict[str, Any]  # state dict
    epoch: int
    val_miou: float
    args: dict[str, Any]  # the ``rtseg train`` options, ``vars(args)``


class TrainCheckpoint(ModelMeta):
    """``checkpoint.pth``: what ``--resume`` restores. Files written before ``--ema`` lack ``ema``, files
    written before ``--aux-weight``/``--adversarial`` lack ``aux`` and ``adversarial`` (read as None)."""

    model: dict[str, Any]
    optimizer: dict[str, Any]  # the model's parameters, then the auxiliary heads' (with --aux-weight)
    scheduler: dict[str, Any]
    scaler: dict[str, Any] | None  # CUDA mixed precision only
    ema: dict[str, Any] | None
    aux: dict[str, Any] | None  # --aux-weight: the auxiliary heads' state dict (never part of "model")
    adversarial: dict[str, Any] | None  # --adversarial: {"disc", "optimizer", "scheduler"} state dicts
    epoch: int
    args: dict[str, Any]
    best_miou: float  # -1 before the first validation
    rng: dict[str, Any]  # "torch", "python" and "loader" (data-loader generator) states


def read_checkpoint(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU.

    Raises:
        ModelError: the file is missing, unreadable, or holds more than tensors and plain data.
    """
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError for unsafe pickles, others for junk
        raise ModelError(f"{path}: cannot load as a weights-only checkpoint ({first_line(exc)})") from None


def is_training_checkpoint(obj: Any) -> bool:
    """True for a dict with the keys every ``rtseg train`` checkpoint has."""
    return isinstance(obj, Mapping) and all(key in obj for key in REQUIRED_KEYS)


def read_training_checkpoint(path: str | os.PathLike) -> BestCheckpoint | TrainCheckpoint:
    """Read a ``checkpoint.pth`` or ``model_best.pth``; :class:`ModelError` if it is another kind of file."""
    ckpt = read_checkpoint(path)
    if not is_training_checkpoint(ckpt):
        raise ModelError(f"{path}: not an rtseg training checkpoint (needs keys {', '.join(REQUIRED_KEYS)})")
    return ckpt


def write_checkpoint(ckpt: Mapping[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a checkpoint."""
    import torch

    path = Path(path)
    tmp = path.with_suffix(".tmp")
    torch.save(dict(ckpt), tmp)
    os.replace(tmp, path)


def state_dict_of(obj: Any, source: str | os.PathLike) -> dict[str, Any]:
    """The tensors of a state dict, unwrapped from :data:`NESTED_KEYS` and ``module.``/``_orig_mod.`` prefixes.

    Raises:
        ModelError: ``obj`` holds no state dict.
    """
    if isinstance(obj, Mapping):
        for key in NESTED_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
        tensors = {k: v for k, v in obj.items() if hasattr(v, "shape")}
        if tensors:
            for prefix in ("module.", "_orig_mod."):  # DataParallel, torch.compile
                if all(k.startswith(prefix) for k in tensors):
                    tensors = {k[len(prefix):]: v for k, v in tensors.items()}
            return tensors
    raise ModelError(f"{source}: no state dict found (expected a dict of tensors, "
                     f"optionally under one of {', '.join(NESTED_KEYS)})")


def load_state(module: nn.Module, state_dict: Mapping[str, Any], source: str | os.PathLike) -> None:
    """``module.load_state_dict`` (strict), with one line naming ``source`` when the weights do not fit."""
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = "; ".join(lines[1:3]) if len(lines) > 1 else lines[0] if lines else ""
        raise ModelError(f"{source}: weights do not fit the architecture ({detail[:300]})") from None


def model_from_checkpoint(ckpt: BestCheckpoint | TrainCheckpoint, source: str | os.PathLike) -> nn.Module:
    """The network ``ckpt`` names (:func:`rtseg.models.build_model`) with its weights, in eval mode."""
    from rtseg.models import build_model

    module = build_model(str(ckpt["arch"]), int(ckpt["num_classes"]))
    load_state(module, state_dict_of(ckpt, source), source)
    return module.eval()


def load_model_checkpoint(path: str | os.PathLike) -> tuple[nn.Module, BestCheckpoint | TrainCheckpoint]:
    """The network of an ``rtseg train`` checkpoint with its weights, in eval mode, and the checkpoint."""
    ckpt = read_training_checkpoint(path)
    return model_from_checkpoint(ckpt, path), ckpt
