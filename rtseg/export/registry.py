"""The model registry: one YAML file per model, built-ins in ``rtseg/configs/models/``.

The built-in entries ship inside the package (package data), so their names work in any
install. More folders are read only when named: ``--registry DIR`` or ``$RTSEG_MODELS_DIR``;
a built-in entry wins over a user entry of the same name (which is skipped with a warning).

Example entry::

    name: lraspp-mbv3-voc
    arch: torchvision:lraspp_mobilenet_v3_large   # or rtseg:<arch> from rtseg.models
    classes: voc                                   # or camvid, or a list of names
    palette: default                               # or a list of [r, g, b]; default for the classes
    input_size: [360, 480]                         # [height, width]
    mean: imagenet                                 # or [r, g, b] on 0..1 pixels
    std: imagenet
    channel_order: RGB
    weights:                                       # one of:
      torchvision: COCO_WITH_VOC_LABELS_V1         #   torchvision weight enum member
      # url: https://.../model.pth                 #   URL, downloaded once into the cache
      # sha256: 0123...                            #   required with url
      # path: ~/models/camvid.pt                   #   local file (.pt/.pth/.safetensors)
      # train: rtseg train --data ... --out runs/x #   no weights ship: a training recipe
    source: torchvision LR-ASPP MobileNetV3-Large, COCO subset with VOC labels
    license: BSD-3-Clause
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtseg.contract import CAMVID_CLASSES, CAMVID_PALETTE, IMAGENET_MEAN, IMAGENET_STD, ModelInfo, default_palette
from rtseg.errors import ModelError
from rtseg.yamlfile import load_yaml

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "configs" / "models"
REGISTRY_ENV = "RTSEG_MODELS_DIR"

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
CLASS_SETS = {
    "camvid": (CAMVID_CLASSES, CAMVID_PALETTE),
    "voc": (VOC_CLASSES, tuple(default_palette(len(VOC_CLASSES)))),
}
WEIGHT_KINDS = ("torchvision", "url", "path", "train")
_KEYS = {"name", "arch", "classes", "palette", "input_size", "mean", "std", "channel_order",
         "weights", "source", "license", "description"}


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: how to build a model and what it declares about itself."""

    name: str
    arch: str
    info: ModelInfo
    weights: dict[str, str] = field(default_factory=dict)
    description: str = ""
    path: Path | None = None

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.info.classes)


def registry_dirs(user_dirs: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """Folders read for ``*.yaml`` entries, in order: built-ins, ``$RTSEG_MODELS_DIR``, ``user_dirs``.

    Raises:
        ModelError: a folder in ``user_dirs`` (``--registry DIR``) does not exist.
    """
    dirs = [BUILTIN_DIR]
    env = os.environ.get(REGISTRY_ENV)
    if env:
        if Path(env).expanduser().is_dir():
            dirs.append(Path(env).expanduser())
        else:
            log.warning("$%s=%s is not a folder; ignored", REGISTRY_ENV, env)
    for folder in map(Path, user_dirs):
        if not folder.expanduser().is_dir():
            raise ModelError(f"--registry {folder}: not a folder")
        dirs.append(folder.expanduser())
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def parse_spec(data: Any, path: Path | None = None) -> ModelSpec:
    """Validate one YAML document and turn it into a :class:`ModelSpec`.

    Raises:
        ModelError: a key is unknown, missing or malformed (names the file and the key).
    """
    where = str(path) if path else "model entry"
    if not isinstance(data, dict):
        raise ModelError(f"{where}: expected a mapping of keys, got {type(data).__name__}")
    unknown = set(data) - _KEYS
    if unknown:
        raise ModelError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: "
                         f"{', '.join(sorted(_KEYS))}")
    for key in ("arch", "classes"):
        if key not in data:
            raise ModelError(f"{where}: missing required key {key!r}")
    name = str(data.get("name") or (path.stem if path else "model"))
    classes, palette = _classes(data["classes"], data.get("palette", "default"), where)
    weights = data.get("weights") or {}
    if not isinstance(weights, dict) or (weights and not any(k in weights for k in WEIGHT_KINDS)):
        raise ModelError(f"{where}: 'weights' must be a mapping with one of {', '.join(WEIGHT_KINDS)}")
    if "url" in weights and not weights.get("sha256"):
        raise ModelError(f"{where}: weights 'url' needs a 'sha256' to verify the download")
    try:
        info = ModelInfo(
            name=name, classes=classes, palette=palette,
            input_size=_size(data.get("input_size"), where),
            mean=_triple(data.get("mean", "imagenet"), IMAGENET_MEAN, "mean", where),
            std=_triple(data.get("std", "imagenet"), IMAGENET_STD, "std", where),
            channel_order=str(data.get("channel_order", "RGB")).upper(),
            output="logits", source=str(data.get("source", "")), license=str(data.get("license", "")),
        )
    except ValueError as exc:
        raise ModelError(f"{where}: {exc}") from None
    return ModelSpec(name=name, arch=str(data["arch"]), info=info,
                     weights={k: str(v) for k, v in weights.items()},
                     description=str(data.get("description", "")), path=path)


def _classes(classes: Any, palette: Any, where: str) -> tuple[tuple[str, ...], tuple]:
    if isinstance(classes, str):
        if classes.lower() not in CLASS_SETS:
            raise ModelError(f"{where}: classes {classes!r} is not a known set "
                             f"({', '.join(CLASS_SETS)}) or a list of names")
        names, default = CLASS_SETS[classes.lower()]
    elif isinstance(classes, list) and classes and all(isinstance(c, (str, int)) for c in classes):
        names, default = tuple(str(c) for c in classes), tuple(default_palette(len(classes)))
    else:
        raise ModelError(f"{where}: 'classes' must be a class-set name or a non-empty list of names")
    if palette in (None, "default"):
        return tuple(names), tuple(default)
    if (isinstance(palette, list) and len(palette) >= len(names)
            and all(isinstance(c, list) and len(c) == 3 and all(0 <= int(v) <= 255 for v in c)
                    for c in palette)):
        return tuple(names), tuple(tuple(int(v) for v in c) for c in palette)
    raise ModelError(f"{where}: 'palette' must be 'default' or a list of {len(names)} [r, g, b] in 0..255")


def _size(value: Any, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return int(value[0]), int(value[1])
    raise ModelError(f"{where}: 'input_size' must be [height, width] positive integers, got {value!r}")


def _triple(value: Any, default: tuple, key: str, where: str) -> tuple[float, float, float]:
    if value == "imagenet":
        return tuple(default)
    if isinstance(value, list) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value):
        return tuple(float(v) for v in value)
    raise ModelError(f"{where}: {key!r} must be 'imagenet' or 3 numbers, got {value!r}")


def load_spec(path: str | os.PathLike) -> ModelSpec:
    """Read one registry YAML file."""
    path = Path(path)
    return parse_spec(load_yaml(path, ModelError), path)


def load_registry(user_dirs: Sequence[str | os.PathLike] = ()) -> dict[str, ModelSpec]:
    """All registry entries by name: the built-ins, then ``$RTSEG_MODELS_DIR`` and ``user_dirs``.

    The first entry of a name wins, so a user entry never replaces a built-in; it is skipped
    with a warning naming both files.
    """
    specs: dict[str, ModelSpec] = {}
    for folder in registry_dirs(user_dirs):
        for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
            spec = load_spec(path)
            if spec.name in specs:
                log.warning("registry: %s skipped: %s already defines %r (rename the entry)",
                            path, specs[spec.name].path, spec.name)
                continue
            specs[spec.name] = spec
    return specs
