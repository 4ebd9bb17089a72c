"""The heads-up display: a few lines of live numbers in the top-left corner."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from rtseg.realtime.stats import PipelineStats

FONT = cv2.FONT_HERSHEY_SIMPLEX


def hud_lines(stats: PipelineStats, model: str, provider: str) -> list[str]:
    """Model and device, rates per stage, latency and drops, read from the run's stats."""
    latency = (stats.latency.value or 0.0) * 1000
    return [
        f"{model} on {provider.replace('ExecutionProvider', '')}",
        f"capture {stats.capture_rate.rate():.1f} fps  infer {stats.infer_rate.rate():.1f} fps",
        f"latency {latency:.0f} ms  dropped {stats.dropped}",
    ] + _stage_line(stats) + (["source lost: reconnecting..."] if stats.reconnecting else []) + _keyframe_lines(stats) \
        + (stats.last_instances.summary_lines() if stats.last_instances is not None else []) \
        + ([f"mean confidence {stats.last_confidence:.2f}"] if stats.last_confidence is not None else [])


STAGE_NAMES = {"preprocess": "pre", "infer": "infer", "postprocess": "post", "instances": "inst", "render": "draw",
               "write": "out"}


def _stage_line(stats: PipelineStats) -> list[str]:
    """Milliseconds per stage of the latest frame (capture is mostly waiting, so it is left out)."""
    timings = stats.last_timings
    parts = [f"{short} {1000 * timings[stage]:.1f}" for stage, short in STAGE_NAMES.items() if stage in timings]
    return ["ms: " + "  ".join(parts)] if parts else []


def _keyframe_lines(stats: PipelineStats) -> list[str]:
    """With keyframe inference: frames per second the model ran on and that were propagated."""
    if not stats.propagated:
        return []
    return [f"model {stats.model_rate.rate():.1f} fps  propagated {stats.propagate_rate.rate():.1f} fps"]


class Hud:
    """Annotator: draws ``lines()`` on a darkened box, in place.

    Args:
        lines: called once per frame; returns the text lines to show.
    """

    def __init__(self, lines: Callable[[], list[str]], scale: float = 0.5) -> None:
        self.lines = lines
        self.scale = scale

    def annotate(self, image: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        lines = self.lines()
        if not lines:
            return image
        step = int(20 * self.scale / 0.5)
        width = max(cv2.getTextSize(t, FONT, self.scale, 1)[0][0] for t in lines) + 12
        height = step * len(lines) + 8
        box = image[:height, :width]
        box[:] = (box * 0.35).astype(np.uint8)
        for row, text in enumerate(lines):
            cv2.putText(image, text, (6, 4 + step * (row + 1) - 4), FONT, self.scale, (255, 255, 255), 1, cv2.LINE_AA)
        return image
