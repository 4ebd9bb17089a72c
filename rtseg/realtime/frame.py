"""The one record that travels the pipeline: a frame and what each stage adds to it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rtseg.realtime.instances.records import FrameInstances


@dataclass
class Frame:
    """A BGR image with its position in the source, filled in stage by stage.

    Attributes:
        image: H x W x 3 uint8, BGR (OpenCV order).
        index: 0-based position of the frame in its source.
        pts: presentation timestamp in ``time_base`` units, or None (cameras, images).
        time_base: unit of ``pts`` in seconds.
        capture_time: ``time.perf_counter()`` when the source delivered the frame.
        name: a name for per-frame outputs (image file stem), optional.
        labels: H x W uint8 class-index map, set by the engine.
        timings: seconds spent per stage ("decode", "preprocess", "infer", ...).
        passthrough: packets of other streams (audio) to mux after this frame, in order.
        inferred: True when the model ran on this frame, False when its labels were
            propagated from a keyframe (``--infer-every``).
        confidence: H x W uint8 top-class probability x 255 (the model's ``confidence``
            output, at the image's size), or None when the model has none.
        instances: the frame's instances, tracks and counts (``--instances``), set once per
            frame by the instance stage; the annotator, JSONL, HUD and preview read it.
        seq: the frame's position among the frames the pipeline read (set by its capture
            thread); with several inference streams, frames are written back in this order.

    Example:
        >>> f = Frame(image=np.zeros((2, 4, 3), np.uint8), index=0)
        >>> f.size
        (4, 2)
    """

    image: np.ndarray
    index: int
    pts: int | None = None
    time_base: Fraction | None = None
    capture_time: float = field(default_factory=time.perf_counter)
    name: str | None = None
    labels: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    passthrough: list[Any] = field(default_factory=list)
    inferred: bool = True
    confidence: np.ndarray | None = None
    instances: FrameInstances | None = None
    seq: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.image, np.ndarray) and self.image.dtype == np.uint8
                and self.image.ndim == 3 and self.image.shape[2] == 3):
            shape = getattr(self.image, "shape", None)
            dtype = getattr(self.image, "dtype", type(self.image).__name__)
            raise ValueError(f"Frame.image must be H x W x 3 uint8, got shape {shape} dtype {dtype}")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image."""
        return self.image.shape[1], self.image.shape[0]

    @property
    def seconds(self) -> float | None:
        """The frame's timestamp in seconds, when the source has one."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)
