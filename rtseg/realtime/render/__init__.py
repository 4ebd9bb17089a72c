"""Turn a segmented Frame into the image people see: a view plus optional legend and HUD."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rtseg.contract import ModelInfo
from rtseg.realtime.frame import Frame
from rtseg.realtime.render.hud import Hud
from rtseg.realtime.render.legend import Legend
from rtseg.realtime.render.palette import color_lut, resolve_classes, visible_lut
from rtseg.realtime.render.views import VIEW_MODES, render_view

__all__ = ["Renderer", "ViewState", "VIEW_MODES"]


@dataclass
class ViewState:
    """What the viewer chose; the window sink changes it from key presses."""

    mode: str = "overlay"
    paused: bool = False

    def __post_init__(self) -> None:
        if self.mode not in VIEW_MODES:
            raise ValueError(f"view mode must be one of {', '.join(VIEW_MODES)}, got {self.mode!r}")

    def next_mode(self) -> str:
        """Cycle to the next view mode and return it."""
        self.mode = VIEW_MODES[(VIEW_MODES.index(self.mode) + 1) % len(VIEW_MODES)]
        return self.mode


class Renderer:
    """Colour the label map, blend it, then apply the legend and HUD annotators.

    Example:
        >>> from rtseg.contract import ModelInfo
        >>> r = Renderer(ModelInfo(classes=("bg", "fg"), palette=((0, 0, 0), (255, 0, 0))), view="mask")
        >>> f = Frame(np.zeros((2, 2, 3), np.uint8), 0, labels=np.array([[0, 1], [1, 0]], np.uint8))
        >>> r.render(f)[0, 1].tolist()  # BGR of class 1
        [0, 0, 255]
    """

    def __init__(self, info: ModelInfo, *, view: str = "overlay", alpha: float = 0.5,
                 classes: Sequence[str] | None = None, hide: Sequence[str] | None = None,
                 legend: bool = False, hud_lines: Callable[[], list[str]] | None = None) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
        self.info = info
        self.alpha = alpha
        self.state = ViewState(view)
        self.lut = color_lut(info)
        self.visible = visible_lut(resolve_classes(info, classes or []) or None,
                                   resolve_classes(info, hide or []) or None)
        self.annotators = []
        if legend:
            self.annotators.append(Legend(info, self.lut, self.visible))
        if hud_lines is not None:
            self.annotators.append(Hud(hud_lines))

    def render(self, frame: Frame) -> np.ndarray:
        """The annotated image for ``frame`` (a new array; the frame is not modified)."""
        if frame.labels is None:
            raise ValueError(f"frame {frame.index} has no labels to render")
        t0 = time.perf_counter()
        image = render_view(self.state.mode, frame.image, frame.labels, self.lut, self.visible, self.alpha)
        for annotator in self.annotators:
            image = annotator.annotate(image)
        frame.timings["render"] = time.perf_counter() - t0
        return image
