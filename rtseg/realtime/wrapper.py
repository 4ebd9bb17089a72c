"""The base of engines that wrap another engine (keyframes, instances, the confidence gate, the
thread tuner): one place for what every wrapper repeats."""

from __future__ import annotations

from typing import Any

import numpy as np

from rtseg.realtime.frame import Frame


class EngineWrapper:
    """An engine around ``engine``: ``info``, ``provider`` and ``path`` come from it, calling the
    wrapper segments one image, and any other attribute (``reset``, ``session``...) is the
    wrapped engine's. Subclasses override :meth:`segment` and set ``stateful = True`` when
    consecutive frames must go through them in order (see :mod:`rtseg.realtime.streams`)."""

    stateful = False

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.info, self.provider = engine.info, engine.provider
        self.path = getattr(engine, "path", None)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Label map of one image (for a stateful wrapper: the next frame of a video)."""
        frame = Frame(image=image, index=0)
        self.segment(frame)
        return frame.labels

    def segment(self, frame: Frame) -> None:
        self.engine.segment(frame)

    def __getattr__(self, name: str) -> Any:
        if name == "engine":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.engine, name)
