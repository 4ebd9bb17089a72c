"""The model contract: what an ONNX model says about itself in ``metadata_props``.

Every key is optional; a model without metadata runs with :data:`DEFAULTS` and a warning.
Values are strings (ONNX metadata is string -> string); lists are JSON.

========================  ==========================================  =====================
key                       meaning                                     example
========================  ==========================================  =====================
``rtseg_contract``        contract version                            ``"1"``
``name``                  short model name                            ``"camvid-road"``
``classes``               JSON list of class names, index = label     ``["sky", "road"]``
``palette``               JSON list of ``[r, g, b]`` per class        ``[[128,128,128],...]``
``input_size``            JSON ``[height, width]`` the model expects  ``[360, 480]``
``mean`` / ``std``        JSON per-channel, on pixels scaled to 0..1  ``[0.485,0.456,0.406]``
``channel_order``         ``"RGB"`` or ``"BGR"``                      ``"RGB"``
``output``                ``"logits"`` (N,C,H,W) or ``"labels"``      ``"labels"``
                          (N,H,W) / (N,1,H,W) integer label map
``source``                where the weights come from                 free text
``license``               licence of the weights                      ``"Apache-2.0"``
``things``                JSON list of the classes ``--instances``    ``["car", "person"]``
                          splits into objects (optional)
``task``                  ``"instance"`` for Mask R-CNN models        ``"instance"``
                          (:mod:`rtseg.realtime.instances.maskrcnn`)
========================  ==========================================  =====================

Pre-processing implied by the contract: BGR uint8 frame -> resize to ``input_size``
(bilinear) -> channel order -> float32 / 255 -> ``(x - mean) / std`` -> NCHW.

Outputs: the first is the logits or label map. A label-map model may add a second output
named ``confidence`` (:data:`CONFIDENCE_OUTPUT`): uint8 N x H x W, the top-class (softmax)
probability of each pixel as ``round(255 * p)``; ``rtseg export`` writes it. Models
without it (one output) run as before; ``--min-confidence`` needs it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

CONTRACT_VERSION = "1"
OUTPUT_KINDS = ("logits", "labels")
CONFIDENCE_OUTPUT = "confidence"  # optional second output: uint8 top-class probability x 255
CHANNEL_ORDERS = ("RGB", "BGR")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CAMVID_CLASSES = (
    "sky", "building", "pole", "road", "sidewalk", "tree",
    "sign", "fence", "car", "pedestrian", "bicyclist",
)
CAMVID_PALETTE = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
    (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)
CAMVID_VOID_INDEX = 11


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """A deterministic, well-spread RGB palette (the PASCAL VOC bit-interleaving scheme)."""
    palette = []
    for label in range(num_classes):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette.append((r, g, b))
    return palette


@dataclass(frozen=True)
class ModelInfo:
    """What a model declares about itself (see the module docstring for the keys).

    Example:
        >>> info = ModelInfo(name="toy", classes=("bg", "fg"))
        >>> ModelInfo.from_metadata(info.to_metadata())[0] == info
        True
    """

    name: str = "model"
    classes: tuple[str, ...] = ()
    palette: tuple[tuple[int, int, int], ...] = ()
    input_size: tuple[int, int] | None = None  # (height, width); None: use the frame size
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "RGB"
    output: str = "logits"
    source: str = ""
    license: str = ""
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {self.channel_order!r}")
        if self.output not in OUTPUT_KINDS:
            raise ValueError(f"output must be one of {OUTPUT_KINDS}, got {self.output!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"mean and std need 3 values each, got {self.mean!r} and {self.std!r}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std values must be > 0, got {self.std!r}")
        if self.palette and len(self.palette) < len(self.classes):
            raise ValueError(f"palette has {len(self.palette)} colours for {len(self.classes)} classes")
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) < 1):
            raise ValueError(f"input_size must be [height, width] > 0, got {self.input_size!r}")

    def with_classes(self, num_classes: int) -> ModelInfo:
        """Fill in class names and palette when the model did not declare them."""
        classes = self.classes or tuple(f"class{i}" for i in range(num_classes))
        palette = self.palette or tuple(default_palette(max(num_classes, len(classes))))
        return replace(self, classes=classes, palette=palette)

    def to_metadata(self) -> dict[str, str]:
        """Serialise to ONNX ``metadata_props`` (string -> string)."""
        meta = {
            "rtseg_contract": CONTRACT_VERSION,
            "name": self.name,
            "classes": json.dumps(list(self.classes)),
            "palette": json.dumps([list(c) for c in self.palette]),
            "mean": json.dumps(list(self.mean)),
            "std": json.dumps(list(self.std)),
            "channel_order": self.channel_order,
            "output": self.output,
            "source": self.source,
            "license": self.license,
        }
        if self.input_size is not None:
            meta["input_size"] = json.dumps(list(self.input_size))
        meta.update(self.extra)
        return meta

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], name: str = "model") -> tuple[ModelInfo, list[str]]:
        """Parse ``metadata_props``; returns the info and warnings about what was missing.

        Raises:
            ValueError: a key is present but malformed (names the key and the value).
        """
        warnings: list[str] = []
        if "rtseg_contract" not in meta and "classes" not in meta:
            warnings.append("model has no rtseg metadata; using defaults (ImageNet mean/std, RGB, logits)")
        known = {"rtseg_contract", "name", "classes", "palette", "input_size", "mean", "std",
                 "channel_order", "output", "source", "license"}
        kwargs: dict = {"name": meta.get("name") or name}
        if "classes" in meta:
            kwargs["classes"] = tuple(str(c) for c in _json_list(meta, "classes"))
        if "palette" in meta:
            palette = _json_list(meta, "palette")
            if not all(isinstance(c, list) and len(c) == 3 and all(0 <= int(v) <= 255 for v in c) for c in palette):
                raise ValueError(f"metadata 'palette' must be a list of [r, g, b] in 0..255, got {meta['palette']!r}")
            kwargs["palette"] = tuple(tuple(int(v) for v in c) for c in palette)
        if "input_size" in meta:
            size = _json_list(meta, "input_size")
            if len(size) != 2:
                raise ValueError(f"metadata 'input_size' must be [height, width], got {meta['input_size']!r}")
            kwargs["input_size"] = (int(size[0]), int(size[1]))
        for key in ("mean", "std"):
            if key in meta:
                kwargs[key] = tuple(float(v) for v in _json_list(meta, key))
        for key in ("channel_order", "output", "source", "license"):
            if key in meta:
                kwargs[key] = meta[key].upper() if key == "channel_order" else meta[key]
        kwargs["extra"] = {k: v for k, v in meta.items() if k not in known}
        try:
            return cls(**kwargs), warnings
        except ValueError as exc:
            raise ValueError(f"metadata: {exc}") from None


def _json_list(meta: Mapping[str, str], key: str) -> list:
    try:
        value = json.loads(meta[key])
    except json.JSONDecodeError:
        raise ValueError(f"metadata {key!r} is not valid JSON: {meta[key]!r}") from None
    if not isinstance(value, list):
        raise ValueError(f"metadata {key!r} must be a JSON list, got {meta[key]!r}")
    return value

