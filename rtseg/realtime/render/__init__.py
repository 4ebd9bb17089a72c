"""Turn a segmented Frame into the image people see: a view, then the legend and HUD."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from rtseg.contract import ModelInfo
from rtseg.realtime.confidence import UNKNOWN_LABEL
from rtseg.realtime.controls import VIEW_MODES, Controls
from rtseg.realtime.frame import Frame
from rtseg.realtime.instances.annotator import InstanceAnnotator
from rtseg.realtime.options import RenderOptions
from rtseg.realtime.render.base import Annotator
from rtseg.realtime.render.hud import Hud, hud_lines
from rtseg.realtime.render.legend import Legend
from rtseg.realtime.render.palette import color_lut, resolve_classes, visible_lut
from rtseg.realtime.render.views import colorize, make_view

__all__ = ["VIEW_MODES", "Annotator", "Renderer", "colorize", "hud_lines"]


class Renderer:
    """The view chosen in ``controls`` (read every frame), then the legend and HUD annotators.

    Args:
        info: the model's classes and palette.
        options: what to draw (the initial view and alpha come from ``controls`` when given).
        controls: the run's controls; the window or browser may change view and alpha live.
        hud_lines: the HUD's text, called once per frame; None (or ``options.hud=False``): no HUD.

    Example:
        >>> from rtseg.contract import ModelInfo
        >>> r = Renderer(ModelInfo(classes=("bg", "fg"), palette=((0, 0, 0), (255, 0, 0))), RenderOptions(view="mask"))
        >>> f = Frame(np.zeros((2, 2, 3), np.uint8), 0, labels=np.array([[0, 1], [1, 0]], np.uint8))
        >>> r.render(f)[0, 1].tolist()  # BGR of class 1
        [0, 0, 255]
    """

    def __init__(self, info: ModelInfo, options: RenderOptions | None = None, *,
                 controls: Controls | None = None, hud_lines: Callable[[], list[str]] | None = None) -> None:
        options = options or RenderOptions()
        self.info = info
        self.controls = controls or Controls(view=options.view, alpha=options.alpha)
        self.lut = color_lut(info)
        self._base_visible = visible_lut(resolve_classes(info, options.classes) or None,
                                         resolve_classes(info, options.hide) or None)
        if options.min_confidence != 0 and len(info.classes) <= UNKNOWN_LABEL:  # --min-confidence: unpainted
            self._base_visible[UNKNOWN_LABEL], self.lut[UNKNOWN_LABEL] = False, 0
        self.visible = self._base_visible
        self.annotators: list[Annotator] = []
        if options.legend:
            self.annotators.append(Legend(info, self.lut, self._base_visible))
        if hud_lines is not None and options.hud is not False:
            self.annotators.append(Hud(hud_lines))
        # Tracked instances (frame.instances), under the legend and HUD; their counts go on the HUD when
        # there is one, else in a corner panel.
        self.instances = InstanceAnnotator(self.lut, panel=hud_lines is None or options.hud is False)
        self._view_key: tuple | None = None
        self._view: Annotator | None = None

    def render(self, frame: Frame) -> np.ndarray:
        """The annotated image for ``frame`` (a new array; the frame is not modified)."""
        if frame.labels is None:
            raise ValueError(f"frame {frame.index} has no labels to render")
        t0 = time.perf_counter()
        image = self._current_view().annotate(frame.image, frame.labels)
        if frame.instances is not None:
            image = self.instances.annotate(image, frame.instances, frame.image.shape[1], self.visible)
        for annotator in self.annotators:
            image = annotator.annotate(image, frame.labels)
        frame.timings["render"] = time.perf_counter() - t0
        return image

    def _current_view(self) -> Annotator:
        key = (self.controls.view, self.controls.alpha, self.controls.hidden)
        if key != self._view_key:
            self.visible = self._base_visible.copy()
            self.visible[list(key[2])] = False
            self._view, self._view_key = make_view(key[0], self.lut, self.visible, key[1]), key
        return self._view
