"""The preview as a sink: one JPEG per frame for every viewer, never a wait for the render thread."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

import cv2
import numpy as np

from rtseg.realtime.controls import Controls
from rtseg.realtime.frame import Frame
from rtseg.realtime.preview.hub import FrameHub, Jpeg
from rtseg.realtime.preview.server import WILDCARD_HOSTS, PreviewServer
from rtseg.realtime.sinks.base import Sink

log = logging.getLogger(__name__)


class PreviewSink(Sink):
    """Serve the annotated frames to browsers at ``http://HOST:PORT/?token=...``.

    The server starts here (an address in use is a :class:`~rtseg.errors.SinkError` before
    the run starts) and its URL is printed once. :meth:`write` encodes a JPEG only while
    someone watches, at most ``max_fps`` a second, once for all viewers, and hands it to
    the hub without waiting: a slow viewer loses frames, the pipeline never does.
    :meth:`close` stops the server and ends every stream.

    Args:
        address: ``[HOST:]PORT`` (HOST 127.0.0.1 unless given; PORT 0 picks a free one).
        controls: the run's controls, changed live from the page.
        status: the run's figures for the page (see :func:`~rtseg.realtime.preview.preview_status`).
        class_names: the model's classes, for the page's hide checkboxes.
        quality: JPEG quality, 0..100.
        max_fps: most frames a second sent to viewers.
        max_streams: viewers at once (more get 503).
        client_timeout: seconds a viewer may fall behind on reading before it is dropped.

    Example:
        >>> sink = PreviewSink("0", Controls(), lambda: {}, ("road", "sky"))  # doctest: +SKIP
        >>> sink.url  # doctest: +SKIP
        'http://127.0.0.1:41234/?token=...'
    """

    def __init__(self, address: str, controls: Controls, status: Callable[[], dict], class_names: tuple[str, ...],
                 *, quality: int = 80, max_fps: float = 30.0, max_streams: int = 8,
                 client_timeout: float = 5.0) -> None:
        self.hub = FrameHub()
        self.server = PreviewServer(address, self.hub, controls, status, class_names,
                                    max_streams=max_streams, client_timeout=client_timeout)
        self.url = self.server.url
        self._params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        self._interval = 1.0 / max_fps if max_fps > 0 else 0.0
        self._pending: tuple[int, np.ndarray] | None = None
        self._last_sent = float("-inf")
        self._closed = False
        everywhere = self.server.bind_host in WILDCARD_HOSTS
        _announce(self.url + (" (listening on every interface: from another machine, use this one's address)"
                              if everywhere else ""))

    def write(self, frame: Frame, image: np.ndarray) -> None:
        self._pending = (frame.index, image)
        if self.hub.viewers and time.perf_counter() - self._last_sent >= self._interval:
            self._send_pending()

    def poll(self) -> None:
        """While paused: send the newest frame to viewers that do not have it yet."""
        if self.hub.viewers and self._pending is not None:
            self._send_pending()

    def _send_pending(self) -> None:
        index, image = self._pending
        self._pending = None
        ok, data = cv2.imencode(".jpg", image, self._params)
        if ok:
            self.hub.publish(Jpeg(index, data.tobytes()))
            self._last_sent = time.perf_counter()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pending = None
        self.server.close()


def _announce(where: str) -> None:
    """Say once where the preview is: through the ``rtseg`` logger when it shows INFO
    (the CLI's ``rtseg: ...`` lines on stderr), else straight to stderr (``--quiet``, the API)."""
    logger = logging.getLogger("rtseg")
    if logger.isEnabledFor(logging.INFO) and logger.hasHandlers():
        log.info("preview at %s", where)
    else:
        print(f"rtseg: preview at {where}", file=sys.stderr, flush=True)
