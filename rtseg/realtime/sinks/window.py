"""The live window: the one place that calls cv2.imshow/waitKey (on the render thread).

Keys: q or Esc quits, space pauses (the window keeps answering keys), m cycles the view.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from rtseg.realtime.frame import Frame
from rtseg.realtime.render import ViewState
from rtseg.realtime.sinks.base import Sink

QUIT_KEYS = (ord("q"), 27)


class WindowSink(Sink):
    """Show frames in an OpenCV window; key presses change ``state`` or set ``quit``."""

    def __init__(self, title: str, state: ViewState, quit: threading.Event) -> None:
        self.title = title
        self.state = state
        self.quit = quit
        self._open = False

    def write(self, frame: Frame, image: np.ndarray) -> None:
        if not self._open:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            self._open = True
        cv2.imshow(self.title, image)
        self._handle(cv2.waitKey(1) & 0xFF)
        while self.state.paused and not self.quit.is_set():
            self._handle(cv2.waitKey(30) & 0xFF)

    def _handle(self, key: int) -> None:
        if key in QUIT_KEYS:
            self.quit.set()
        elif key == ord(" "):
            self.state.paused = not self.state.paused
        elif key == ord("m"):
            self.state.next_mode()

    def close(self) -> None:
        if self._open:
            self._open = False
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
