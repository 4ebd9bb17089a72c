"""Live sources that come back: reopen a camera or stream after it stalls or disconnects.

The first open must succeed (a wrong camera index or URL is an error at once); after that,
a read error, a stall or an end of stream closes the connection and opens a new one with
capped exponential backoff (0.5 s, 1 s, 2 s ... 10 s), forever or ``max_attempts`` times in
a row. No frame is invented: the output simply has a gap. Timestamps continue across the
gap (the new connection's are shifted to follow on at wall-clock distance), so a video
written from a reconnecting stream plays with the outage as a pause.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction

from rtseg.errors import SourceError, first_line
from rtseg.realtime.frame import Frame
from rtseg.realtime.sources.base import Source, SourceInfo

log = logging.getLogger(__name__)

BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0


class ReconnectingSource(Source):
    """Wrap ``open_source`` (a function returning a fresh live source) with reconnection.

    Args:
        open_source: opens the camera or stream; called again for every reconnection.
        max_attempts: failed attempts in a row before giving up; 0: never give up.
        backoff: (first, maximum) seconds between attempts; the wait doubles each time.

    Attributes:
        reconnects: how many times a lost source was opened again.
        reconnecting: True while the source is lost and being reopened (the HUD says so).
        connected_at: ``perf_counter()`` of the latest (re)connection.

    Example:
        >>> src = ReconnectingSource(lambda: CameraSource(0))  # doctest: +SKIP
    """

    live = True
    endless = True

    def __init__(self, open_source: Callable[[], Source], *, max_attempts: int = 0,
                 backoff: tuple[float, float] = (BACKOFF_FIRST, BACKOFF_MAX)) -> None:
        self._open = open_source
        self._inner: Source | None = open_source()  # the first open fails loudly
        self.max_attempts, self.backoff = max_attempts, backoff
        inner_info = self._inner.info
        self._audio_notes = [(stream, "not kept: with --reconnect every connection restarts the stream's clock "
                              "(--no-reconnect keeps it)") for stream, _ in getattr(self._inner, "audio_report",
                                                                                   lambda: [])()]
        self.info = SourceInfo(name=inner_info.name, width=inner_info.width, height=inner_info.height,
                               fps=inner_info.fps)
        self.reconnects = 0
        self.reconnecting = False
        self.connected_at = time.perf_counter()
        self._stop = threading.Event()
        self._drop = threading.Event()
        self._lock = threading.Lock()
        self._skipped_before = 0

    def __iter__(self) -> Iterator[Frame]:
        index, shift = 0, _TimeShift()
        while not self._stop.is_set():
            inner = self._inner
            reason = "the stream ended"
            try:
                for frame in inner:
                    if self._drop.is_set():
                        break
                    frame.index, frame.passthrough = index, []
                    shift.apply(frame)
                    index += 1
                    yield frame
            except SourceError as exc:
                reason = first_line(exc)
            finally:
                self._close_inner()
            if self._drop.is_set():
                reason = "no new frame within the stall timeout"
            if self._stop.is_set():
                return
            self._drop.clear()
            self._reconnect(reason)
            shift.new_connection()

    def _reconnect(self, reason: str) -> None:
        """Open a new connection, waiting between failed attempts; raises when giving up."""
        self.reconnecting = True
        wait, attempts = self.backoff[0], 0
        log.warning("%s: lost (%s); reconnecting", self.info.name, reason)
        while not self._stop.wait(wait):
            attempts += 1
            try:
                inner = self._open()
            except SourceError as exc:
                if self.max_attempts and attempts >= self.max_attempts:
                    raise SourceError(f"{self.info.name}: gave up after {attempts} reconnection attempts "
                                      f"({first_line(exc)})") from None
                log.info("%s: reconnection attempt %d failed (%s); next in %.1f s", self.info.name, attempts,
                         first_line(exc), min(wait * 2, self.backoff[1]))
                wait = min(wait * 2, self.backoff[1])
                continue
            with self._lock:
                if self._stop.is_set():
                    inner.close()
                    return
                self._inner = inner
                self._drop.clear()  # stall reports from the outage are about the old connection
                self.connected_at = time.perf_counter()
                self.reconnecting = False
            self.reconnects += 1
            log.warning("%s: reconnected (attempt %d)", self.info.name, attempts)
            return

    def audio_report(self) -> list[tuple[str, str]]:
        """(stream, outcome) for the audio streams of the source, which are not passed on."""
        return list(self._audio_notes)

    def request_reconnect(self) -> None:
        """Drop the current connection and open a new one (called by the stall watchdog)."""
        self._drop.set()
        with self._lock:
            if self._inner is not None:
                self._inner.interrupt()

    def interrupt(self) -> None:
        self._stop.set()
        with self._lock:
            if self._inner is not None:
                self._inner.interrupt()

    def close(self) -> None:
        self._stop.set()
        self._close_inner()

    def _close_inner(self) -> None:
        with self._lock:
            inner, self._inner = self._inner, None
        if inner is not None:
            self._skipped_before += inner.skipped
            inner.close()

    @property
    def skipped(self) -> int:
        inner = self._inner
        return self._skipped_before + (inner.skipped if inner is not None else 0)


class _TimeShift:
    """Keeps timestamps increasing across connections: each new connection's first frame
    follows the previous connection's last one by the wall time in between."""

    def __init__(self) -> None:
        self.offset = 0.0  # seconds added to the current connection's timestamps
        self.last: tuple[float, float] | None = None  # (shifted seconds, perf_counter) of the last frame
        self.pending = False

    def new_connection(self) -> None:
        self.pending = True

    def apply(self, frame: Frame) -> None:
        seconds = frame.seconds
        if seconds is None:  # cameras: the sink uses wall-clock capture times, already continuous
            return
        if self.pending and self.last is not None:
            last_seconds, last_wall = self.last
            self.offset = last_seconds + max(time.perf_counter() - last_wall, 1e-3) - seconds
            self.pending = False
        shifted = seconds + self.offset
        if self.offset:
            frame.pts = round(Fraction(shifted).limit_denominator(10**9) / frame.time_base)
        self.last = (shifted, time.perf_counter())
