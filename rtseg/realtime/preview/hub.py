"""One JPEG per frame, fanned out to every viewer without ever blocking the publisher."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Jpeg:
    """One encoded frame: its index in the source and the JPEG bytes."""

    index: int
    data: bytes


class FrameHub:
    """The newest JPEG, and a small queue per viewer that drops its oldest entry when full.

    :meth:`publish` never waits (the render thread calls it); each viewer's thread waits on
    its own queue with a timeout. :meth:`close` wakes every viewer and ends their loops.

    Example:
        >>> hub = FrameHub()
        >>> with hub.subscribe() as inbox:
        ...     hub.publish(Jpeg(0, b"..."))
        ...     inbox.get(timeout=1).index
        0
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inboxes: set[queue.Queue] = set()
        self._latest: Jpeg | None = None
        self.closed = threading.Event()

    @property
    def viewers(self) -> int:
        """How many viewers are subscribed now."""
        return len(self._inboxes)

    def latest(self) -> Jpeg | None:
        """The newest published frame (re-sent to viewers of a paused or idle run)."""
        return self._latest

    def publish(self, jpeg: Jpeg) -> None:
        """Make ``jpeg`` the newest frame and offer it to every viewer (never blocks)."""
        with self._lock:
            self._latest = jpeg
            inboxes = list(self._inboxes)
        for inbox in inboxes:
            _put_dropping_oldest(inbox, jpeg)

    @contextmanager
    def subscribe(self, maxsize: int = 2) -> Iterator[queue.Queue]:
        """A queue of the frames published from now on, while inside the ``with``."""
        inbox: queue.Queue = queue.Queue(maxsize=maxsize)
        with self._lock:
            self._inboxes.add(inbox)
        try:
            yield inbox
        finally:
            with self._lock:
                self._inboxes.discard(inbox)

    def close(self) -> None:
        """End every viewer's loop: set :attr:`closed` and wake them with ``None``."""
        self.closed.set()
        with self._lock:
            inboxes = list(self._inboxes)
        for inbox in inboxes:
            _put_dropping_oldest(inbox, None)


def _put_dropping_oldest(inbox: queue.Queue, item: Jpeg | None) -> None:
    """Put without waiting; a full queue loses its oldest item (the viewer is behind)."""
    for _ in range(inbox.maxsize + 1):
        try:
            inbox.put_nowait(item)
            return
        except queue.Full:
            try:
                inbox.get_nowait()
            except queue.Empty:
                pass
