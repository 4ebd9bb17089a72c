"""How sure the model is: the contract's optional ``confidence`` output, used live.

A model exported by ``rtseg export`` outputs, beside its label map, the top-class
probability of every pixel as uint8 (``round(255 * p)``, see :data:`CONFIDENCE_OUTPUT`).
The engine puts it on ``Frame.confidence``; :class:`ConfidenceGate` applies
``--min-confidence P``: pixels below ``P`` get the label :data:`UNKNOWN_LABEL`, which the
renderer leaves unpainted, the masks write as 255 and the stats count as ``unknown``. The
HUD and the stats JSONL report :func:`mean_confidence` per frame.

Example:
    >>> import numpy as np
    >>> labels = np.array([[1, 2]], np.uint8); confidence = np.array([[250, 90]], np.uint8)
    >>> gate_labels(labels, confidence, threshold_uint8(0.5)).tolist()
    [[1, 255]]
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from rtseg.contract import CONFIDENCE_OUTPUT
from rtseg.errors import OptionError
from rtseg.realtime.frame import Frame
from rtseg.realtime.wrapper import EngineWrapper

__all__ = ["CONFIDENCE_OUTPUT", "DEFAULT_MIN_CONFIDENCE", "UNKNOWN_LABEL", "ConfidenceGate", "gate_engine",
           "gate_labels", "mean_confidence", "split_unknown", "threshold_uint8", "top_probability_uint8"]

UNKNOWN_LABEL = 255  # label of pixels below --min-confidence (models with up to 255 classes)
# On CamVid val, camvid-road's pixels below 0.5 are more often wrong than right, and above it
# more often right: the break-even point (docs/models/camvid-road.md, "Confidence").
DEFAULT_MIN_CONFIDENCE = 0.5
UNKNOWN_NAME = "unknown"


def top_probability_uint8(logits):
    """Torch logits (N, C, H, W) -> uint8 (N, H, W): ``round(255 * max softmax)``.

    Written as ``1 / sum(exp(l - max l))`` (no Softmax over the channel axis, which
    onnxruntime runs through a transpose); used by the exporter inside the graph.
    """
    import torch

    top = logits.amax(dim=1, keepdim=True)
    probability = 1.0 / (logits - top).exp().sum(dim=1)
    return (probability * 255.0).round().to(torch.uint8)


def threshold_uint8(min_confidence: float) -> int:
    """``P`` in 0..1 -> the uint8 value a pixel's confidence must reach: ``c / 255 >= P``."""
    if not 0.0 <= min_confidence <= 1.0:
        raise OptionError(f"min_confidence must be between 0 and 1, got {min_confidence}")
    return math.ceil(round(min_confidence * 255, 6))


def gate_labels(labels: np.ndarray, confidence: np.ndarray, threshold: int) -> np.ndarray:
    """A new label map with :data:`UNKNOWN_LABEL` where ``confidence < threshold`` (uint8)."""
    if threshold <= 0:
        return labels
    gated = labels.copy()
    gated[confidence < threshold] = UNKNOWN_LABEL
    return gated


def mean_confidence(frame: Frame) -> float | None:
    """Mean top-class probability (0..1) over the frame's pixels; None without a confidence map."""
    if frame.confidence is None:
        return None
    return float(cv2.mean(frame.confidence)[0]) / 255.0


def split_unknown(labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, int]:
    """Pixel count per label (at least ``num_classes`` entries) and the count of unknown pixels.

    :data:`UNKNOWN_LABEL` counts as unknown only for models with fewer classes than it.
    """
    counts = np.bincount(labels.ravel(), minlength=num_classes)
    if num_classes > UNKNOWN_LABEL or counts.size <= UNKNOWN_LABEL:
        return counts, 0
    unknown = int(counts[UNKNOWN_LABEL])
    counts = counts[:UNKNOWN_LABEL]
    used = np.flatnonzero(counts)
    return counts[:max(num_classes, int(used[-1]) + 1 if used.size else 0)], unknown


def has_confidence(engine) -> bool:
    """True when ``engine`` (or the engine it wraps) sets ``Frame.confidence``."""
    while engine is not None:
        if getattr(engine, "confidence_name", None):
            return True
        engine = getattr(engine, "engine", None)
    return False


def gate_engine(engine, min_confidence: float | None):
    """``engine`` behind a :class:`ConfidenceGate` when ``min_confidence`` asks for one.

    None: :data:`DEFAULT_MIN_CONFIDENCE` when the model has a confidence output, else no gate;
    0: no gate; above 0: a gate (an error when the model has no confidence output).
    """
    if min_confidence is None:
        min_confidence = DEFAULT_MIN_CONFIDENCE if has_confidence(engine) else 0.0
    return ConfidenceGate(engine, min_confidence) if min_confidence > 0 else engine


class ConfidenceGate(EngineWrapper):
    """An engine wrapper: run ``engine``, then mark pixels below ``min_confidence`` unknown.

    Raises:
        OptionError: ``engine`` gives no confidence map, or has too many classes for an
            unknown label.
    """

    def __init__(self, engine, min_confidence: float) -> None:
        if not has_confidence(engine):
            raise OptionError(f"--min-confidence needs a model with a '{CONFIDENCE_OUTPUT}' output; "
                              f"{engine.info.name} has none (re-export it with rtseg export)")
        if len(engine.info.classes) > UNKNOWN_LABEL:
            raise OptionError(f"--min-confidence needs a model with at most {UNKNOWN_LABEL} classes "
                              f"(label {UNKNOWN_LABEL} marks unknown pixels)")
        super().__init__(engine)
        self.threshold = threshold_uint8(min_confidence)

    def segment(self, frame: Frame) -> None:
        """The wrapped engine's labels, with unknown where the confidence is below the threshold."""
        self.engine.segment(frame)
        if frame.confidence is not None:
            frame.labels = gate_labels(frame.labels, frame.confidence, self.threshold)
