"""The live window: the one place that calls imshow/waitKey (on the render thread).

Keys: q or Esc quits, space pauses, m cycles the view. Closing the window ends the run like q.
Keys and closing only write to the run's :class:`~rtseg.realtime.controls.Controls`.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from rtseg.realtime.controls import Controls
from rtseg.realtime.frame import Frame
from rtseg.realtime.sinks.base import Sink

QUIT_KEYS = (ord("q"), 27)


class Display(Protocol):
    """The part of OpenCV's HighGUI the window uses (tests pass a fake)."""

    WINDOW_NORMAL: int
    WINDOW_KEEPRATIO: int
    WND_PROP_VISIBLE: int

    def namedWindow(self, title: str, flags: int) -> None: ...  # noqa: N802 - OpenCV's names
    def imshow(self, title: str, image: np.ndarray) -> None: ...
    def waitKey(self, delay: int) -> int: ...  # noqa: N802
    def getWindowProperty(self, title: str, prop: int) -> float: ...  # noqa: N802
    def destroyWindow(self, title: str) -> None: ...  # noqa: N802


class WindowSink(Sink):
    """Show frames in a window; keys and closing the window act through ``controls``.

    Args:
        title: the window title.
        controls: receives pause, view and stop requests.
        display: OpenCV's ``cv2`` module (default) or an object with the same functions.
    """

    def __init__(self, title: str, controls: Controls, display: Any = None) -> None:
        if display is None:
            import cv2

            display = cv2
        self.title, self.controls, self.display = title, controls, display
        self._open = False

    def write(self, frame: Frame, image: np.ndarray) -> None:
        if not self._open:
            self.display.namedWindow(self.title, self.display.WINDOW_NORMAL | self.display.WINDOW_KEEPRATIO)
            self._open = True
        self.display.imshow(self.title, image)
        self.poll()

    def poll(self) -> None:
        """Handle pending key presses and a closed window (also called while paused)."""
        if not self._open:
            return
        key = self.display.waitKey(1) & 0xFF
        if key in QUIT_KEYS:
            self.controls.request_stop("key")
        elif key == ord(" "):
            self.controls.toggle_pause()
        elif key == ord("m"):
            self.controls.next_view()
        if self.display.getWindowProperty(self.title, self.display.WND_PROP_VISIBLE) < 1:
            self.controls.request_stop("window closed")

    def close(self) -> None:
        if self._open:
            self._open = False
            self.display.destroyWindow(self.title)
            self.display.waitKey(1)
