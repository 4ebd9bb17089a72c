"""Cameras through OpenCV; a repeated (stale) frame is not a fresh frame."""

from __future__ import annotations

import contextlib
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Protocol

import cv2
import numpy as np

from rtseg.errors import SourceError
from rtseg.realtime.frame import Frame
from rtseg.realtime.sources.base import DEFAULT_MAX_PIXELS, Source, SourceInfo, check_pixel_cap
from rtseg.realtime.sources.kinds import MAX_CAMERA_INDEX


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` a camera source uses (tests pass a fake)."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...


def open_camera(index: int, size: tuple[int, int] | None = None, fps: float | None = None) -> Capture:
    """Open camera ``index`` with OpenCV and request a size (width, height) and frame rate."""
    if not 0 <= index <= MAX_CAMERA_INDEX:
        raise SourceError(f"camera index {index} is out of range (0..{MAX_CAMERA_INDEX})")
    with _opencv_quiet():  # OpenCV tries several backends and logs each failure
        capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"camera {index} could not be opened (not connected, or in use by another program?)")
    if size is not None:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
    if fps is not None:
        capture.set(cv2.CAP_PROP_FPS, fps)
    return capture


class CameraSource(Source):
    """Live frames from a camera, stamped with index and capture time.

    A read that fails, or returns the same pixels as the last frame, is not a fresh frame
    and is not yielded; the iterator keeps trying until :meth:`interrupt`. Whether the
    camera has stalled is decided in one place, the pipeline's watchdog (``--stall-timeout``),
    which also catches a read that blocks forever inside a driver.

    Args:
        capture: a camera index, or an object with ``isOpened/read/release``.
        name: shown in messages.
        size: requested (width, height) for a camera index.
        fps: requested frame rate for a camera index.

    Example:
        >>> with CameraSource(0, size=(1280, 720)) as cam:  # doctest: +SKIP
        ...     frame = next(iter(cam))
    """

    live = True
    endless = True

    def __init__(self, capture: int | Capture, *, name: str | None = None,
                 size: tuple[int, int] | None = None, fps: float | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        if isinstance(capture, int):
            name = name or f"camera {capture}"
            capture = open_camera(capture, size, fps)
        elif not capture.isOpened():
            raise SourceError(f"{name or 'camera'} could not be opened")
        self._capture = capture
        self._max_pixels = max_pixels
        self._interrupted = threading.Event()
        self.info = SourceInfo(name=name or "camera", fps=fps)
        self._closed = False

    def __iter__(self) -> Iterator[Frame]:
        index, last_digest = 0, None
        try:
            while not self._interrupted.is_set():
                ok, image = self._capture.read()
                now = time.perf_counter()
                digest = _digest(image) if ok and image is not None else None
                if digest is None or digest == last_digest:
                    time.sleep(0.005)  # a failed or stale read: try again without spinning
                    continue
                if index == 0:
                    height, width = image.shape[:2]
                    check_pixel_cap(self.info.name, width, height, self._max_pixels)
                    self.info.width, self.info.height = width, height
                if image.ndim == 2:
                    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                last_digest = digest
                yield Frame(image=np.ascontiguousarray(image[:, :, :3]), index=index, capture_time=now)
                index += 1
        finally:
            self.close()

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._capture.release()


@contextlib.contextmanager
def _opencv_quiet():
    """Silence OpenCV's own logging for the duration (our error message says what failed)."""
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:
        yield
        return
    level = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging_api.setLogLevel(level)


def _digest(image: np.ndarray) -> int:
    """A cheap fingerprint of a frame: sensor noise makes live frames differ."""
    return zlib.crc32(np.ascontiguousarray(image[::7, ::5]).data)
