"""The live window, driven from one thread: the caller's (main) thread.

The render thread only leaves the newest image in a one-slot mailbox (``write``); the main
thread shows it and reads keys (``pump``), creates and destroys the window. Qt then never
sees a second thread, so it prints no "Timers cannot be stopped from another thread".

Keys: q or Esc quits, space pauses, m cycles the view. Closing the window ends the run like
q. Keys and closing only write to the run's :class:`~rtseg.realtime.controls.Controls`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rtseg.realtime.controls import Controls
from rtseg.realtime.frame import Frame
from rtseg.realtime.sinks.base import Sink

QUIT_KEYS = (ord("q"), 27)
FALLBACK_SCREEN = (1920, 1080)
SYSTEM_FONTS = Path("/usr/share/fonts/truetype/dejavu")


class Display(Protocol):
    """The part of OpenCV's HighGUI the window uses (tests pass a fake)."""

    WINDOW_NORMAL: int
    WINDOW_KEEPRATIO: int
    WINDOW_GUI_NORMAL: int
    WND_PROP_VISIBLE: int

    def namedWindow(self, title: str, flags: int) -> None: ...  # noqa: N802 - OpenCV's names
    def resizeWindow(self, title: str, width: int, height: int) -> None: ...  # noqa: N802
    def imshow(self, title: str, image: np.ndarray) -> None: ...
    def waitKey(self, delay: int) -> int: ...  # noqa: N802
    def getWindowProperty(self, title: str, prop: int) -> float: ...  # noqa: N802
    def destroyWindow(self, title: str) -> None: ...  # noqa: N802


class WindowSink(Sink):
    """Show frames in a window sized to the frame (scaled down to fit the screen, resizable).

    Args:
        title: the window title.
        controls: receives pause, view and stop requests.
        display: OpenCV's ``cv2`` module (default) or an object with the same functions.
        screen: (width, height) to fit into; default: the X11 screen, else 1920x1080.
    """

    def __init__(self, title: str, controls: Controls, display: Any = None,
                 screen: tuple[int, int] | None = None) -> None:
        if display is None:
            if SYSTEM_FONTS.is_dir():  # OpenCV's Qt looks for fonts in its own (empty) folder
                os.environ.setdefault("QT_QPA_FONTDIR", str(SYSTEM_FONTS))
            import cv2

            display = cv2
        self.title, self.controls, self.display = title, controls, display
        self.screen = screen
        self._latest: np.ndarray | None = None
        self._lock = threading.Lock()
        self._open = self._closing = False

    def write(self, frame: Frame, image: np.ndarray) -> None:
        """Render thread: leave the newest image for the main thread (never blocks)."""
        with self._lock:
            self._latest = image

    def pump(self) -> None:
        """Main thread: show the newest image, handle keys and a closed window."""
        with self._lock:
            image, self._latest = self._latest, None
        if self._closing:
            self._destroy()
            return
        if image is not None:
            if not self._open:
                self._create(image.shape[1], image.shape[0])
            self.display.imshow(self.title, image)
        if not self._open:
            return
        self._handle(self.display.waitKey(1) & 0xFF)
        if not self._visible():
            self._open = False  # gone already: nothing to destroy
            self.controls.request_stop("window closed")

    def _visible(self) -> bool:
        try:
            return self.display.getWindowProperty(self.title, self.display.WND_PROP_VISIBLE) >= 1
        except Exception:  # noqa: BLE001 - Qt raises once the window was closed by the user
            return False

    def _create(self, width: int, height: int) -> None:
        d = self.display
        d.namedWindow(self.title, d.WINDOW_NORMAL | d.WINDOW_KEEPRATIO | d.WINDOW_GUI_NORMAL)
        screen_w, screen_h = self.screen or screen_size()
        scale = min(1.0, 0.9 * screen_w / width, 0.9 * screen_h / height)
        d.resizeWindow(self.title, max(1, int(width * scale)), max(1, int(height * scale)))
        self._open = True

    def _handle(self, key: int) -> None:
        if key in QUIT_KEYS:
            self.controls.request_stop("key")
        elif key == ord(" "):
            self.controls.toggle_pause()
        elif key == ord("m"):
            self.controls.next_view()

    def close(self) -> None:
        """Render thread: ask the main thread to destroy the window at its next ``pump``."""
        self._closing = True

    def _destroy(self) -> None:
        if self._open:
            self._open = False
            self.display.destroyWindow(self.title)
            self.display.waitKey(1)


def screen_size() -> tuple[int, int]:
    """The X11 screen's size in pixels when a display answers, else 1920x1080."""
    if not os.environ.get("DISPLAY"):
        return FALLBACK_SCREEN
    try:
        xlib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        xlib.XOpenDisplay.restype = ctypes.c_void_p
        xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        handle = xlib.XOpenDisplay(None)
        if not handle:
            return FALLBACK_SCREEN
        try:
            for fn in (xlib.XDefaultScreen, xlib.XDisplayWidth, xlib.XDisplayHeight):
                fn.argtypes = [ctypes.c_void_p] + ([ctypes.c_int] if fn is not xlib.XDefaultScreen else [])
            screen = xlib.XDefaultScreen(handle)
            return int(xlib.XDisplayWidth(handle, screen)), int(xlib.XDisplayHeight(handle, screen))
        finally:
            xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
            xlib.XCloseDisplay(handle)
    except (OSError, AttributeError):
        return FALLBACK_SCREEN
