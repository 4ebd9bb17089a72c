"""A source the batch driver can end from another thread: the stream's run then finishes
like the end of its input (frames in flight written, the output finalized and kept)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from rtseg.realtime.frame import Frame
from rtseg.realtime.sources import Source


class StoppableSource(Source):
    """Wrap ``inner``; after :meth:`stop` the next frame is not read and iteration ends.

    Every other attribute (``live``, ``info``, ``endless``, ``close`` ...) is the inner
    source's, so the pipeline and the end-of-run check see the real source.

    Example:
        >>> source = StoppableSource(open_source("rtsp://cam/1"))  # doctest: +SKIP
        >>> source.stop()  # from another thread: the pipeline drains and finalizes
    """

    _OWN = frozenset({"inner", "stopped", "stop", "_OWN"})

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.stopped = threading.Event()

    def __getattribute__(self, name: str):
        if name in StoppableSource._OWN or name.startswith("__"):
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "inner"), name)

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.inner:
            if self.stopped.is_set():
                return
            yield frame

    def stop(self) -> None:
        """End the run soon (from any thread)."""
        self.stopped.set()
        self.inner.interrupt()
