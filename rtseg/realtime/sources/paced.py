"""A file played at its own speed: the camera experience from a clip (``--realtime``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from rtseg.realtime.frame import Frame
from rtseg.realtime.sources.base import Source


class PacedSource(Source):
    """Deliver ``inner``'s frames at their timestamps, measured from the first frame.

    Each frame's ``capture_time`` is the moment it is delivered, so latency is measured
    from "the camera" as a live source would. ``live`` picks latest-frame semantics
    (``--live`` on a file: frames are dropped only when inference is behind) or
    back-pressure (``--realtime`` alone: nothing is dropped; a slow model falls behind).

    Example:
        >>> PacedSource(VideoSource("clip.mp4"), live=True)  # doctest: +SKIP
    """

    def __init__(self, inner: Source, live: bool) -> None:
        self.inner, self.live, self.info = inner, live, inner.info
        self._stop = threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        start_wall = start_seconds = None
        fallback = 1.0 / (self.info.fps or 25.0)
        for frame in self.inner:
            seconds = frame.seconds if frame.seconds is not None else frame.index * fallback
            if start_wall is None:
                start_wall, start_seconds = time.perf_counter(), seconds
            due = start_wall + (seconds - start_seconds)
            if self._stop.wait(max(0.0, due - time.perf_counter())):
                return
            frame.capture_time = time.perf_counter()
            yield frame

    def input_paths(self):
        return self.inner.input_paths()

    def audio_report(self) -> list[tuple[str, str]]:
        return getattr(self.inner, "audio_report", lambda: [])()

    def interrupt(self) -> None:
        self._stop.set()
        self.inner.interrupt()

    def close(self) -> None:
        self.inner.close()

    @property
    def skipped(self) -> int:
        return self.inner.skipped
